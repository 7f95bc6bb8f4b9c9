"""State changes of files, items and packs: each one function, the SQL here.

Stages call these instead of writing their own UPDATEs, so one change (a file back to
pending, say) clears the same columns whoever makes it. Each function is one short
transaction, or part of the caller's when it holds one (one atomic change).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ccmirror.catalogue.db import transaction, utcnow

__all__ = [
    "file_attempted",
    "file_evicted",
    "file_left_store",
    "files_back_to_pending",
    "files_fetched",
    "files_judged",
    "item_withdrawn",
]

# Everything a fetched copy and its verdict set: a file fetched again starts from scratch.
_BACK_TO_PENDING = """UPDATE files SET status = 'pending', reason = ?, store_path = NULL,
    fetched_at = NULL, verdict = NULL, verdict_reason = NULL, checked_at = NULL,
    checked_size = NULL, checked_mtime_ns = NULL, checked_key = NULL WHERE id = ?"""

_FETCHED = """UPDATE files SET status = 'fetched', reason = NULL, store_path = ?,
    fetched_at = ?, attempts = attempts + 1, fail_streak = 0, last_attempt = ?, size = ?,
    md5 = coalesce(md5, ?), sha1 = coalesce(sha1, ?), sha256 = ?
WHERE id = ?"""

_JUDGED = """UPDATE files SET verdict = ?, licence_id = ?, licence_url = ?, verdict_reason = ?,
       evidence = ?, isrc = ?, mbid = ?, checked_at = ?, checked_size = ?,
       checked_mtime_ns = ?, checked_key = ?, quarantine_path = ?
WHERE id = ?"""

_OUT_OF_OPEN_PACKS = """DELETE FROM pack_files WHERE file_id = ?
    AND pack_id IN (SELECT id FROM packs WHERE status = 'open')"""
_EVICTED = "left the store: outside the budget"


@contextmanager
def _write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    if db.in_transaction:
        yield db  # the caller's transaction: commits (or rolls back) with its other changes
    else:
        with transaction(db):
            yield db


def files_back_to_pending(db: sqlite3.Connection, rows: Iterable[tuple[str, int]]) -> None:
    """(reason, file id): fetch these files again, from scratch (no copy, no verdict)."""
    rows = list(rows)
    if rows:
        with _write(db):
            db.executemany(_BACK_TO_PENDING, rows)


def files_fetched(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Verified files now in the store: (store path, fetched at, attempted at, size, md5,
    sha1, sha256, file id); md5/sha1 the source gave are kept."""
    if rows:
        with _write(db):
            db.executemany(_FETCHED, rows)


def file_attempted(
    db: sqlite3.Connection, file_id: int, status: str, reason: str | None, *, backoff: bool
) -> None:
    """A fetch attempt that did not store the file: `failed` or `refused`, with why;
    `backoff`: a failure that counts towards its backoff. A file that was pending (new, or
    changed at the source since) starts a new streak."""
    with _write(db):
        db.execute(
            """UPDATE files SET status = ?, reason = ?, attempts = attempts + 1,
                   fail_streak = (CASE WHEN status = 'failed' THEN fail_streak ELSE 0 END) + ?,
                   last_attempt = ? WHERE id = ?""",
            (status, reason, int(backoff), utcnow(), file_id),
        )


def files_judged(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Verdicts (and where a quarantined file lies): (verdict, licence id, licence url,
    reason, evidence json, isrc, mbid, checked at, size, mtime ns, key, quarantine path, id)."""
    if rows:
        with _write(db):
            db.executemany(_JUDGED, rows)


def item_withdrawn(db: sqlite3.Connection, item: sqlite3.Row, reason: str) -> list[str]:
    """A takedown in the catalogue: the item withdrawn, its files refused, the packs that
    held it obsolete (returned), the withdrawal recorded (or its packs merged into it)."""
    ident = f"{item['source']}:{item['source_id']}"
    with _write(db):
        packs = [
            r["name"]
            for r in db.execute(
                "SELECT DISTINCT p.name FROM packs AS p JOIN pack_files AS pf ON pf.pack_id = p.id"
                " JOIN files AS f ON f.id = pf.file_id WHERE f.item_id = ? AND p.obsolete = 0"
                " ORDER BY p.name",
                (item["id"],),
            )
        ]
        db.executemany(
            "UPDATE packs SET obsolete = 1, obsolete_reason = ? WHERE name = ?",
            [(f"withdrawn: {ident}", name) for name in packs],
        )
        db.execute(
            "UPDATE items SET status = 'withdrawn', reason = ? WHERE id = ?",
            (f"withdrawn: {reason}", item["id"]),
        )
        db.execute(
            "UPDATE files SET status = 'refused', reason = ? WHERE item_id = ?",
            (f"withdrawn: {reason}", item["id"]),
        )
        if item["status"] != "withdrawn":
            db.execute(
                "INSERT INTO withdrawals (item_id, source, source_id, reason, withdrawn_at,"
                " previous_status, packs_obsoleted) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item["id"],
                    item["source"],
                    item["source_id"],
                    reason,
                    utcnow(),
                    item["status"],
                    json.dumps(packs),
                ),
            )
        elif packs:
            old = db.execute(
                "SELECT packs_obsoleted FROM withdrawals WHERE item_id = ?", (item["id"],)
            ).fetchone()
            merged = sorted(set(json.loads(old[0] if old else "[]")) | set(packs))
            db.execute(
                "UPDATE withdrawals SET packs_obsoleted = ? WHERE item_id = ?",
                (json.dumps(merged), item["id"]),
            )
    return packs


def file_left_store(db: sqlite3.Connection, file_id: int) -> None:
    """An original replaced by its verified copy: its bytes are gone, its record and
    checksums stay; out of every open pack (sealed packs never change)."""
    with _write(db):
        db.execute(_OUT_OF_OPEN_PACKS, (file_id,))
        db.execute("UPDATE files SET store_path = NULL WHERE id = ?", (file_id,))


def file_evicted(db: sqlite3.Connection, file_id: int, own_copy_of: int | None) -> None:
    """A file out of the store to fit the budget: out of every open pack and pending again;
    our own copy (`own_copy_of`: its original's id) is forgotten and made again later."""
    with _write(db):
        db.execute(_OUT_OF_OPEN_PACKS, (file_id,))
        if own_copy_of is None:
            db.execute(_BACK_TO_PENDING, (_EVICTED, file_id))
            return
        db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        db.execute(
            _BACK_TO_PENDING.replace("SET ", "SET compact = NULL, ", 1) + " AND store_path IS NULL",
            (_EVICTED, own_copy_of),
        )
