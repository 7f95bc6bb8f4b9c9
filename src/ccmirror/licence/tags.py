"""A file's own licence statements, read with mutagen in every tag convention (DESIGN §5).

`read_tags(path)` never raises: a file mutagen cannot parse, or whose audio does not decode
to the length its header promises, comes back with `error` set (verdict unreadable).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ccmirror.licence.normalise import Licence, find_licences, rights_reserved
from ccmirror.licence.recordtags import recording_facts
from ccmirror.licence.sniff import classes, parse

log = logging.getLogger("ccmirror.licence")

# Tags that exist to state rights: always kept as evidence, even when they name nothing.
_RIGHTS_KEYS = {"tcop", "wcop", "user", "license", "licence", "copyright", "cprt", "rights"}
# Other tags are kept when their name says rights/licence, or their value states one.
_RIGHTSY_NAME = re.compile(r"licen[cs]e|copyright|rights|terms|usage", re.IGNORECASE)
_VERIFY_RE = re.compile(r"\bverify\s+at\s+(\S+)", re.IGNORECASE)
# find_licences finds nothing in a text without a version ("4.0") or a creativecommons.org
# URL: a title or an artist name is not searched through.
_MAY_STATE = re.compile(r"\d\.\d|creativecommons\.org", re.IGNORECASE)
_MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MBID_NAMES = {"musicbrainz_trackid", "musicbrainz track id", "musicbrainz recording id"}
_MBID_NAMES |= {"musicbrainz/track id", "musicbrainz_recordingid"}
_ISRC_NAMES = {"isrc", "tsrc", "wm/isrc"}
# Formats libsndfile decodes: their audio is read through once to prove it is whole.
_DECODABLE = {"FLAC", "OggVorbis", "OggOpus", "MP3", "WAVE", "AIFF"}


@dataclass
class TagReport:
    evidence: list[dict[str, str]] = field(default_factory=list)  # [{"tag", "value"}]
    licences: list[tuple[str, Licence]] = field(default_factory=list)  # (tag, licence)
    rights_reserved: bool = False
    isrc: str | None = None
    mbid: str | None = None
    error: str | None = None  # set when the file is unreadable
    format: str | None = None
    # What the tags and stream say of the recording (licence/recordtags.py), and how many
    # pictures are embedded (they stay inside the file; `licence inspect` reports them).
    recording: dict[str, Any] = field(default_factory=dict)
    pictures: int = 0

    def add(self, tag: str, value: Any, *, always: bool = False) -> None:
        text = _text(value)
        if not text:
            return
        lics, reserved, verify = _statements(text)
        if not (always or lics or reserved or _RIGHTSY_NAME.search(tag)):
            return
        self.evidence.append({"tag": tag, "value": text})
        for lic in lics:
            self.licences.append((tag, lic))
        self.rights_reserved = self.rights_reserved or reserved
        if verify:  # "Licensed to the public under URL verify at URL": keep the web statement
            self.evidence.append({"tag": f"{tag}:verify", "value": verify})

    def set_id(self, key: str, value: Any) -> None:
        text = _text(value).strip()
        if not text:
            return
        if key in _ISRC_NAMES and self.isrc is None:
            self.isrc = text.replace("-", "").upper()[:12]
        elif key in _MBID_NAMES and self.mbid is None and _MBID_RE.match(text.lower()):
            self.mbid = text.lower()


@functools.lru_cache(maxsize=4096)
def _statements(text: str) -> tuple[tuple[Licence, ...], bool, str | None]:
    """What a tag value states: its licences, whether it reserves all rights, the URL
    after "verify at". Pure, and cached: the files of one release repeat the same
    copyright and licence lines, each read once per worker."""
    m = _VERIFY_RE.search(text)
    lics = tuple(find_licences(text)) if _MAY_STATE.search(text) else ()
    return lics, rights_reserved(text), m.group(1) if m else None


def _text(value: Any) -> str:
    """A tag value as one string (lists joined, bytes decoded)."""
    if type(value) is str:  # the common case first: what the last line does to a str
        return value.strip("\x00 ")
    if isinstance(value, list | tuple):
        return " / ".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")
    if hasattr(value, "value") and not isinstance(value, str):  # APE/ASF values
        return _text(value.value)
    return str(value).strip("\x00 ") if value is not None else ""


def _read_id3(report: TagReport, tags: Any) -> dict[str, list[Any]]:
    """Returns the frames by id (what `tags.getall(id)` gives, in one pass)."""
    frames: dict[str, list[Any]] = {}
    for frame in tags.values():
        fid = frame.FrameID
        frames.setdefault(fid, []).append(frame)
        if fid == "TCOP" or fid == "USER":
            report.add(fid, frame.text, always=True)
        elif fid == "WCOP":
            report.add(fid, frame.url, always=True)
        elif fid == "WOAF":
            report.add(fid, frame.url)
        elif fid == "WXXX":
            report.add(f"WXXX:{frame.desc}", frame.url)
        elif fid == "TXXX":
            name = frame.desc.lower()
            report.add(f"TXXX:{frame.desc}", frame.text, always=name in _RIGHTS_KEYS)
            report.set_id(name, frame.text[0] if frame.text else "")
        elif fid == "COMM":
            report.add(f"COMM:{frame.desc}" if frame.desc else "COMM", frame.text)
        elif fid == "TSRC":
            report.set_id("isrc", frame.text[0] if frame.text else "")
        elif fid == "UFID" and frame.owner == "http://musicbrainz.org":
            report.set_id("musicbrainz_trackid", frame.data)
    return frames


def _read_pairs(report: TagReport, pairs: Any, prefix: str) -> None:
    """Vorbis comments, APEv2 and ASF: name -> value(s), names in any case."""
    for key, value in pairs:
        name = str(key)
        low = name.lower()
        report.set_id(low, value[0] if isinstance(value, list) and value else value)
        if low in _ISRC_NAMES or low in _MBID_NAMES:
            continue
        report.add(f"{prefix}:{name}", value, always=low in _RIGHTS_KEYS)


def _read_mp4(report: TagReport, tags: Any) -> None:
    for key, value in tags.items():
        if key.startswith("----:"):
            name = key.split(":", 2)[-1]
            low = name.lower()
            report.set_id(low, value[0] if value else "")
            if low in _ISRC_NAMES or low in _MBID_NAMES:
                continue
            report.add(f"MP4:{name}", value, always=low in _RIGHTS_KEYS)
        elif key == "cprt":
            report.add("MP4:cprt", value, always=True)
        elif key == "\xa9cmt":
            report.add("MP4:comment", value)


_OGG = ("OggVorbis", "OggOpus", "OggFLAC", "OggSpeex", "OggTheora")


def _check_container(path: str, kind: str, fh: BinaryIO | None = None) -> str | None:
    """Cut-off files that still decode: a RIFF/FORM size past the end, an Ogg stream
    without its final page. `fh`: the file already open."""
    if kind not in ("WAVE", "AIFF") and kind not in _OGG:
        return None
    if fh is None:
        with open(path, "rb") as own:
            return _check_container(path, kind, own)
    size = fh.seek(0, os.SEEK_END)
    if kind in ("WAVE", "AIFF"):
        fh.seek(0)
        head = fh.read(12)
        if len(head) < 12:
            return "audio truncated: no header"
        declared = int.from_bytes(head[4:8], "little" if kind == "WAVE" else "big") + 8
        if head[:4] in (b"RIFF", b"FORM") and declared > size:
            return f"audio truncated: {size} of {declared} bytes"
        return None
    fh.seek(max(0, size - 65536))
    tail = fh.read()
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) - at < 27:
        return "audio truncated: no final Ogg page"
    page = tail[at:]
    nseg = page[26]
    segs = page[27 : 27 + nseg]
    if len(segs) < nseg or len(page) < 27 + nseg + sum(segs) or not page[5] & 0x04:
        return "audio truncated: Ogg stream has no end"
    return None


def _check_audio(path: str, kind: str, fh: BinaryIO | None = None) -> str | None:
    """Decode the whole file once; None when it is whole, else what is wrong."""
    if kind not in _DECODABLE:
        return None
    cut = _check_container(path, kind, fh)
    if cut:
        return cut
    from ccmirror.licence.decode import decode

    decoded = decode(path)  # in a silent worker: mpg123 writes warnings to fd 2
    if isinstance(decoded, str):
        return decoded
    expected, got = decoded
    # MP3 frame counts are estimates: allow a little slack, but not a missing tail.
    if expected > 0 and got < expected * 0.98:
        return f"audio truncated: {got} of {expected} frames decode"
    if got == 0:
        return "no audio frames"
    return None


def _stat(path: str) -> os.stat_result | str:
    """The file's stat, or why it cannot be read (one system call in the common case;
    the answers are those of lexists, isdir and stat asked in that order)."""
    try:
        st = os.stat(path)
    except ValueError:  # a NUL in the name: lexists says no
        return "no such file"
    except OSError as e:
        return "no such file" if not os.path.lexists(path) else f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block the reader or never end
        return "not a regular file"
    return st


def read_tags(path: str | os.PathLike[str], *, verify_audio: bool = True) -> TagReport:
    """Licence evidence, ISRC and MusicBrainz id from a file's tags; never raises."""
    path = os.fspath(path)
    st = _stat(path)
    if isinstance(st, str):
        return TagReport(error=st)
    return _read_regular(path, verify_audio)


