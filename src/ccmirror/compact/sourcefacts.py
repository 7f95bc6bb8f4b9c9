"""What a source says that compact tiers use: playing times, and IA's lossy derivatives.

The IA harvester calls `record_ia_files` with an item's whole file list: every original's
`length` becomes its `duration`, and the item's Ogg Vorbis / VBR MP3 derivatives of a
recorded original are kept in `derivatives` with IA's size and checksums (fetched, and
verified, instead of the original when a compact tier wants the smaller file).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any
from urllib.parse import quote

from ccmirror.catalogue.compact import source_facts_recorded
from ccmirror.catalogue.ia import item_file_ids

# IA's lossy derivative formats worth a compact tier (name as IA writes it, lower case).
DERIVATIVE_FORMATS = {"ogg vorbis": "Ogg Vorbis", "vbr mp3": "VBR MP3"}
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_length(value: Any) -> float | None:
    """IA `length` ("213.45", "3:33", "1:02:03") or FMA `track_duration` -> seconds."""
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    if not text:
        return None
    m = _CLOCK.match(text)
    try:
        if m:
            hours, minutes, seconds = m.group(1), m.group(2), m.group(3)
            total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            total = float(text)
    except ValueError:
        return None
    return total if 0 < total < 7 * 24 * 3600 else None


def _hex(value: Any, length: int) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    ok = len(text) == length and all(c in "0123456789abcdef" for c in text)
    return text if ok else None


def _size(value: Any) -> int | None:
    text = str(value).strip() if isinstance(value, str | int) else ""
    return int(text) if text.isascii() and text.isdigit() else None


def record_ia_files(
    db: sqlite3.Connection, endpoint: str, ident: str, item_id: int, files: list[dict[str, Any]]
) -> None:
    """Durations and derivatives of one IA item's recorded files; the caller holds the
    transaction. The item's derivative rows are replaced whole (the listing is the truth)."""
    recorded = item_file_ids(db, item_id)
    durations, derived = [], []
    for f in files:
        if not isinstance(f, dict):
            continue
        name = str(f.get("name") or "")
        if f.get("source") == "original" and name in recorded:
            seconds = parse_length(f.get("length"))
            if seconds is not None:
                durations.append((seconds, recorded[name]))
            continue
        fmt = DERIVATIVE_FORMATS.get(str(f.get("format") or "").lower())
        original = str(f.get("original") or "")
        if f.get("source") != "derivative" or fmt is None or original not in recorded:
            continue
        if str(f.get("private", "")).lower() == "true" or name in recorded:
            continue  # not fetchable, or already a file of its own
        size, md5, sha1 = _size(f.get("size")), _hex(f.get("md5"), 32), _hex(f.get("sha1"), 40)
        if size is None or not (md5 or sha1):
            continue  # a copy must be verified like a download: no checksums, no copy
        url = f"{endpoint}/download/{quote(ident)}/{quote(name)}"
        derived.append((recorded[original], name, fmt, size, md5, sha1, url))
    source_facts_recorded(db, item_id, durations, derived)
