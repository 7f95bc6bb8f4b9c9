"""The ranking as the index page shows it, streamed: the coverage curve (bytes against
share of listening, most listened first) and the most listened recordings.

Neither builds an object per item: the curve reads one row per item from a sorted cursor
and keeps only the points it draws; the top items are read per source in the order of
the ranking's index, stopping at the first `n` that qualify.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from ccmirror.catalogue.selection import Sizing
from ccmirror.catalogue.tiers import Ranking


def ranked_bytes(db: sqlite3.Connection, rk: Ranking, sz: Sizing) -> Iterator[tuple[Any, ...]]:
    """(share, bytes, original_bytes) of every ranked item in tier order, most listened
    first within a tier (ties by id): bytes as the store keeps them (a compact tier: its
    copies), original_bytes as its originals weigh; wanted files only."""
    tier, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    cond, cp = sz.wanted()
    comp = sz.in_compact("r.tier")
    yield from db.execute(
        f"SELECT r.share, coalesce(sum(CASE WHEN f.id IS NULL THEN 0 WHEN {comp}"
        f" THEN {sz.kept_sql} ELSE {sz.original_sql} END), 0),"
        f" coalesce(sum(CASE WHEN f.id IS NULL THEN 0 ELSE {sz.original_sql} END), 0)"
        f" FROM (SELECT i.id, {tier} AS tier, {share} AS share FROM items AS i"
        " WHERE i.status = 'ok') AS r"
        f" LEFT JOIN files AS f ON f.item_id = r.id AND {cond}"
        " GROUP BY r.id ORDER BY r.tier, r.share DESC, r.id",
        [*tp, *sp, *cp],
    )


def coverage_curves(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, points: int
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(cumulative bytes, cumulative share) after each item of `ranked_bytes`, from (0, 0),
    thinned to `points` points and the last one: as the store keeps them, and as every
    item's originals would weigh. One pass; only the drawn points are kept."""
    (n,) = db.execute("SELECT count(*) FROM items WHERE status = 'ok'").fetchone()
    total = n + 1  # the points before thinning, (0, 0.0) included
    step = total / points if total > points else 1.0
    picks = iter(int(i * step) for i in range(points)) if total > points else iter(range(total))
    curve: list[tuple[int, float]] = []
    originals: list[tuple[int, float]] = []
    want = next(picks, None)
    size = orig = 0
    share = 0.0
    last = ((0, 0.0), (0, 0.0))
    for k, row in enumerate(_with_start(ranked_bytes(db, rk, sz))):
        if row is not None:
            size += row[1]
            orig += row[2]
            share += row[0]
        last = ((size, min(share, 1.0)), (orig, min(share, 1.0)))
        while want is not None and want == k:
            curve.append(last[0])
            originals.append(last[1])
            want = next(picks, None)
    if total > points:
        curve.append(last[0])
        originals.append(last[1])
    return curve, originals


def _with_start(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...] | None]:
    yield None  # the (0, 0.0) point
    yield from rows


def top_items(
    db: sqlite3.Connection, rk: Ranking, sz: Sizing, allowed: tuple[str, ...], n: int
) -> list[dict[str, Any]]:
    """The `n` most listened ranked items that can be published (a file with a verdict in
    `allowed`) and keep a file in the store, by share of the mirror's listening (ties by
    id): each source's read in its index order until `n` qualify."""
    tier, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    cond, cp = sz.wanted()
    comp = sz.in_compact(tier)
    marks = ",".join("?" * len(allowed))
    kept = (
        f"EXISTS (SELECT 1 FROM files AS f WHERE f.item_id = i.id AND {cond} AND CASE WHEN"
        f" {comp} THEN coalesce(f.compact IN ('copied', 'derivative'), 0) = 0"
        " ELSE f.copy_of IS NULL END)"
    )
    base = (
        "SELECT i.id, i.source, i.source_id, i.title, i.creator, i.source_url, i.tier,"
        f" i.declared_licence_id, i.popularity, {share} AS share"
        " FROM items AS i INDEXED BY items_rank_ok WHERE i.status = 'ok' AND i.source = ?"
        " AND EXISTS (SELECT 1 FROM files AS f WHERE f.item_id = i.id"
        f" AND f.verdict IN ({marks})) AND {kept}"
    )
    rest = [*allowed, *cp, *(tp if sz.compact_tiers else [])]
    found: list[dict[str, Any]] = []
    for where in (
        "i.popularity > 0 ORDER BY i.popularity DESC, i.id",
        "i.popularity <= 0 ORDER BY i.id",
    ):
        for s in rk.sources:
            q = f"{base} AND {where} LIMIT ?"
            found += [dict(r) for r in db.execute(q, [*sp, s.source, *rest, n])]
        if len(found) >= n:
            break  # items with no listening (share 0, by id) only when too few have any
    found.sort(key=lambda r: (-r["share"], r["id"]))
    return found[:n]
