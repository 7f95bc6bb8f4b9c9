"""A follower's rows (`follow_torrents`, 0025): each state change one function, each its
own short transaction. `ccmirror.follow.state` moves the bytes that go with them."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from ccmirror.catalogue.db import transaction, utcnow

if TYPE_CHECKING:
    from ccmirror.follow.listing import Listed

__all__ = [
    "follow_rows",
    "follow_totals",
    "held_count",
    "held_names",
    "listed_obsolete",
    "listed_rows",
    "torrent_dropped",
    "torrent_held",
    "torrent_quarantined",
    "torrent_reason",
    "torrent_wanted",
]


def follow_rows(db: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    """btih -> row, every torrent the follower has a row for."""
    return {r["btih"]: r for r in db.execute("SELECT * FROM follow_torrents")}


def torrent_wanted(db: sqlite3.Connection, e: Listed) -> None:
    """Plan to download `e` (a new row, or a wanted or dropped one wanted again)."""
    now = utcnow()
    with transaction(db):
        db.execute(
            "INSERT INTO follow_torrents (btih, name, tier, is_metadata, data_size, url, state,"
            " listed_obsolete, added_to_list_at, first_planned_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'wanted', ?, ?, ?, ?)"
            " ON CONFLICT (btih) DO UPDATE SET state = 'wanted', reason = NULL,"
            " url = excluded.url, tier = excluded.tier, updated_at = excluded.updated_at"
            " WHERE follow_torrents.state IN ('wanted', 'dropped')",
            (e.btih, e.name, e.tier, int(e.is_metadata), e.data_size, e.url,
             int(e.obsolete), e.added, now, now),
        )  # fmt: skip


def torrent_reason(db: sqlite3.Connection, btih: str, reason: str | None) -> None:
    with transaction(db):
        db.execute(
            "UPDATE follow_torrents SET reason = ?, updated_at = ? WHERE btih = ?",
            (reason, utcnow(), btih),
        )


def listed_obsolete(db: sqlite3.Connection, entries: list[Listed]) -> None:
    """Record what the list now says about the torrents we have rows for."""
    with transaction(db):
        db.executemany(
            "UPDATE follow_torrents SET listed_obsolete = ? WHERE btih = ?",
            [(int(e.obsolete), e.btih) for e in entries],
        )


def torrent_held(db: sqlite3.Connection, btih: str, torrent_path: str) -> None:
    """Verified, its .torrent written: held (seeded)."""
    now = utcnow()
    with transaction(db):
        db.execute(
            "UPDATE follow_torrents SET state = 'held', torrent_path = ?, reason = NULL,"
            " held_at = ?, updated_at = ? WHERE btih = ?",
            (torrent_path, now, now, btih),
        )


def torrent_quarantined(db: sqlite3.Connection, btih: str, reason: str) -> None:
    with transaction(db):
        db.execute(
            "UPDATE follow_torrents SET state = 'quarantined', reason = ?, torrent_path = NULL,"
            " updated_at = ? WHERE btih = ?",
            (reason, utcnow(), btih),
        )


def torrent_dropped(db: sqlite3.Connection, btih: str, reason: str) -> None:
    with transaction(db):
        db.execute(
            "UPDATE follow_torrents SET state = 'dropped', reason = ?, torrent_path = NULL,"
            " updated_at = ? WHERE btih = ?",
            (reason, utcnow(), btih),
        )


def held_names(db: sqlite3.Connection) -> list[str]:
    return [r["name"] for r in db.execute("SELECT name FROM follow_torrents WHERE state = 'held'")]


def held_count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM follow_torrents WHERE state = 'held'").fetchone()[0]


def follow_totals(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """State -> {torrents, bytes}."""
    return {
        r["state"]: {"torrents": r["n"], "bytes": r["b"]}
        for r in db.execute(
            "SELECT state, count(*) AS n, coalesce(sum(data_size), 0) AS b"
            " FROM follow_torrents GROUP BY state"
        )
    }


def listed_rows(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every row but the dropped ones, by state, tier and name."""
    return db.execute(
        "SELECT * FROM follow_torrents WHERE state != 'dropped'"
        " ORDER BY state, coalesce(tier, 1000000), name"
    ).fetchall()
