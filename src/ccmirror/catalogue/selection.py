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

from ccmirror.catalogue.runitems import run_items
from ccmirror.catalogue.tiers import FILE_EST, Ranking, verdict_filter
from ccmirror.catalogue.tiersums import ITEM_FILES, ITEMS, part_sums, parts

# Items with a file in a live sealed audio pack: held whatever the budget.
SEALED_ITEMS = (
    "SELECT f.item_id FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
    " JOIN files AS f ON f.id = pf.file_id WHERE p.status = 'sealed' AND p.obsolete = 0"
    " AND p.is_metadata = 0"
)
DENSITY = "(CASE WHEN bytes > 0 THEN share / bytes ELSE 1e300 END)"


@dataclass(frozen=True)
class Sizing:
    """How a file's bytes count: verdicts allowed, compact tiers and the two expressions."""

    allowed: tuple[str, ...]
    compact_tiers: tuple[int, ...]
    original_sql: str
    kept_sql: str

    def wanted(self, scan: bool = False) -> tuple[str, list[Any]]:
        return verdict_filter(self.allowed, scan)

    def in_compact(self, col: str) -> str:
        if not self.compact_tiers:
            return "0"
        return f"{col} IN ({','.join(str(int(k)) for k in self.compact_tiers)})"


def _sealed(db: sqlite3.Connection, a: str, sealed_first: bool) -> str:
    """SQL: the item is sealed in a live pack ("0" when no live audio pack is sealed, so
    nothing is probed per row)."""
    if not sealed_first or db.execute(SEALED_ITEMS + " LIMIT 1").fetchone() is None:
        return "0"
    return f"{a}.id IN ({SEALED_ITEMS})"


def _with_sealed(exprs: list[str], sealed: str) -> str:
    """sum() of each expression, then (when anything is sealed) its sealed part."""
    sums = [f"sum({e})" for e in exprs]
    if sealed != "0":
        sums += [f"sum(CASE WHEN {sealed} THEN {e} ELSE 0 END)" for e in exprs]
    return ", ".join(sums)


def sums(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool, budget: int | None = None
) -> tuple[dict[tuple[int, int], dict[str, Any]], dict[int, CutFill]]:
    """(tier, sealed) -> items, share, files, bytes, original_bytes, est_bytes. Summed per
    run of the ranking (`catalogue.tiersums`): no sort of the catalogue. With a `budget`
    and nothing sealed, a tier that the bytes per item of the tiers before it say will
    not fit is read by its fill (`cut_fill`, which sums the whole tier too) instead of
    being summed first and read again to fill it: the fills made so are returned
    (tier -> CutFill; a guess that was wrong costs time, never a figure)."""
    share, sp = rk.share_sql()
    sealed = _sealed(db, "i", sealed_first)
    shares = sp * (1 if sealed == "0" else 2)
    if sealed == "0":  # nothing sealed: the ranking's counts say it (`runitems`)
        items = {k: [n, sh, n] for k, (n, sh) in run_items(db, rk).items()}
    else:
        items = part_sums(db, rk, lambda _t: (_with_sealed([share, "1"], sealed), shares), ITEMS)
    out: dict[tuple[int, int], dict[str, Any]] = {}

    def split(tier: int, values: list[Any], names: tuple[str, ...]) -> None:
        n = len(names)
        whole, part = values[:n], values[n:] if sealed != "0" else [0] * n
        for flag, vals in ((1, part), (0, [w - p for w, p in zip(whole, part, strict=True)])):
            row = out.setdefault((tier, flag), dict.fromkeys(FIGURES, 0) | {"share": 0.0})
            for name, v in zip(names, vals, strict=True):
                row[name] += v

    for (_, tier), v in items.items():
        split(tier, v[1:], ("share", "items"))
    for key in [k for k, row in out.items() if not row["items"]]:
        del out[key]  # GROUP BY's way: only (tier, sealed) pairs that hold items
    cond, cp = sz.wanted(scan=True)

    def file_select(tier: str) -> tuple[str, list[Any]]:
        comp = sz.in_compact(tier)
        return (
            _with_sealed(
                [
                    f"CASE WHEN {comp} THEN 1 - coalesce(f.compact IN ('copied', 'derivative'),"
                    " 0) ELSE f.copy_of IS NULL END",
                    f"CASE WHEN {comp} THEN {sz.kept_sql} ELSE {sz.original_sql} END",
                    sz.original_sql,
                    f"CASE WHEN f.copy_of IS NULL THEN {FILE_EST} ELSE 0 END",
                ],
                sealed,
            ),
            [],
        )

    body, names = f"{ITEM_FILES} AND {cond}", ("files", "bytes", "original_bytes", "est_bytes")
    if budget is None or sealed != "0":
        for (_, tier), v in part_sums(db, rk, file_select, body, cp, split=True).items():
            split(tier, v[1:], names)
        return {k: v for k, v in out.items() if v["items"]}, {}
    fills: dict[int, CutFill] = {}
    pinned = part_sums(db, rk, file_select, body, cp, pinned_only=True)
    used, cut, seen_items, seen_bytes = 0, False, 0, 0
    for tier in sorted(k for k, flag in out if not flag and out[(k, flag)]["items"]):
        n = out[(tier, 0)]["items"]
        if not cut and seen_bytes and used + n * seen_bytes / seen_items > budget:
            fills[tier] = fill = cut_fill(db, rk, sz, sealed_first, tier, budget - used)
            split(tier, [fill.whole[k] for k in names], names)
        else:
            got = part_sums(db, rk, file_select, body, cp, split=True, tier=tier)
            for (_, t), v in [*got.items(), *((k, v) for k, v in pinned.items() if k[1] == tier)]:
                split(t, v[1:], names)
        size = out[(tier, 0)]["bytes"]
        cut = cut or used + size > budget
        used += 0 if cut else size
        seen_items, seen_bytes = seen_items + n, seen_bytes + size
    return {k: v for k, v in out.items() if v["items"]}, fills


