"""Which of an item's files to fetch: audio our licence check can read, and nothing else.

A file is selected when it is wanted (an original, or one of the manifest's formats), IA
names a format the licence check reads (mutagen parses its tags) and the name's extension
is one that format is written as. Audio that fails any of these is skipped with its reason,
at selection, rather than fetched and then quarantined as unreadable: Shorten (`.shn`),
a `.flac` that IA lists as VBR MP3, a private file (IA answers 403).
"""

from __future__ import annotations

from typing import Any

# IA format name (lower case) -> the extensions a file of that format has.
VERIFIABLE: dict[str, frozenset[str]] = {
    "flac": frozenset({".flac"}),
    "24bit flac": frozenset({".flac"}),
    "ogg vorbis": frozenset({".ogg", ".oga"}),
    "opus": frozenset({".opus", ".ogg"}),
    "wave": frozenset({".wav"}),
    "aiff": frozenset({".aif", ".aiff"}),
    "apple lossless audio": frozenset({".m4a", ".mp4"}),
    "m4a": frozenset({".m4a", ".mp4"}),
    "aac": frozenset({".m4a", ".mp4"}),
    "windows media audio": frozenset({".wma"}),
}
_MP3 = frozenset({".mp3"})  # "VBR MP3", "128Kbps MP3", "MP3 Sample", ...
# Audio that is not verifiable, or audio by its name only: skipped with a reason.
UNVERIFIABLE = {"shorten", "ape", "monkey's audio", "real audio", "midi", "wavpack"}
AUDIO_EXTS = {
    ".flac", ".mp3", ".ogg", ".oga", ".opus", ".wav", ".aif", ".aiff", ".m4a", ".mp4",
    ".wma", ".shn", ".ape", ".wv", ".ra", ".rm", ".mid", ".aac",
}  # fmt: skip


def _ext(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base[base.rfind(".") :].lower() if "." in base else ""


def _exts_for(fmt: str) -> frozenset[str] | None:
    low = fmt.lower().strip()
    if low in VERIFIABLE:
        return VERIFIABLE[low]
    if low.endswith("mp3") or low.startswith("mp3"):
        return _MP3
    return None


def is_audio(f: dict[str, Any]) -> bool:
    """Does the entry look like audio, by its format or its name?"""
    fmt = str(f.get("format") or "").lower()
    return (
        _exts_for(fmt) is not None
        or fmt in UNVERIFIABLE
        or _ext(str(f.get("name") or "")) in AUDIO_EXTS
    )


def choose(
    files: list[dict[str, Any]], wanted: str | tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """(files to fetch, [(file, why it is skipped)]) among an item's file entries.

    Entries that are not wanted at all (derivatives in "original" mode, covers, text) are
    in neither list."""
    selected: list[dict[str, Any]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for f in files:
        fmt = str(f.get("format") or "").strip()
        if wanted == "original":
            if f.get("source") != "original" or not is_audio(f):
                continue
        elif fmt not in wanted:
            continue
        why = skip_reason(f)
        if why is None:
            selected.append(f)
        else:
            skipped.append((f, why))
    return selected, skipped


def skip_reason(f: dict[str, Any]) -> str | None:
    """Why a wanted audio file is not fetched; None when it is."""
    fmt = str(f.get("format") or "").strip()
    ext = _ext(str(f.get("name") or ""))
    if str(f.get("private", "")).lower() == "true":
        return "skipped: private file (the archive answers 403)"
    exts = _exts_for(fmt)
    if exts is None:
        what = f"format {fmt!r}" if fmt else "no format given"
        return f"skipped: {what} cannot be verified by the licence check"
    if ext and ext not in exts:  # no extension contradicts nothing: mutagen reads content
        return f"skipped: the name's extension ({ext}) contradicts its format ({fmt})"
    return None


# Cover art: the images uploaded with the release. IA lists them as source "original" with
# format "JPEG" or "PNG"; what it makes itself is "derivative" (`<name>_thumb.jpg`, "JPEG
# Thumb"; spectrogram PNGs) or "metadata", or an original of its own format ("Item Tile"
# `__ia_thumb.jpg`, "Collection Header"), and none of those is taken.
ARTWORK_FORMATS: dict[str, frozenset[str]] = {
    "jpeg": frozenset({".jpg", ".jpeg"}),
    "png": frozenset({".png"}),
}


def is_artwork(f: dict[str, Any]) -> bool:
    """An original JPEG/PNG uploaded with the item (not one IA generated)."""
    if f.get("source") != "original" or str(f.get("private", "")).lower() == "true":
        return False
    exts = ARTWORK_FORMATS.get(str(f.get("format") or "").strip().lower())
    name = str(f.get("name") or "")
    base = name.rsplit("/", 1)[-1].lower()
    if exts is None or _ext(name) not in exts:
        return False
    # IA's generated images, should one ever be listed as an original JPEG/PNG.
    stem = base.rsplit(".", 1)[0]
    return not (base.startswith("__ia_") or stem.endswith(("_thumb", "_itemimage")))


def choose_artwork(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An item's cover images (`is_artwork`), in the item's order. Whether they are
    fetched ([torrents] artwork, max_artwork_size, require_embedded) is decided for every
    item at once after the harvest (`catalogue.artwork.apply_artwork_policy`)."""
    return [f for f in files if is_artwork(f)]
