"""`status` on a follower: what it holds, what it refused, what it waits for."""

from __future__ import annotations

from typing import Any

from ccmirror.catalogue.follow import follow_totals, listed_rows
from ccmirror.mirror import Mirror


def follow_status(mirror: Mirror) -> dict[str, Any]:
    db = mirror.db
    by_state = follow_totals(db)
    torrents = [
        {
            "name": r["name"],
            "btih": r["btih"],
            "tier": r["tier"],
            "state": r["state"],
            "data_size": r["data_size"],
            "listed_obsolete": bool(r["listed_obsolete"]),
            "held_at": r["held_at"],
            "reason": r["reason"],
        }
        for r in listed_rows(db)
    ]
    held = by_state.get("held", {"torrents": 0, "bytes": 0})
    space = mirror.manifest.follow.space
    return {
        "follower": True,
        "list": mirror.manifest.follow.torrents,
        "space": space,
        "held": held["torrents"],
        "held_bytes": held["bytes"],
        "space_free": max(0, space - held["bytes"]),
        "states": by_state,
        "quarantined": [t for t in torrents if t["state"] == "quarantined"],
        "torrents": torrents,
    }
