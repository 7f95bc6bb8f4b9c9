"""Which cover images (`files.kind = 'artwork'`) are fetched: the one decision, in SQL.

Harvest records every original image of an item that has audio (`sources.ia.select.
is_artwork`); this then decides for all of them at once, so a change of the manifest
applies to items not read again too:

- `[torrents] artwork = false`: skipped;
- `[licence] require_embedded`: skipped (an image states no licence of its own, so it can
  never carry the embedded proof that policy asks for);
- `[torrents] max_artwork_size`: an item's images smallest first (those already fetched
  before the others) while their sum fits; the larger ones skipped. An image whose size
  the source does not list is skipped: the cap could not be kept.

A skipped image is `refused` with its reason (`R_*`, all starting with `SKIPPED`); one
the policy allows again is pending again. Fetched images stay as they are (the pack step
leaves them out when artwork is off; their verdict does under require_embedded).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ccmirror.catalogue.db import transaction

SKIPPED = "skipped: artwork"
R_OFF = "skipped: artwork off ([torrents] artwork = false)"
R_EMBEDDED = (
    "skipped: artwork states no licence of its own, so it cannot carry the embedded proof"
    " [licence] require_embedded asks for"
)
R_UNSIZED = "skipped: artwork of unknown size (max_artwork_size cannot be kept)"


def r_size(cap: int) -> str:
    return f"skipped: artwork past max_artwork_size ({cap} bytes per item)"


# Every artwork row the policy decides: pending, failed, or refused by the policy itself.
_DECIDED = (
    f"f.kind = 'artwork' AND (f.status IN ('pending', 'failed', 'fetched')"
    f" OR (f.status = 'refused' AND f.reason LIKE '{SKIPPED}%'))"
)


def apply_artwork_policy(
    db: sqlite3.Connection, *, enabled: bool, max_size: int, require_embedded: bool
) -> dict[str, Any]:
    """Set every decided artwork row to what the policy says; return what changed
    (`skipped`, `unskipped`) and the standing totals (`artwork_summary`)."""
    fixed = R_OFF if not enabled else R_EMBEDDED if require_embedded else None
    want = (
        "SELECT f.id, f.status, f.reason, CASE"
        " WHEN ? IS NOT NULL THEN ?"
        " WHEN f.size IS NULL THEN ?"
        " WHEN sum(f.size) OVER (PARTITION BY f.item_id ORDER BY f.status = 'fetched' DESC,"
        "  f.size, f.name ROWS UNBOUNDED PRECEDING) > ? THEN ?"
        f" END AS why FROM files AS f WHERE {_DECIDED}"
    )
    params = [fixed, fixed, R_UNSIZED, max_size, r_size(max_size)]
    with transaction(db):
        db.execute("DROP TABLE IF EXISTS temp.artwork_want")
        # Only the rows that change (so the updates need no second test): the table stays
        # small on a settled catalogue.
        db.execute(
            f"CREATE TEMP TABLE artwork_want AS SELECT * FROM ({want}) WHERE (why IS NOT NULL"
            " AND status != 'fetched' AND reason IS NOT why) OR (why IS NULL AND status ="
            " 'refused')",
            params,
        )
        skipped = db.execute(
            "UPDATE files SET status = 'refused', reason = w.why FROM temp.artwork_want AS w"
            " WHERE files.id = w.id AND w.why IS NOT NULL"
        ).rowcount
        unskipped = db.execute(
            "UPDATE files SET status = 'pending', reason = NULL FROM temp.artwork_want AS w"
            " WHERE files.id = w.id AND w.why IS NULL"
        ).rowcount
        db.execute("DROP TABLE temp.artwork_want")
    return {"skipped": skipped, "unskipped": unskipped, **artwork_summary(db)}


def artwork_summary(db: sqlite3.Connection) -> dict[str, Any]:
    """Artwork of live items: files and bytes wanted (pending or fetched), fetched, and
    the skipped ones counted by reason."""
    wanted, size, fetched = db.execute(
        "SELECT count(*), coalesce(sum(f.size), 0), coalesce(sum(f.status = 'fetched'), 0)"
        " FROM files AS f JOIN items AS i ON i.id = f.item_id WHERE f.kind = 'artwork'"
        " AND i.status = 'ok' AND f.status IN ('pending', 'fetched')"
    ).fetchone()
    reasons = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT f.reason, count(*) FROM files AS f JOIN items AS i ON i.id = f.item_id"
            " WHERE f.kind = 'artwork' AND i.status = 'ok' AND f.status = 'refused'"
            " GROUP BY f.reason ORDER BY 2 DESC, 1"
        )
    }
    return {"files": wanted, "bytes": size, "fetched": fetched, "skipped_reasons": reasons}


def pack_artwork(
    db: sqlite3.Connection, pack_name: str, allowed: tuple[str, ...]
) -> list[sqlite3.Row]:
    """The publishable cover images of a live sealed pack: path in the pack, size, sha256,
    the item's id and title; by item, then path."""
    marks = ",".join("?" * len(allowed))
    return db.execute(
        "SELECT pf.path, f.size, f.sha256, i.source_id, i.title FROM packs AS p"
        " JOIN pack_files AS pf ON pf.pack_id = p.id JOIN files AS f ON f.id = pf.file_id"
        " JOIN items AS i ON i.id = f.item_id WHERE p.name = ? AND p.status = 'sealed'"
        " AND p.obsolete = 0 AND f.kind = 'artwork' AND i.status = 'ok'"
        f" AND f.verdict IN ({marks}) ORDER BY i.source_id, pf.path",
        (pack_name, *allowed),
    ).fetchall()
