"""The IA harvester's values for the catalogue: items, their files, popularity, from IA's
answers (the SQL is in `ccmirror.catalogue.ia`)."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from ccmirror.catalogue.ia import (
    clash_refused,
    file_by_name,
    file_changed_at_source,
    file_inserted,
    file_skipped,
    file_titled,
    ia_items_known,
    ia_popularity,
    item_file_ids,
    item_repointed,
    item_state,
    item_upserted,
)
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import safe_relpath
from ccmirror.recording import json_list, parse_genres, set_recording
from ccmirror.sources.values import clean_text, iso_date


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def text(value: Any) -> str | None:
    """A (possibly repeated) text field, entities unescaped; None when empty."""
    items = [t for t in (clean_text(v) for v in as_list(value)) if t]
    return "; ".join(items) if items else None


def first_date(value: Any) -> str | None:
    """The first real date of a (possibly repeated) date field, as ISO 8601."""
    return next((d for d in (iso_date(v) for v in as_list(value)) if d), None)


def to_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def newest_stamp(doc: dict[str, Any]) -> str | None:
    stamps = as_list(doc.get("oai_updatedate"))
    return max(stamps) if stamps else None


def known_items(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """What the catalogue holds of every IA item, for the harvest's decisions."""
    return ia_items_known(db)


def refuse_clash(db: sqlite3.Connection, item_id: int, name: str, why: str) -> None:
    """A file whose name clashes with another's is refused, unless it is in the store."""
    clash_refused(db, item_id, name, why)


def upsert_item(
    db: sqlite3.Connection,
    endpoint: str,
    d: dict[str, Any],
    meta: dict[str, Any] | None,
    licence_id: str | None,
    status: str,
    reason: str | None,
    now: str,
) -> int:
    ident = d["identifier"]
    md = (meta or {}).get("metadata") or {}
    collections = as_list(md.get("collection")) or as_list(d.get("collection"))
    extra = {"item_last_updated": (meta or {}).get("item_last_updated")}
    row = (
        text(md.get("title")),
        text(md.get("creator")),
        first_date(md.get("date")),
        json.dumps(collections),
        f"{endpoint}/details/{quote(ident)}",
        (as_list(md.get("licenseurl")) or [None])[0],  # a repeated field: the first
        licence_id,
        to_int(d.get("downloads")),
        to_int(d.get("month")),
        to_int(d.get("week")),
        float(to_int(d.get("downloads"))),
        json.dumps(extra),
        # Refused-by-search items keep no stamp so a later change of rules re-reads them.
        newest_stamp(d) if meta is not None else None,
        status,
        reason,
        now,
    )
    return item_upserted(db, ident, row, now)


def repoint_item(db: sqlite3.Connection, item_id: int, ident: str, endpoint: str) -> None:
    """Aim an item's page and its files' download URLs at `endpoint`."""
    item_repointed(
        db,
        item_id,
        f"{endpoint}/details/{quote(ident)}",
        lambda name: f"{endpoint}/download/{quote(ident)}/{quote(name)}",
    )


def update_popularity(db: sqlite3.Connection, d: dict[str, Any]) -> None:
    ia_popularity(
        db,
        d["identifier"],
        to_int(d.get("downloads")),
        to_int(d.get("month")),
        to_int(d.get("week")),
        float(to_int(d.get("downloads"))),
    )


def upsert_file(
    db: sqlite3.Connection,
    endpoint: str,
    ident: str,
    item_id: int,
    f: dict[str, Any],
    *,
    new_item: bool = False,
    kind: str = "audio",
) -> int:
    """Record one file; return 1 when it is new or changed (to be fetched), else 0.

    `new_item`: the item was inserted just now (no takedown, no earlier rows to read);
    `kind`: 'audio', or 'artwork' (the item's cover images)."""
    name = str(f.get("name") or "")
    # A size or checksum that is not one (IA metadata is hand-edited at times) is unknown,
    # not 0 or garbage: those would fail every download of good bytes, for ever.
    size = _size(f.get("size"))
    md5 = _hexdigest(f.get("md5"), 32)
    sha1 = _hexdigest(f.get("sha1"), 40)
    title = text(f.get("title"))  # credited in ATTRIBUTION.md
    try:
        safe_relpath(name)
        status, reason = "pending", None
    except UnsafeName as e:
        status, reason = "refused", f"unsafe name: {e.message}"
    url = f"{endpoint}/download/{quote(ident)}/{quote(name)}"
    withdrawn, prev = False, None
    if not new_item:
        item = item_state(db, item_id)
        withdrawn = item is not None and item["status"] == "withdrawn"
        if withdrawn:  # a takedown outlives any change at the source: never fetched again
            status, reason = "refused", item["reason"] or "withdrawn"
        prev = file_by_name(db, item_id, name)
    if prev is None:
        file_inserted(
            db,
            (
                item_id,
                name,
                size,
                md5,
                sha1,
                f.get("format"),
                _origin(f),
                url,
                status,
                reason,
                title,
            ),
            kind,
        )
        return 0 if withdrawn else 1
    file_titled(db, prev["id"], title)
    if withdrawn or (prev["size"], prev["md5"], prev["sha1"]) == (size, md5, sha1):
        return 0  # a withdrawn item's files stay as the takedown left them: refused
    # New bytes at the source: fetch again (the verified old copy stays until replaced).
    file_changed_at_source(db, prev["id"], (size, md5, sha1, f.get("format"), url, status, reason))
    return 1