def _read_regular(path: str, verify_audio: bool) -> TagReport:
    """`read_tags` of a path known to be a regular file: opened once, for mutagen, the APEv2
    probe and the container check alike."""
    try:
        fh: BinaryIO | None = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        fh = None  # mutagen.File gives the error it always gave
    try:
        return _read_open(path, fh, verify_audio)
    finally:
        if fh is not None:
            fh.close()


def _read_open(path: str, fh: BinaryIO | None, verify_audio: bool) -> TagReport:
    report = TagReport()
    try:
        f = parse(fh, path) if fh is not None else classes().File(path)
    except Exception as e:  # mutagen raises many types on damaged files
        report.error = f"mutagen cannot parse: {type(e).__name__}: {str(e)[:120]}"
        return report
    if f is None:
        report.error = "not an audio format mutagen knows"
        return report
    kind = type(f).__name__
    report.format = kind
    try:
        pairs = _read_tags(report, f, path, fh)
    except Exception as e:  # a damaged tag block that parsed lazily
        log.debug("tags of %s: %s", path, e, exc_info=True)
        report.error = f"tags unreadable: {type(e).__name__}: {str(e)[:120]}"
        return report
    report.recording, report.pictures = recording_facts(f, pairs)
    if verify_audio:
        report.error = _check_audio(path, kind, fh)
    return report