FIGURES = ("items", "files", "bytes", "original_bytes", "est_bytes")


@dataclass
class CutFill:
    """What the budget takes of the tier it cuts: the leading run of items by popularity
    per byte that fits whole (`prefix` items, summed in SQL), then `extra`: later items
    that still fit, picked one by one."""

    prefix: int
    figures: dict[str, Any]
    extra: list[int]
    whole: dict[str, int]  # files, bytes, original_bytes, est_bytes of the whole tier


def _cut_rows(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool, tier: int
) -> tuple[str, list[Any]]:
    """SQL (and parameters) of the cut tier's unsealed items, one row each: id, share,
    files, bytes, original_bytes, est_bytes, dens (listening per byte; no bytes: first)
    and run (bytes of the items up to this one, most listening per byte first)."""
    share, sp = rk.share_sql()
    cond, cp = sz.wanted()
    sealed = _sealed(db, "i", sealed_first)
    # The tier's items from the ranking's index (each range of its runs, and the items
    # pinned to it from items_pinned), in id order so their files are read in index order
    # (one OR of the ranges read the whole index; a scan of the wide items table with the
    # tier expression per row cost twice as much).
    runs = [p for p in parts(rk, split=True) if p.tier == tier]
    arms = [(p.index, p.cond, p.params) for p in runs]
    arms.append(("items_pinned", "i.tier IS NOT NULL AND i.tier = ?", (tier,)))
    members = " UNION ALL ".join(
        f"SELECT i.id, {share} AS share FROM items AS i INDEXED BY {index}"
        f" WHERE i.status = 'ok' AND {cond} AND NOT {sealed}"
        for index, cond, _ in arms
    )
    mp = [x for _, _, params in arms for x in (*sp, *params)]
    compact = tier in sz.compact_tiers
    files = (
        "1 - coalesce(f.compact IN ('copied', 'derivative'), 0)" if compact else "f.copy_of IS NULL"
    )
    size = sz.kept_sql if compact else sz.original_sql
    items = (
        f"SELECT r.id, r.share, coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {files} END), 0)"
        f" AS files, coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {size} END), 0) AS bytes,"
        f" coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {sz.original_sql} END), 0)"
        " AS original_bytes, coalesce(sum(CASE WHEN f.id IS NULL OR f.copy_of IS NOT NULL"
        f" THEN 0 ELSE {FILE_EST} END), 0) AS est_bytes"
        f" FROM ({members} ORDER BY 1) AS r"
        f" LEFT JOIN files AS f ON f.item_id = r.id AND {cond} GROUP BY r.id"
    )
    return (
        f"WITH c AS ({items}), w AS MATERIALIZED (SELECT c.*, {DENSITY} AS dens,"
        f" sum(bytes) OVER (ORDER BY {DENSITY} DESC, id ROWS UNBOUNDED PRECEDING) AS run"
        " FROM c)",
        [*mp, *cp],
    )


