"""Items and share per run of the ranking without reading the items again.

`catalogue.tiers.ranking` already read one row per distinct popularity value (how many
items hold it) and placed each boundary among its equals, so how many unpinned items each
run holds is arithmetic over those counts, less the pinned items (few: read from
items_pinned). A run's share is the sum of its items' shares, every item of one
popularity value holding the same one: it is added here item by item in the ranking's
order, as SQLite's sum() over the index added them, so the figures are the same to the
last bit (a product count x share would not be).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ccmirror.catalogue.tiers import Ranking, SourceRanking

PINNED = "FROM items AS i INDEXED BY items_pinned WHERE i.status = 'ok' AND i.tier IS NOT NULL"


def _pinned_counts(db: sqlite3.Connection, s: SourceRanking) -> tuple[dict[float, int], list[int]]:
    """Pinned items of `s` per popularity value, and those before each boundary among
    its equals (popularity = the boundary's, smaller id)."""
    per = dict(
        db.execute(
            f"SELECT i.popularity, count(*) {PINNED} AND i.source = ? GROUP BY i.popularity",
            (s.source,),
        ).fetchall()
    )
    before = [
        db.execute(
            f"SELECT count(*) {PINNED} AND i.source = ? AND i.popularity = ? AND i.id < ?",
            (s.source, pop, item_id),
        ).fetchone()[0]
        if per.get(pop)
        else 0
        for pop, item_id in s.boundaries
    ]
    return per, before


def _source_runs(
    db: sqlite3.Connection, rk: Ranking, s: SourceRanking
) -> list[tuple[int, int, float]]:
    """(tier, unpinned items, share) of each run of `s`, in rank order."""
    per, before = _pinned_counts(db, s)
    live = s.total > 0
    weight = float(rk.weight)
    tiers = [*range(1, len(s.boundaries) + 1), s.rest]
    runs = [[0, 0.0] for _ in tiers]
    cuts: dict[float, list[int]] = {}
    for k, (pop, _) in enumerate(s.boundaries):
        cuts.setdefault(pop, []).append(k)
    run = 0
    for pop, n in s.groups:
        share = max(pop, 0.0) / s.total / weight if live else 0.0
        pos, pinned_at = 0, 0  # place among equals, pinned items before it
        for k in [*cuts.get(pop, ()), None]:
            end = n if k is None else s.offsets[k]
            pinned_end = per.get(pop, 0) if k is None else before[k]
            count = end - pos - (pinned_end - pinned_at)
            acc = runs[run]
            acc[0] += count
            total = acc[1]
            for _ in range(count):
                total += share
            acc[1] = total
            if k is not None:
                run, pos, pinned_at = k + 1, end, pinned_end
    return [(tiers[r], n, sh) for r, (n, sh) in enumerate(runs)]


def run_items(db: sqlite3.Connection, rk: Ranking) -> dict[tuple[Any, ...], list[Any]]:
    """(source, tier) -> [items, share], as `tiersums.part_sums` with `sum(share)` over its
    ITEMS gives it (runs with no item left out), the pinned items summed by SQL, added
    last."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for s in rk.sources:
        for tier, n, share in _source_runs(db, rk, s):
            if not n:
                continue
            cur = out.get((s.source, tier))
            out[(s.source, tier)] = [n, share] if cur is None else [cur[0] + n, cur[1] + share]
    sql, sp = rk.share_sql()
    for source, tier, n, share in db.execute(
        f"SELECT i.source, i.tier, count(*), sum({sql}) {PINNED} GROUP BY i.source, i.tier", sp
    ):
        cur = out.get((source, tier))
        out[(source, tier)] = [n, share] if cur is None else [cur[0] + n, cur[1] + share]
    return out
