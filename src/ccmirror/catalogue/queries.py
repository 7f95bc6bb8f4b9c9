"""Shared catalogue reads."""

from __future__ import annotations

import sqlite3
from typing import Any


def status_counts(db: sqlite3.Connection) -> dict[str, Any]:
    """What the mirror holds: items and files by status, bytes, files by verdict."""
    items = {
        r["status"]: r["n"]
        for r in db.execute("SELECT status, count(*) AS n FROM items GROUP BY status")
    }
    files: dict[str, dict[str, int]] = {}
    for r in db.execute(
        "SELECT status, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM files GROUP BY status"
    ):
        files[r["status"]] = {"files": r["n"], "bytes": r["bytes"]}
    verdicts = {
        r["verdict"]: r["n"]
        for r in db.execute(
            "SELECT verdict, count(*) AS n FROM files WHERE verdict IS NOT NULL GROUP BY verdict"
        )
    }
    refused = {
        r["reason"]: r["n"]
        for r in db.execute(
            "SELECT coalesce(reason, '?') AS reason, count(*) AS n FROM items"
            " WHERE status = 'refused' GROUP BY 1 ORDER BY 2 DESC"
        )
    }
    return {
        "items": items,
        "files": files,
        "verdicts": verdicts,
        "refused": refused,
        "stored_bytes": files.get("fetched", {}).get("bytes", 0),
    }
