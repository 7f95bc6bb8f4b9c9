"""The popularity ranking in SQL: tiers, plan and status read it without an object per item.

`ranking(db, shares)` reads, per source, one row per distinct popularity value from the
`items_rank_ok` index and walks their cumulative sums in Python to find where each tier
ends: a (popularity, id) boundary in rank order. A tier is then a plain SQL expression
(`Ranking.tier_sql`), so every per-tier figure is one aggregate query streaming through
SQLite, and memory does not grow with the catalogue. Bytes are a file's real size, else
its estimate (`files.est_size`, e.g. bit rate x duration); the estimated part is counted
apart so each figure can say how much of it is a guess.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccmirror.catalogue.prefetch import prefetch_indexes

EPS = 1e-12
# Files that will occupy the disk: wanted (pending or fetched), not ruled out by verdict.
WANTED = "f.status IN ('pending', 'fetched')"
# Wanted files of a per-tier sum: `+` keeps the planner off files_status (a row lookup
# per file), so it reads files_item_sums (0055: every column these figures need).
WANTED_SCAN = "+f.status IN ('pending', 'fetched')"
FILE_BYTES = "coalesce(f.size, f.est_size, 0)"
FILE_EST = "CASE WHEN f.size IS NULL THEN coalesce(f.est_size, 0) ELSE 0 END"
FILE_UNSIZED = "(f.size IS NULL AND f.est_size IS NULL)"


def last_tier(shares: Sequence[float]) -> int:
    """The tier of items past the last share (the last share's own when it is 1.0)."""
    return len(shares) if shares[-1] >= 1.0 - EPS else len(shares) + 1


@dataclass
class SourceRanking:
    source: str
    total: float  # sum of max(popularity, 0) over the source's 'ok' items
    # Where tiers 2, 3, ... start: (popularity, id) of the first item of the next tier.
    boundaries: list[tuple[float, int]] = field(default_factory=list)
    rest: int = 1  # the tier of items past the last boundary
    # (popularity, items) per distinct popularity, most popular first, and each
    # boundary's place among its equals by id: the runs' item counts without a read.
    groups: list[tuple[float, int]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


@dataclass
class Ranking:
    """Tier and share of every 'ok' item as SQL over `items` (see module docstring)."""

    shares: tuple[float, ...]
    sources: list[SourceRanking]
    weight: int  # sources with any popularity: each weighs the same

    def tier_sql(self, a: str = "i") -> tuple[str, list[Any]]:
        """An item's tier: pinned (items.tier) or by its place in the ranking."""
        if not self.sources:
            return f"coalesce({a}.tier, 1)", []
        sql, params = [f"coalesce({a}.tier, CASE {a}.source"], []
        for s in self.sources:
            whens = "".join(
                f" WHEN {a}.popularity > ? OR ({a}.popularity = ? AND {a}.id < ?) THEN {k}"
                for k in range(1, len(s.boundaries) + 1)
            )
            sql.append(f" WHEN ? THEN CASE{whens} ELSE {s.rest} END" if whens else " WHEN ?")
            params.append(s.source)
            for pop, item_id in s.boundaries:
                params += [pop, pop, item_id]
            if not whens:
                sql.append(f" THEN {s.rest}")
        sql.append(" ELSE 1 END)")
        return "".join(sql), params

    def share_sql(self, a: str = "i") -> tuple[str, list[Any]]:
        """An item's share of the mirror's listening (its source's share / weight)."""
        live = [s for s in self.sources if s.total > 0]
        if not live:
            return "0.0", []
        whens = "".join(f" WHEN ? THEN max({a}.popularity, 0.0) / ? / ?" for _ in live)
        params: list[Any] = []
        for s in live:
            params += [s.source, s.total, float(self.weight)]
        return f"CASE {a}.source{whens} ELSE 0.0 END", params

    def ranked_sql(self, a: str = "i") -> tuple[str, list[Any]]:
        """SELECT of ranked(id, source, source_id, popularity, share, tier, pinned)."""
        share, sp = self.share_sql(a)
        tier, tp = self.tier_sql(a)
        return (
            f"SELECT {a}.id, {a}.source, {a}.source_id, max({a}.popularity, 0.0) AS popularity,"
            f" {share} AS share, {tier} AS tier, {a}.tier IS NOT NULL AS pinned"
            f" FROM items AS {a} WHERE {a}.status = 'ok'",
            sp + tp,
        )


def _boundary(c: float, pop: float, n: int, total: float, th: float) -> int | None:
    """The first j in [0, n) whose cum_before (c + j*pop) reaches `th` of `total`."""
    if (c + (n - 1) * pop) / total < th:
        return None
    if c / total >= th:
        return 0
    j = min(max(math.ceil((th * total - c) / pop), 1), n - 1)
    while j > 1 and (c + (j - 1) * pop) / total >= th:
        j -= 1
    while (c + j * pop) / total < th:
        j += 1
    return j


def _rank_source(db: sqlite3.Connection, source: str, shares: Sequence[float]) -> SourceRanking:
    groups = db.execute(
        "SELECT popularity, count(*), sum(max(popularity, 0.0)) FROM items"
        " INDEXED BY items_rank_ok WHERE status = 'ok' AND source = ?"
        " GROUP BY popularity ORDER BY popularity DESC",
        (source,),
    ).fetchall()
    total = 0.0
    for g in groups:
        total += g[2]
    sr = SourceRanking(source, total, groups=[(g[0], g[1]) for g in groups])
    if total <= 0:
        return sr  # no popularity at all: one tier
    thresholds = [s - EPS for s in shares]
    placed: list[tuple[float, int]] = []  # (popularity, offset among its equals by id)
    c, k = 0.0, 0
    for pop, n, gsum in groups:
        while k < len(thresholds):
            j = _boundary(c, max(pop, 0.0), n, total, thresholds[k])
            if j is None:
                break
            placed.append((pop, j))
            k += 1
        c += gsum
    for pop, j in placed:
        (item_id,) = db.execute(
            "SELECT id FROM items INDEXED BY items_rank_ok WHERE status = 'ok' AND source = ?"
            " AND popularity = ? ORDER BY id LIMIT 1 OFFSET ?",
            (source, pop, j),
        ).fetchone()
        sr.boundaries.append((pop, item_id))
        sr.offsets.append(j)
    sr.rest = last_tier(shares) if k == len(shares) else k + 1
    return sr


def _sources(db: sqlite3.Connection) -> list[str]:
    """Sources with 'ok' items: one index seek each (a DISTINCT would read every entry)."""
    found: list[str] = []
    while True:
        row = db.execute(
            "SELECT source FROM items INDEXED BY items_rank_ok WHERE status = 'ok'"
            " AND source > ? ORDER BY source LIMIT 1",
            (found[-1] if found else "",),
        ).fetchone()
        if row is None:
            return found
        found.append(row[0])


# What the per-tier sums read whole: the ranking, then its items' files.
SUM_INDEXES = ("items_rank_ok", "files_item_sums")


def ranking(db: sqlite3.Connection, shares: Sequence[float], prefetch: bool = False) -> Ranking:
    """Find every source's tier boundaries (a read per distinct popularity value).
    `prefetch`: the caller sums every tier (tiers, plan, status): the OS is asked to read
    SUM_INDEXES ahead, in parallel (`catalogue.prefetch`: a cold catalogue's scattered
    index pages are otherwise read one at a time)."""
    if prefetch:
        prefetch_indexes(db, SUM_INDEXES)
    sources = _sources(db)
    ranked = [_rank_source(db, s, shares) for s in sources]
    weight = sum(1 for s in ranked if s.total > 0) or 1
    return Ranking(tuple(shares), ranked, weight)


def verdict_filter(allowed: Sequence[str], scan: bool = False) -> tuple[str, list[Any]]:
    """Wanted files whose verdict allows them; `scan`: for the per-tier sums (`+` keeps
    the planner off the status and verdict indexes, see WANTED_SCAN)."""
    marks = ",".join("?" * len(allowed))
    wanted, v = (WANTED_SCAN, "+f.verdict") if scan else (WANTED, "f.verdict")
    return f"{wanted} AND ({v} IS NULL OR {v} IN ({marks}))", list(allowed)


# Most listening per byte first; items of unknown (0) size cost nothing, so they lead.
DENSITY_ORDER = "CASE WHEN bytes > 0 THEN share / bytes ELSE 1e300 END DESC, id"


def iter_ranked(
    db: sqlite3.Connection,
    rk: Ranking,
    allowed: Sequence[str] | None = None,
    *,
    where: str = "",
    order: str = "source, popularity DESC, id",
    params: Sequence[Any] = (),
) -> Iterator[sqlite3.Row]:
    """Rows of ranked(id, source, source_id, popularity, share, tier, pinned[, files,
    bytes, est_bytes]) streamed from a cursor; with `allowed` each item carries its
    wanted files. `where`/`order` are SQL over those columns; `params` bind `where`."""
    sel, sp = rk.ranked_sql()
    if allowed is not None:
        cond, cp = verdict_filter(allowed)
        sel = (
            f"SELECT r.*, count(f.id) AS files, coalesce(sum({FILE_BYTES}), 0) AS bytes,"
            f" coalesce(sum({FILE_EST}), 0) AS est_bytes FROM ({sel}) AS r"
            f" LEFT JOIN files AS f ON f.item_id = r.id AND {cond} GROUP BY r.id"
        )
        sp = sp + cp
    clause = f" WHERE {where}" if where else ""
    yield from db.execute(f"SELECT * FROM ({sel}){clause} ORDER BY {order}", [*sp, *params])
