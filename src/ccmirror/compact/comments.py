"""The Vorbis comments a compact copy carries: the original's descriptive tags and, above
all, its licence evidence, so that `check` on the copy finds what it found on the original.

Only evidence the original's own tags stated is carried (never the source's declaration:
a copy must not look better evidenced than its original). Statements of rights (ID3 TCOP,
Vorbis/APE/ASF Copyright, MP4 cprt) become COPYRIGHT; every other licence statement (WCOP,
WXXX, TXXX, COMM, Vorbis LICENSE, ...) becomes LICENSE; ISRC and the MusicBrainz recording
id keep their Vorbis names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Evidence that is not the file's own tags (licence.check: source, catalogue, derived).
_NOT_TAGS = ("ia:", "fma:", "catalogue:")
_COPYRIGHT = {"tcop", "copyright", "cprt", "rights"}
# Descriptive tags worth keeping (mutagen's easy names -> Vorbis comment names).
_EASY = {
    "title": "TITLE",
    "artist": "ARTIST",
    "album": "ALBUM",
    "albumartist": "ALBUMARTIST",
    "date": "DATE",
    "tracknumber": "TRACKNUMBER",
    "discnumber": "DISCNUMBER",
    "genre": "GENRE",
    "composer": "COMPOSER",
    "performer": "PERFORMER",
    "organization": "ORGANIZATION",
}


def _key(tag: str) -> str | None:
    if tag.startswith(_NOT_TAGS) or tag.endswith(":verify"):
        return None
    name = tag.split(":", 1)[1] if ":" in tag else tag
    return "COPYRIGHT" if name.lower() in _COPYRIGHT else "LICENSE"


def licence_comments(evidence: str | list[dict[str, str]] | None) -> list[tuple[str, str]]:
    """LICENSE / COPYRIGHT comments from a file's recorded evidence (JSON or list)."""
    rows = json.loads(evidence) if isinstance(evidence, str) else (evidence or [])
    out: list[tuple[str, str]] = []
    for r in rows if isinstance(rows, list) else []:
        if not isinstance(r, dict):
            continue
        key = _key(str(r.get("tag") or ""))
        value = str(r.get("value") or "").strip()
        if key and value and (key, value) not in out:
            out.append((key, value))
    return out


def descriptive_comments(path: Path) -> list[tuple[str, str]]:
    """Title, artist, album ... as the original's tags give them (none if unreadable)."""
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
        tags = f.tags if f is not None else None
        items: Any = tags.items() if tags is not None and hasattr(tags, "items") else []
        out = []
        for name, values in items:
            key = _EASY.get(str(name).lower())
            for v in values if isinstance(values, list) else [values]:
                text = str(v).strip()
                if key and text and "\x00" not in text:
                    out.append((key, text))
        return out
    except Exception:  # unreadable descriptive tags: the copy just goes without them
        return []


def copy_comments(
    original: Path,
    evidence: str | list[dict[str, str]] | None,
    isrc: str | None,
    mbid: str | None,
    note: str,
) -> list[tuple[str, str]]:
    """Every comment of the copy: descriptive tags, licence evidence, ids and a note that
    says it is a format-shifted copy."""
    out = descriptive_comments(original) + licence_comments(evidence)
    if isrc:
        out.append(("ISRC", isrc))
    if mbid:
        out.append(("MUSICBRAINZ_TRACKID", mbid))
    out.append(("COMMENT", note))
    return out
