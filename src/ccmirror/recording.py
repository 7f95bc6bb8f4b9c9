"""Per-recording metadata (artists, track, genres, composer, ..., stream facts) in the
catalogue's `files` columns (migration 0030): parsing the sources' shapes and writing them.

The source's values come first: harvest writes them; check only fills what is still empty
(`fill_from_tags`), and notes a tag that disagrees with the source in the evidence.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from ccmirror.catalogue.recordings import SOURCE_COLUMNS, recording_columns_set
from ccmirror.sources.values import iso_date

STREAM_COLUMNS = ("codec", "bit_rate", "sample_rate", "channels")


def json_list(values: Iterable[Any]) -> str | None:
    """Distinct non-empty strings, in order, as a JSON list; None when there are none."""
    out: list[str] = []
    for v in values:
        text = str(v).strip() if v is not None else ""
        if text and text not in out:
            out.append(text)
    return json.dumps(out, ensure_ascii=False) if out else None


def parse_genres(value: Any) -> str | None:
    """A genre list as the sources give it, stored as a JSON list of titles.

    IA: a string or list of strings, maybe ';'-separated. FMA: `track_genres`, a Python
    literal list of {'genre_id', 'genre_title', ...} dicts. A shape that does not parse is
    kept as the source's text (never dropped, never guessed at)."""
    if value is None:
        return None
    if isinstance(value, list):
        return json_list(p for v in value for p in str(v).split(";"))
    text = str(value).strip()
    if not text:
        return None
    if text[0] in "[{":
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        items = parsed if isinstance(parsed, list) else [parsed]
        titles = [
            g.get("genre_title") if isinstance(g, dict) else g
            for g in items
            if isinstance(g, dict | str)
        ]
        if len(titles) != len(items) or not all(isinstance(t, str) for t in titles):
            return text
        return json_list(titles) if titles else None
    return json_list(text.split(";"))


def as_list(stored: str | None) -> list[str]:
    """A stored list column read back: a JSON list, or the kept text as one entry."""
    if not stored:
        return []
    try:
        value = json.loads(stored)
    except ValueError:
        return [stored]
    return [str(v) for v in value] if isinstance(value, list) else [stored]


def joined(stored: str | None) -> str:
    """A list column as one MANIFEST.csv / page cell: "Rock; Folk"."""
    return "; ".join(as_list(stored))


def set_recording(db: sqlite3.Connection, file_id: int, values: Mapping[str, Any]) -> None:
    """Write the source's values for one file (None clears: the source is the truth);
    the caller holds the transaction."""
    cols = [c for c in SOURCE_COLUMNS if c in values]
    if not cols:
        return
    recording_columns_set(db, file_id, cols, values)


# Columns check fills from the file's tags and stream where the source left them empty.
FILLED = (*SOURCE_COLUMNS, *STREAM_COLUMNS, "duration")
_FILL_SQL = f"UPDATE files SET {', '.join(f'{c} = coalesce({c}, ?)' for c in FILLED)} WHERE id = ?"


def _stored(field: str, value: Any) -> Any:
    if field in ("artists", "genres"):
        return json_list(value if isinstance(value, list) else [value])
    if field == "release_date":
        # One date parser for sources and tags (a TDRC is an ID3TimeStamp, not a str).
        return iso_date(str(value) if value is not None else None, with_time=True)
    return value


def _same(field: str, source: Any, tag: Any) -> bool:
    if field in ("artists", "genres"):
        return {s.casefold() for s in as_list(source)} == {t.casefold() for t in as_list(tag)}
    if field == "track":  # "01" and "1/12" are track 1
        return str(source).split("/")[0].lstrip("0") == str(tag).split("/")[0].lstrip("0")
    if field == "release_date":
        return str(tag).startswith(str(source)) or str(source).startswith(str(tag))
    return str(source).strip().casefold() == str(tag).strip().casefold()


def merge_tags(
    row: Mapping[str, Any], facts: Mapping[str, Any]
) -> tuple[tuple[Any, ...], list[dict[str, str]]]:
    """The fill statement's values for one file (the tag's value where the source is
    silent; coalesce keeps the source's where it spoke) and evidence notes where the file's
    tag disagrees with the source (the source's value is the one kept)."""
    values, notes = [], []
    for field in FILLED:
        tag = facts.get(field)
        stored = _stored(field, tag) if tag not in (None, "", []) else None
        values.append(stored)
        source = row[field]
        if stored is None or source in (None, "") or field in STREAM_COLUMNS:
            continue
        if field == "duration":
            if abs(float(source) - float(stored)) > max(2.0, 0.02 * float(source)):
                notes.append({"tag": "catalogue:tag_duration", "value": f"{stored} s"})
            continue
        if not _same(field, source, stored):
            shown = joined(stored) if field in ("artists", "genres") else str(stored)
            notes.append({"tag": f"catalogue:tag_{field}", "value": shown})
    return tuple(values), notes


def fill_sql() -> str:
    """UPDATE files SET <each filled column> = coalesce(it, ?) ... WHERE id = ?"""
    return _FILL_SQL
