"""What a file's own tags and stream say about its recording (genre, composer, label, track,
date, artists, lyricist; codec, bit rate, sample rate, channels, length), and whether it
carries embedded pictures. Read from the mutagen object `read_tags` already parsed: no
second parse of the file. Never raises (the caller keeps what it has on an error).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ccmirror.licence.sniff import classes

# Field -> tag names per convention (lower case for Vorbis/APE/ASF pairs).
_ID3 = {
    "genres": "TCON",
    "composer": "TCOM",
    "publisher": "TPUB",
    "track": "TRCK",
    "release_date": "TDRC",
    "artists": "TPE1",
    "lyricist": "TEXT",
}
_PAIRS = {
    "genres": ("genre", "wm/genre"),
    "composer": ("composer", "wm/composer"),
    "publisher": ("publisher", "label", "organization", "wm/publisher"),
    "track": ("tracknumber", "track", "wm/tracknumber"),
    "release_date": ("date", "year", "wm/year"),
    "artists": ("artist", "author"),
    "lyricist": ("lyricist", "wm/writer"),
}
_MP4 = {
    "genres": "\xa9gen",
    "composer": "\xa9wrt",
    "release_date": "\xa9day",
    "artists": "\xa9ART",
}
# mutagen's class name -> the codec MANIFEST.csv names.
_CODECS = {
    "FLAC": "flac",
    "OggFLAC": "flac",
    "MP3": "mp3",
    "EasyMP3": "mp3",
    "OggVorbis": "vorbis",
    "OggOpus": "opus",
    "WAVE": "pcm",
    "AIFF": "pcm",
    "MP4": "aac",
    "ASF": "wma",
    "MonkeysAudio": "ape",
    "WavPack": "wavpack",
}
LIST_FIELDS = ("genres", "artists")


def _texts(value: Any) -> list[str]:
    if type(value) is str:  # the common case first: what the last line does to a str
        text = value.strip("\x00 ")
        return [text] if text else []
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if hasattr(value, "text") and not isinstance(value, str):  # an ID3 frame
        return _texts(value.text)
    if hasattr(value, "value") and not isinstance(value, str):  # APE/ASF values
        return _texts(value.value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, tuple):
        return [str(value[0])]
    text = str(value).strip("\x00 ")
    return [text] if text else []


def _tag_values(f: Any, items: Any = None) -> dict[str, list[str]]:
    m = classes()
    tags, out = f.tags, {}
    if tags is None:
        return {}
    if isinstance(tags, m.ID3):
        for field, fid in _ID3.items():
            frames = tags.getall(fid) if items is None else items.get(fid, ())
            out[field] = [t for frame in frames for t in _texts(frame)]
    elif isinstance(tags, m.MP4Tags):
        for field, key in _MP4.items():
            out[field] = _texts(tags.get(key))
        trkn = tags.get("trkn")
        if trkn and isinstance(trkn[0], tuple) and trkn[0][0]:
            out["track"] = [f"{trkn[0][0]}/{trkn[0][1]}" if trkn[0][1] else str(trkn[0][0])]
    elif hasattr(tags, "items"):
        pairs: dict[str, list[str]] = {}
        for key, value in tags.items() if items is None else items:
            pairs.setdefault(str(key).lower(), []).extend(_texts(value))
        for field, names in _PAIRS.items():
            for name in names:  # the first name that has a value
                if pairs.get(name):
                    out[field] = pairs[name]
                    break
    return {k: v for k, v in out.items() if v}


def _pictures(f: Any, items: Any = None) -> int:
    m = classes()
    n = len(getattr(f, "pictures", None) or [])  # FLAC picture blocks
    tags = f.tags
    if isinstance(tags, m.ID3):
        n += len(tags.getall("APIC") if items is None else items.get("APIC", ()))
    elif isinstance(tags, m.MP4Tags):
        n += len(tags.get("covr") or [])
    elif isinstance(tags, m.VCommentDict) and items is not None:  # the names are lower case
        n += len(next((v for k, v in items if k == "metadata_block_picture"), None) or [])
    elif tags is not None and hasattr(tags, "get"):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            n += len(tags.get("metadata_block_picture") or [])
    return n


def recording_facts(f: Any, items: Any = None) -> tuple[dict[str, Any], int]:
    """(facts, embedded picture count) of a parsed mutagen file. Lists stay lists; the
    other tag fields are their first value; stream numbers are ints (length a float).
    `items`: `f.tags.items()` (ID3: the frames by id) where the caller has them already."""
    facts: dict[str, Any] = {}
    try:
        for field, values in _tag_values(f, items).items():
            facts[field] = values if field in LIST_FIELDS else values[0]
    except Exception:  # a damaged tag block: the stream facts may still be read
        facts = {}
    info = getattr(f, "info", None)
    codec = _CODECS.get(type(f).__name__)
    if codec:
        facts["codec"] = codec
    for field, attr in (("bit_rate", "bitrate"), ("sample_rate", "sample_rate")):
        value = getattr(info, attr, None)
        if isinstance(value, int | float) and value > 0:
            facts[field] = int(value)
    channels = getattr(info, "channels", None)
    if isinstance(channels, int) and channels > 0:
        facts["channels"] = channels
    length = getattr(info, "length", None)
    if isinstance(length, int | float) and length > 0:
        facts["duration"] = round(float(length), 3)
    try:
        pictures = _pictures(f, items)
    except Exception:
        pictures = 0
    return facts, pictures