def record_recordings(
    db: sqlite3.Connection, item_id: int, md: dict[str, Any], files: list[dict[str, Any]]
) -> None:
    """Per-recording metadata of an item's recorded files from their IA file entries
    (creator, track, genre), the item's `creator`, `subject` and `date` where a file is
    silent; the caller holds the transaction."""
    recorded = item_file_ids(db, item_id)
    item_genres = parse_genres(md.get("subject"))
    for f in files:
        file_id = recorded.get(str(f.get("name") or ""))
        if file_id is None:
            continue
        artists = (
            as_list(f.get("creator")) or as_list(f.get("artist")) or as_list(md.get("creator"))
        )
        set_recording(
            db,
            file_id,
            {
                "artists": json_list(p for a in artists for p in a.split(";")),
                "track": (text(f.get("track")) or "").strip() or None,
                "genres": parse_genres(f.get("genre")) or item_genres,
                "composer": text(f.get("composer")) or text(md.get("composer")),
                "publisher": text(md.get("publisher")),
                "release_date": iso_date(text(f.get("year")) or text(md.get("date"))),
            },
        )


def skip_file(
    db: sqlite3.Connection, endpoint: str, ident: str, item_id: int, f: dict[str, Any], why: str
) -> int:
    """Record a file that is not fetched, with why (refused); a copy already fetched keeps
    its row. Return 1 when the row is new or its reason changed."""
    name = str(f.get("name") or "")
    url = f"{endpoint}/download/{quote(ident)}/{quote(name)}"
    return file_skipped(
        db,
        (
            item_id,
            name,
            _size(f.get("size")),
            _hexdigest(f.get("md5"), 32),
            _hexdigest(f.get("sha1"), 40),
            f.get("format"),
            _origin(f),
            url,
            why,
            text(f.get("title")),
        ),
    )


def name_clashes(
    files: list[dict[str, Any]], fetched: Collection[str] = ()
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """An item's file entries without repeats (the first entry of a name wins), and the
    names that cannot share a folder with the others, each with its reason: a name that
    another uses as a folder ("a" beside "a/b.flac": the nested one is refused) and a name
    equal to an earlier one after Unicode NFC normalisation (one path on macOS and in
    most torrent clients). Names already `fetched` keep their place: a newcomer that
    clashes with one of them is the one refused."""
    kept, seen = [], set()
    for f in files:
        name = str(f.get("name") or "")
        if name not in seen:
            seen.add(name)
            kept.append(f)
    have = set(fetched)
    have_folders = {"/".join(n.split("/")[:k]) for n in have for k in range(1, n.count("/") + 1)}
    refused: dict[str, str] = {}
    nfc = {unicodedata.normalize("NFC", n): n for n in sorted(have)}
    for f in kept:
        name = str(f.get("name") or "")
        if name in have:
            continue
        parts = name.split("/")
        folder = next(
            (
                "/".join(parts[:n])
                for n in range(1, len(parts))
                if "/".join(parts[:n]) in seen or "/".join(parts[:n]) in have
            ),
            None,
        )
        key = unicodedata.normalize("NFC", name)
        if folder is not None:
            refused[name] = f"name clash: {folder!r} is a file, not a folder"
        elif name in have_folders:
            refused[name] = f"name clash: {name!r} is a folder of files already fetched"
        elif key in nfc:
            refused[name] = f"name clash: same as {nfc[key]!r} after Unicode normalisation"
        else:
            nfc[key] = name
    return kept, refused


def _size(value: Any) -> int | None:
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _hexdigest(value: Any, length: int) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if len(text) == length and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def _origin(f: dict[str, Any]) -> str:
    return "original" if f.get("source") == "original" else "derivative"