def _vorbis_items(tags: Any) -> list[tuple[str, list[Any]]]:
    """`tags.items()` of Vorbis comments in one pass (mutagen's scans the comments once per
    name): each lower-case name with its values in file order, names as they first appear
    (mutagen's order is a set's, which differs from one process to the next)."""
    grouped: dict[str, list[Any]] = {}
    for key, value in tags:
        grouped.setdefault(key.lower(), []).append(value)
    return list(grouped.items())


def _read_tags(report: TagReport, f: Any, path: str, fh: BinaryIO | None = None) -> Any:
    """Read the evidence of `f`'s tags into `report`; returns the name/value pairs of
    Vorbis/APEv2/ASF tags or ID3's frames by id (None for MP4), which `recording_facts`
    reads too."""
    m = classes()
    tags, pairs = f.tags, None
    if isinstance(tags, m.ID3):
        pairs = _read_id3(report, tags)
    elif isinstance(tags, m.MP4Tags):
        _read_mp4(report, tags)
    elif isinstance(tags, m.ASFTags):
        _read_pairs(report, pairs := tags.items(), "ASF")
    elif isinstance(tags, m.APEv2):
        _read_pairs(report, pairs := tags.items(), "APEv2")
    elif isinstance(tags, m.VCommentDict):  # Vorbis comments (FLAC, Ogg, Opus)
        _read_pairs(report, pairs := _vorbis_items(tags), "Vorbis")
    elif tags is not None and hasattr(tags, "items"):
        _read_pairs(report, pairs := tags.items(), "Vorbis")
    ape_beside = type(f).__name__ in ("MP3", "WAVE", "AIFF") and not isinstance(tags, m.APEv2)
    # Most carry none: three small reads say so.
    if ape_beside and (_ape_probe(fh) if fh is not None else _may_carry_ape(path)):
        with contextlib.suppress(m.APENoHeaderError):  # beside ID3 (common on MP3)
            _read_pairs(report, m.APEv2(path).items(), "APEv2")
    return pairs


