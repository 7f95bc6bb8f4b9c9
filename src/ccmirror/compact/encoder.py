"""The Opus encoder of compact tiers: Xiph's `opusenc` (Debian's opus-tools), fed raw PCM.

Why opusenc: it is the reference encoder (libopus through libopusenc) with an exact
`--bitrate` and VBR by default, a 170 KiB Debian package where ffmpeg pulls in hundreds of
MiB; its own readers take only WAV/AIFF/FLAC, so the original is decoded by soundfile
(libsndfile: FLAC, WAV, AIFF, Ogg Vorbis/Opus, MP3), the decoder `check` already trusts,
and piped in as raw 16-bit PCM (ample for a lossy target).

`transcode` runs inside a silent decode worker (`licence.decode.call`): mpg123 prints
warnings on fd 2, and a decoder that hangs ends with its worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ccmirror.errors import UsageError

OPUSENC = "opusenc"
INSTALL_HINT = "install the Opus encoder: apt-get install opus-tools (Debian/Ubuntu)"
BLOCK = 65536  # frames decoded and piped per round
# A copy lasts as long as its original: within 50 ms or 0.5 % (Opus pads to 20 ms frames
# and resamples to 48 kHz; MP3 decoders differ by a frame).
DURATION_SLACK_S = 0.05
DURATION_SLACK_FRACTION = 0.005


class EncoderMissing(UsageError):
    """A compact tier needs an encoder this machine does not have (exit 2)."""


@dataclass(frozen=True)
class Encoder:
    path: str
    version: str  # e.g. "opus-tools 0.2, libopus 1.3.1"

    def settings(self, bitrate: int) -> str:
        """What MANIFEST.csv and ATTRIBUTION.md name as the encoder settings."""
        return f"opusenc --bitrate {_kbit(bitrate)} --vbr ({self.version})"


def _kbit(bitrate: int) -> str:
    k = bitrate / 1000
    return f"{k:g}"


@lru_cache(maxsize=4)
def _probe(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise EncoderMissing(f"compact tiers: {path} does not run ({e}); {INSTALL_HINT}") from None
    first = (out.stdout or out.stderr).splitlines()[:1]
    m = re.search(r"opus-tools\s+(\S+)\s*\(using\s+libopus\s+([^)\s]+)", first[0] if first else "")
    if out.returncode != 0 or not m:
        raise EncoderMissing(f"compact tiers: {path} is not opus-tools' opusenc; {INSTALL_HINT}")
    return f"opus-tools {m.group(1)}, libopus {m.group(2)}"


def find_encoder() -> Encoder:
    """The machine's opusenc, or EncoderMissing naming what to install."""
    path = shutil.which(OPUSENC)
    if path is None:
        raise EncoderMissing(
            f"compact tiers need {OPUSENC}, which is not installed: {INSTALL_HINT}"
        )
    return Encoder(path, _probe(path))


def close_enough(original_s: float, copy_s: float) -> bool:
    return abs(copy_s - original_s) <= max(DURATION_SLACK_S, original_s * DURATION_SLACK_FRACTION)


def transcode(
    src: str, *, part: str, opusenc: str, bitrate: int, comments: list[tuple[str, str]]
) -> dict[str, Any] | str:
    """Encode `src` to Opus at `part`, set its tags and decode it back in full:
    {"duration", "copy_duration", "channels", "samplerate"}; or why not, as one line (the
    part is removed). Runs in a decode worker (`licence.decode.call` with a partial)."""
    import numpy as np
    import soundfile as sf

    try:
        with sf.SoundFile(src) as f:
            rate, channels = f.samplerate, f.channels
            frames = _encode(f, part, opusenc, bitrate, np)
    except _EncodeFailed as e:
        _drop(part)
        return str(e)
    except Exception as e:  # libsndfile reports damage as several error types
        _drop(part)
        return f"audio does not decode: {(str(e).splitlines() or [''])[0][:120]}"
    try:
        _tag(part, comments)
        with sf.SoundFile(part) as c:
            got = 0
            while n := len(c.read(BLOCK, dtype="int16", always_2d=True)):
                got += n
            copy_s = got / c.samplerate
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except Exception as e:
        _drop(part)
        return f"the Opus copy does not decode: {(str(e).splitlines() or [''])[0][:120]}"
    duration = frames / rate if rate else 0.0
    if not frames:
        _drop(part)
        return "no audio frames"
    if not close_enough(duration, copy_s):
        _drop(part)
        return f"the Opus copy lasts {copy_s:.3f} s, the original {duration:.3f} s"
    return {"duration": duration, "copy_duration": copy_s, "channels": channels, "samplerate": rate}


class _EncodeFailed(Exception):
    pass


def _encode(f: Any, part: str, opusenc: str, bitrate: int, np: Any) -> int:
    """Pipe the decoded audio through opusenc into `part`; returns the frames decoded."""
    cmd = [
        opusenc,
        "--quiet",
        "--bitrate",
        _kbit(bitrate),
        "--vbr",
        "--raw",
        "--raw-bits",
        "16",
        "--raw-rate",
        str(f.samplerate),
        "--raw-chan",
        str(f.channels),
        "--raw-endianness",
        "0",
        "-",
        part,
    ]
    frames = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            stdin = proc.stdin
            if stdin is None:
                raise _EncodeFailed("opusenc: no input pipe")
            try:
                while True:
                    block = f.read(BLOCK, dtype="int16", always_2d=True)
                    if not len(block):
                        break
                    frames += len(block)
                    stdin.write(np.ascontiguousarray(block, dtype="<i2").tobytes())
            except BrokenPipeError:
                pass  # opusenc stopped early: its exit status says why
            finally:
                with contextlib.suppress(BrokenPipeError):
                    stdin.close()
            rc = proc.wait(timeout=600)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            err.seek(0)
            last = (err.read().decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            raise _EncodeFailed(f"opusenc failed (exit {rc}): {last[:160]}")
    return frames


def _tag(part: str, comments: list[tuple[str, str]]) -> None:
    """The original's metadata and licence evidence as Vorbis comments of the copy."""
    from mutagen.oggopus import OggOpus

    f = OggOpus(part)
    if f.tags is None:
        f.add_tags()
    tags = f.tags
    for key in {k for k, _ in comments}:
        tags[key] = [v for k, v in comments if k == key]
    f.save()


def _drop(part: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(part)