def cut_fill(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool, tier: int, room: int
) -> CutFill:
    """The greedy fill of `tier` within `room` bytes, most listening per byte first,
    skipping items that do not fit. The run that fits whole is summed in SQL (a window
    over the tier); only items after it small enough to fit reach Python."""
    head, params = _cut_rows(db, rk, sz, sealed_first, tier)
    rows = db.execute(
        f"{head}, p AS (SELECT count(*) AS n, total(share) AS share,"
        " coalesce(sum(files), 0) AS files, coalesce(sum(bytes), 0) AS bytes,"
        " coalesce(sum(original_bytes), 0) AS original_bytes,"
        " coalesce(sum(est_bytes), 0) AS est_bytes FROM w WHERE run <= ?),"
        f" t AS (SELECT {', '.join(f'coalesce(sum({k}), 0)' for k in FIGURES[1:])} FROM w)"
        " SELECT 0, n, share, files, bytes, original_bytes, est_bytes, NULL, t.* FROM p, t"
        " UNION ALL SELECT 1, w.id, w.share, w.files, w.bytes, w.original_bytes, w.est_bytes,"
        " w.dens, NULL, NULL, NULL, NULL FROM w, p WHERE w.run > ? AND w.bytes <= ? - p.bytes"
        " ORDER BY 1, 8 DESC, 2",
        [*params, room, room, room],
    )
    first = next(rows)
    _, n, *sums = first[:7]
    whole = dict(zip(FIGURES[1:], first[8:], strict=True))
    figures = dict(zip(("share", *FIGURES[1:]), sums, strict=True)) | {"items": n}
    left, extra = room - figures["bytes"], []
    for _, item_id, share, files, size, original, est, *_ in rows:
        if size <= left:
            extra.append(item_id)
            left -= size
            figures["items"] += 1
            figures["share"] += share
            figures["files"] += files
            figures["bytes"] += size
            figures["original_bytes"] += original
            figures["est_bytes"] += est
        elif left <= 0:
            break
    return CutFill(n, figures, extra, whole)


def cut_prefix_ids(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, sealed_first: bool, tier: int, n: int
) -> Iterator[int]:
    """Ids of the first `n` items of the cut tier by popularity per byte (`CutFill.prefix`)."""
    if n <= 0:
        return
    head, params = _cut_rows(db, rk, sz, sealed_first, tier)
    for (item_id,) in db.execute(
        f"{head} SELECT id FROM w ORDER BY dens DESC, id LIMIT ?", [*params, n]
    ):
        yield item_id


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
        f" OR {_sealed(db, 'i', sealed_first)})",
        params,
    ):
        yield item_id


def eviction_order(db: sqlite3.Connection, rk: Ranking, sz: Sizing) -> Iterator[sqlite3.Row]:
    """Files that may leave the store for the budget (fetched, in the store, not sealed in
    a live pack), least listening per byte of their item first (an item no longer ranked
    first of all), then by file id: id, item_id, size, store_path, url, copy_of. Ordered
    once into a temporary table (on disk like any SQLite temporary: no list in memory),
    so the caller may change files while it reads."""
    share, sp = rk.share_sql()
    tier, tp = rk.tier_sql()
    comp = sz.in_compact(tier)
    cond, cp = sz.wanted()
    db.execute("DROP TABLE IF EXISTS temp.eviction_order")
    db.execute(
        "CREATE TEMP TABLE eviction_order AS SELECT c.id, c.item_id, c.size, c.store_path,"
        " c.url, c.copy_of FROM files AS c JOIN items AS i ON i.id = c.item_id"
        " WHERE c.status = 'fetched' AND c.store_path IS NOT NULL"
        " AND c.quarantine_path IS NULL AND NOT EXISTS (SELECT 1 FROM pack_files AS pf"
        "  JOIN packs AS p ON p.id = pf.pack_id WHERE pf.file_id = c.id"
        "  AND p.status = 'sealed' AND p.obsolete = 0)"
        " ORDER BY CASE WHEN i.status = 'ok' THEN coalesce((SELECT"
        f" {share} / b FROM (SELECT sum(CASE WHEN {comp} THEN {sz.kept_sql}"
        f" ELSE {sz.original_sql} END) AS b FROM files AS f WHERE f.item_id = c.item_id"
        f" AND {cond}) WHERE b > 0), 0.0) ELSE 0.0 END,"
        " CASE WHEN i.status = 'ok' THEN i.id ELSE 0 END, c.id",
        [*sp, *(tp if sz.compact_tiers else []), *cp],
    )
    try:
        last = 0
        while page := db.execute(
            "SELECT rowid AS n, * FROM temp.eviction_order WHERE rowid > ? ORDER BY rowid"
            " LIMIT 512",
            (last,),
        ).fetchall():
            last = page[-1]["n"]
            yield from page
    finally:
        db.execute("DROP TABLE IF EXISTS temp.eviction_order")