def _may_carry_ape(path: str) -> bool:
    """False only where mutagen's APEv2 reader finds no tag (APENoHeaderError): it looks
    for "APETAGEX" 32 bytes from the end, behind an ID3v1 tag ("TAG" 128 bytes from the
    end, maybe after Lyrics3), and at the start; in a file under 32 bytes nowhere."""
    try:
        with open(path, "rb", buffering=0) as fh:
            return _ape_probe(fh)
    except OSError:
        return True  # mutagen's reader gives the answer (and the error) it always gave


def _ape_probe(fh: BinaryIO) -> bool:
    """`_may_carry_ape` of an open file."""
    try:
        size = fh.seek(0, os.SEEK_END)
        if size < 32:
            return False
        fh.seek(max(0, size - 128))
        tail = fh.read(128)  # the last 128 bytes (or all of a smaller file), one read
        if tail[-32:-24] == b"APETAGEX":
            return True
        if size >= 128 and tail[:3] == b"TAG":
            return True  # an ID3v1 tag: mutagen looks behind it
        fh.seek(0)
        return fh.read(8) == b"APETAGEX"
    except OSError:
        return True


def read_tags_apart(path: str | os.PathLike[str]) -> TagReport:
    """`read_tags` in a silent worker process: parsing and decoding run beside the caller's
    threads (not under its GIL) and nothing a decoder prints reaches our stderr."""
    from ccmirror.licence.decode import R_CRASHED, call

    return call(read_tags, path, TagReport(error=R_CRASHED))


def _stat_and_read(
    paths: list[str], verify_audio: bool = True
) -> list[tuple[int, int, TagReport] | None]:
    """In a worker: each file's (size, mtime_ns) taken before it is read, and its tags."""
    out: list[tuple[int, int, TagReport] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
            continue
        if stat.S_ISREG(st.st_mode):
            report = _read_regular(p, verify_audio)
        else:
            report = read_tags(p, verify_audio=verify_audio)
        out.append((st.st_size, st.st_mtime_ns, report))
    return out


def read_tags_batch(
    paths: list[str | os.PathLike[str]], *, verify_audio: bool = True
) -> dict[str, tuple[int, int, TagReport]]:
    """`read_tags` of many files in one worker round trip, keyed by absolute path, each
    with the size and mtime_ns its bytes had before they were read. Files that vanished,
    or a worker that died, are simply absent (read them with `read_tags_apart`)."""
    from ccmirror.licence.decode import call_batch

    fn = _stat_and_read if verify_audio else functools.partial(_stat_and_read, verify_audio=False)
    got = call_batch(fn, paths, [])
    return {os.path.abspath(p): r for p, r in zip(paths, got, strict=False) if r is not None}
