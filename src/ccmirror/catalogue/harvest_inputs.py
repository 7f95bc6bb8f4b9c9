"""What a source's last complete harvest read and reported (migration 0065), for the
whole-input skip of a re-harvest: when every input of a harvest (its metadata, audio
index, licence policy, the harvester's code and the catalogue's schema: the source's
own key) is the same as the recorded one, and nothing has written to the source's items
or their first files since (0065's triggers forget the record on any such write), the
row pass would change nothing and count the same: its counts are the recorded ones.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ccmirror.catalogue.db import transaction, utcnow


def schema_names(db: sqlite3.Connection) -> str:
    """The catalogue's applied migrations, in order: part of every input key (a
    migration may change what a harvest writes)."""
    return ",".join(r[0] for r in db.execute("SELECT name FROM migrations ORDER BY name"))


def recorded(db: sqlite3.Connection, source: str, key: str) -> tuple[dict[str, Any], str] | None:
    """(the counts, when) of the source's last complete harvest, if its key is `key`."""
    row = db.execute(
        "SELECT result, harvested_at FROM harvest_inputs WHERE source = ? AND input_key = ?",
        (source, key),
    ).fetchone()
    return (json.loads(row[0]), row[1]) if row is not None else None


def forget(db: sqlite3.Connection, source: str | None = None) -> None:
    """Forget the record of `source` (every source: None). A harvest does this before
    its first write, so one killed half-way leaves no record behind."""
    with transaction(db):
        if source is None:
            db.execute("DELETE FROM harvest_inputs")
        else:
            db.execute("DELETE FROM harvest_inputs WHERE source = ?", (source,))


def record(db: sqlite3.Connection, source: str, key: str, result: dict[str, Any]) -> None:
    """Record a complete harvest's key and counts, after its last write."""
    with transaction(db):
        db.execute(
            "INSERT OR REPLACE INTO harvest_inputs (source, input_key, result, harvested_at)"
            " VALUES (?, ?, ?, ?)",
            (source, key, json.dumps(result, sort_keys=True), utcnow()),
        )
