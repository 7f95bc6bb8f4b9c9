"""Real encoded audio with real tags, for tests, benchmarks and `ccmirror demo`.

soundfile (libsndfile) encodes the signal; mutagen writes the tags in each format's own
convention. Nothing here is a byte stub: every file opens in any player.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# kind -> (soundfile format, subtype, file extension)
KINDS: dict[str, tuple[str, str, str]] = {
    "flac": ("FLAC", "PCM_16", ".flac"),
    "ogg": ("OGG", "VORBIS", ".ogg"),
    "opus": ("OGG", "OPUS", ".opus"),
    "mp3": ("MP3", "MPEG_LAYER_III", ".mp3"),
    "wav": ("WAV", "PCM_16", ".wav"),
}
RATE = 48000

# Generic tag names -> (ID3 frame, Vorbis comment key)
_TAGS = {
    "title": ("TIT2", "TITLE"),
    "artist": ("TPE1", "ARTIST"),
    "album": ("TALB", "ALBUM"),
    "date": ("TDRC", "DATE"),
    "copyright": ("TCOP", "COPYRIGHT"),
    "license": ("WCOP", "LICENSE"),
    "isrc": ("TSRC", "ISRC"),
    "genre": ("TCON", "GENRE"),
    "composer": ("TCOM", "COMPOSER"),
    "publisher": ("TPUB", "LABEL"),
    "track": ("TRCK", "TRACKNUMBER"),
}


def signal(seconds: float, seed: int = 0, channels: int = 2) -> np.ndarray:
    """A deterministic, seed-dependent chord with a little noise (so files differ)."""
    rng = np.random.default_rng(seed)
    n = max(1, int(seconds * RATE))
    t = np.arange(n) / RATE
    freqs = 110.0 * 2 ** (rng.integers(0, 36, size=3) / 12)
    mono = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 4
    mono = mono + rng.normal(0, 0.02, n)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def write_audio(
    path: str | os.PathLike[str],
    kind: str | None = None,
    *,
    seconds: float = 1.0,
    seed: int = 0,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Encode `seconds` of audio to `path` as `kind` (default: from the extension), then tag it.

    `tags` uses the generic names in `_TAGS` (title, artist, album, date, copyright,
    license, isrc), written in the format's own convention.
    """
    import soundfile as sf

    path = Path(path)
    kind = kind or path.suffix.lstrip(".").lower()
    if kind not in KINDS:
        raise ValueError(f"unknown audio kind {kind!r}; one of {', '.join(KINDS)}")
    fmt, subtype, _ = KINDS[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal(seconds, seed), RATE, format=fmt, subtype=subtype)
    if tags:
        tag_file(path, kind, tags)
    return path


def tag_file(path: Path, kind: str, tags: Mapping[str, str]) -> None:
    unknown = set(tags) - set(_TAGS)
    if unknown:
        raise ValueError(f"unknown tag names: {sorted(unknown)}")
    if kind in ("mp3", "wav"):
        _tag_id3(path, kind, tags)
    else:
        import mutagen

        f = mutagen.File(path)
        if f is None:
            raise ValueError(f"mutagen cannot open {path}")
        if f.tags is None:
            f.add_tags()
        for name, value in tags.items():
            f.tags[_TAGS[name][1]] = [value]
        f.save()


def _tag_id3(path: Path, kind: str, tags: Mapping[str, str]) -> None:
    from mutagen import id3

    if kind == "wav":
        from mutagen.wave import WAVE

        f = WAVE(path)
        if f.tags is None:
            f.add_tags()
        frames = f.tags
    else:
        try:
            frames = id3.ID3(path)
        except id3.ID3NoHeaderError:
            frames = id3.ID3()
    for name, value in tags.items():
        frame = _TAGS[name][0]
        if frame.startswith("W"):
            frames.add(getattr(id3, frame)(url=value))
        else:
            frames.add(getattr(id3, frame)(encoding=3, text=[value]))
    if kind == "wav":
        f.save()
    else:
        frames.save(path)
