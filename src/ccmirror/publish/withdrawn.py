"""`public/withdrawn.json`: every takedown, so other mirrors can honour it too."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror.catalogue.withdrawals import withdrawals
from ccmirror.fsutil import atomic_write_json
from ccmirror.mirror import Mirror

__all__ = ["withdrawn_list", "write_withdrawn_json"]


def withdrawn_list(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{r['source']}:{r['source_id']}",
            "source": r["source"],
            "source_id": r["source_id"],
            "reason": r["reason"],
            "withdrawn_at": r["withdrawn_at"],
            "packs_obsoleted": json.loads(r["packs_obsoleted"]),
        }
        for r in withdrawals(db)
    ]


def write_withdrawn_json(mirror: Mirror) -> Path:
    """`public/withdrawn.json`: every takedown, so other mirrors can honour it too."""
    path = mirror.public_dir / "withdrawn.json"
    atomic_write_json(path, withdrawn_list(mirror.db))
    return path
