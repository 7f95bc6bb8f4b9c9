"""SQL of the budget selection (`ccmirror.tiers.select`): per-tier sums split by whether an
item is sealed in a pack, and the cut tier's items by popularity per byte, streamed.

Bytes per file follow the tier's quality: a compact tier counts what the store keeps
(`kept_sql`, its copies), a tier of originals the originals (`original_sql`). Both are
expressions over a `files` row aliased `f` (`ccmirror.compact.estimate`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccmirror.catalogue.tiers import FILE_EST, WANTED, Ranking

# Items with a file in a live sealed audio pack: held whatever the budget.
SEALED_ITEMS = (
    "SELECT f.item_id FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
    " JOIN files AS f ON f.id = pf.file_id WHERE p.status = 'sealed' AND p.obsolete = 0"
    " AND p.is_metadata = 0"
)
DENSITY_ORDER = "CASE WHEN bytes > 0 THEN share / bytes ELSE 1e300 END DESC, r.id"


@dataclass(frozen=True)
class Sizing:
    """How a file's bytes count: verdicts allowed, compact tiers and the two expressions."""

    allowed: tuple[str, ...]
    compact_tiers: tuple[int, ...]
    original_sql: str
    kept_sql: str

    def wanted(self) -> tuple[str, list[Any]]:
        marks = ",".join("?" * len(self.allowed))
        return f"{WANTED} AND (f.verdict IS NULL OR f.verdict IN ({marks}))", list(self.allowed)

    def in_compact(self, col: str) -> str:
        if not self.compact_tiers:
            return "0"
        return f"{col} IN ({','.join(str(int(k)) for k in self.compact_tiers)})"


def _sealed(a: str, sealed_first: bool) -> str:
    return f"{a}.id IN ({SEALED_ITEMS})" if sealed_first else "0"


def sums(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool
) -> dict[tuple[int, int], dict[str, Any]]:
    """(tier, sealed) -> items, share, files, bytes, original_bytes, est_bytes."""
    tier, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for r in db.execute(
        f"SELECT tier, sealed, count(*), sum(share) FROM (SELECT {tier} AS tier,"
        f" {share} AS share, {_sealed('i', sealed_first)} AS sealed"
        " FROM items AS i INDEXED BY items_rank_ok WHERE i.status = 'ok') GROUP BY 1, 2",
        tp + sp,
    ):
        out[(r[0], r[1])] = {
            "items": r[2],
            "share": r[3],
            "files": 0,
            "bytes": 0,
            "original_bytes": 0,
            "est_bytes": 0,
        }
    cond, cp = sz.wanted()
    comp = sz.in_compact("tier")
    for r in db.execute(
        f"SELECT tier, sealed, sum(CASE WHEN {comp} THEN 1 - replaced ELSE copy_of IS NULL END),"
        f" sum(CASE WHEN {comp} THEN kept ELSE orig END), sum(orig), sum(est)"
        f" FROM (SELECT {tier} AS tier, {_sealed('i', sealed_first)} AS sealed, f.copy_of,"
        " coalesce(f.compact IN ('copied', 'derivative'), 0) AS replaced,"
        f" {sz.kept_sql} AS kept, {sz.original_sql} AS orig,"
        f" CASE WHEN f.copy_of IS NULL THEN {FILE_EST} ELSE 0 END AS est"
        f" FROM files AS f JOIN items AS i ON i.id = f.item_id WHERE {cond}"
        " AND i.status = 'ok') GROUP BY 1, 2",
        tp + cp,
    ):
        row = out[(r[0], r[1])]
        row.update(files=r[2], bytes=r[3], original_bytes=r[4], est_bytes=r[5])
    return out


def cut_items(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool, tier: int
) -> Iterator[sqlite3.Row]:
    """Items of `tier` not sealed, with id, share, files, bytes, original_bytes,
    est_bytes; most listening per byte first (items of no bytes lead), ties by id."""
    tier_expr, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    cond, cp = sz.wanted()
    compact = tier in sz.compact_tiers
    files = (
        "1 - coalesce(f.compact IN ('copied', 'derivative'), 0)" if compact else "f.copy_of IS NULL"
    )
    size = sz.kept_sql if compact else sz.original_sql
    yield from db.execute(
        f"SELECT r.id, r.share, coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {files} END), 0)"
        f" AS files, coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {size} END), 0) AS bytes,"
        f" coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {sz.original_sql} END), 0)"
        " AS original_bytes, coalesce(sum(CASE WHEN f.id IS NULL OR f.copy_of IS NOT NULL"
        f" THEN 0 ELSE {FILE_EST} END), 0) AS est_bytes"
        f" FROM (SELECT i.id, {share} AS share FROM items AS i WHERE i.status = 'ok'"
        f" AND {tier_expr} = ? AND NOT {_sealed('i', sealed_first)}) AS r"
        f" LEFT JOIN files AS f ON f.item_id = r.id AND {cond} GROUP BY r.id"
        f" ORDER BY {DENSITY_ORDER}",
        [*sp, *tp, tier, *cp],
    )


def held_items(
    db: sqlite3.Connection, rk: Ranking, sealed_first: bool, cut_tier: int | None
) -> Iterator[int]:
    """Ids of the items held whole by a selection that cuts `cut_tier` (None: every
    tier): sealed ones and those of tiers before the cut; streamed."""
    tier, tp = rk.tier_sql()
    before = "1" if cut_tier is None else f"{tier} < {int(cut_tier)}"
    params = tp if cut_tier is not None else []
    for (item_id,) in db.execute(
        f"SELECT i.id FROM items AS i WHERE i.status = 'ok' AND ({before}"
        f" OR {_sealed('i', sealed_first)})",
        params,
    ):
        yield item_id
