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

EPS = 1e-12
# Files that will occupy the disk: wanted (pending or fetched), not ruled out by verdict.
WANTED = "f.status IN ('pending', 'fetched')"
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
    sr = SourceRanking(source, total)
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
    sr.rest = last_tier(shares) if k == len(shares) else k + 1
    return sr


def ranking(db: sqlite3.Connection, shares: Sequence[float]) -> Ranking:
    """Find every source's tier boundaries (a read per distinct popularity value)."""
    sources = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT source FROM items INDEXED BY items_rank_ok WHERE status = 'ok'"
        )
    ]
    ranked = [_rank_source(db, s, shares) for s in sources]
    weight = sum(1 for s in ranked if s.total > 0) or 1
    return Ranking(tuple(shares), ranked, weight)


def item_sums(db: sqlite3.Connection, rk: Ranking) -> list[sqlite3.Row]:
    """Per source and tier: items and their exact share (the index alone is read)."""
    share, sp = rk.share_sql()
    tier, tp = rk.tier_sql()
    return db.execute(
        f"SELECT i.source, {tier} AS tier, count(*) AS items, sum({share}) AS share"
        " FROM items AS i INDEXED BY items_rank_ok WHERE i.status = 'ok' GROUP BY 1, 2",
        tp + sp,
    ).fetchall()


def _verdict_filter(allowed: Sequence[str]) -> tuple[str, list[Any]]:
    marks = ",".join("?" * len(allowed))
    return f"{WANTED} AND (f.verdict IS NULL OR f.verdict IN ({marks}))", list(allowed)


def file_sums(
    db: sqlite3.Connection,
    rk: Ranking,
    allowed: Sequence[str],
    compact_tiers: Sequence[int] = (),
    original_sql: str = FILE_BYTES,
    kept_sql: str = "0",
) -> list[sqlite3.Row]:
    """Per source and tier, over wanted files of ranked items: files and bytes the store
    keeps (a compact tier: `kept_sql` per file, its copies; else `original_sql`, the
    originals), original_bytes, est_bytes (of sizes not known yet: estimates), unsized
    (files with neither a size nor an estimate)."""
    tier, tp = rk.tier_sql()
    cond, cp = _verdict_filter(allowed)
    in_compact = (
        f"tier IN ({','.join(str(int(k)) for k in compact_tiers)})" if compact_tiers else "0"
    )
    return db.execute(
        "SELECT source, tier, sum(CASE WHEN "
        f"{in_compact} THEN 1 - replaced ELSE copy_of IS NULL END) AS files,"
        f" sum(CASE WHEN {in_compact} THEN kept ELSE orig END) AS bytes,"
        " sum(orig) AS original_bytes, sum(est) AS est_bytes, sum(unsized) AS unsized"
        f" FROM (SELECT i.source, {tier} AS tier, f.copy_of,"
        " coalesce(f.compact IN ('copied', 'derivative'), 0) AS replaced,"
        f" {kept_sql} AS kept, {original_sql} AS orig,"
        f" CASE WHEN f.copy_of IS NULL THEN {FILE_EST} ELSE 0 END AS est,"
        f" {FILE_UNSIZED} AS unsized"
        f" FROM files AS f JOIN items AS i ON i.id = f.item_id WHERE {cond}"
        " AND i.status = 'ok') GROUP BY 1, 2",
        tp + cp,
    ).fetchall()


def tier_sums(
    db: sqlite3.Connection,
    rk: Ranking,
    allowed: Sequence[str],
    compact_tiers: Sequence[int] = (),
    original_sql: str = FILE_BYTES,
    kept_sql: str = "0",
) -> list[dict[str, Any]]:
    """Per source and tier: items, share (exact), and `file_sums`' figures; `compact`:
    the tier is compact and has files."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in item_sums(db, rk):
        out[(r["source"], r["tier"])] = {
            "source": r["source"],
            "tier": r["tier"],
            "items": r["items"],
            "share": r["share"],
            "files": 0,
            "bytes": 0,
            "original_bytes": 0,
            "estimated_bytes": 0,
            "unsized": 0,
            "compact": False,
        }
    for r in file_sums(db, rk, allowed, compact_tiers, original_sql, kept_sql):
        row = out[(r["source"], r["tier"])]
        row.update(
            files=r["files"],
            bytes=r["bytes"],
            original_bytes=r["original_bytes"],
            estimated_bytes=r["est_bytes"],
            unsized=r["unsized"],
            compact=r["tier"] in compact_tiers,
        )
    return [out[k] for k in sorted(out)]


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
        cond, cp = _verdict_filter(allowed)
        sel = (
            f"SELECT r.*, count(f.id) AS files, coalesce(sum({FILE_BYTES}), 0) AS bytes,"
            f" coalesce(sum({FILE_EST}), 0) AS est_bytes FROM ({sel}) AS r"
            f" LEFT JOIN files AS f ON f.item_id = r.id AND {cond} GROUP BY r.id"
        )
        sp = sp + cp
    clause = f" WHERE {where}" if where else ""
    yield from db.execute(f"SELECT * FROM ({sel}){clause} ORDER BY {order}", [*sp, *params])


def tier_file_rows(db: sqlite3.Connection, rk: Ranking) -> list[sqlite3.Row]:
    """Per tier and verdict, over every file of a ranked item: files, fetched, bytes
    stored, files in live audio packs. (`status`'s tier table.)"""
    tier, tp = rk.tier_sql()
    return db.execute(
        f"SELECT {tier} AS tier, f.verdict, count(*) AS n,"
        " sum(f.status = 'fetched') AS fetched,"
        " coalesce(sum(CASE WHEN f.status = 'fetched' THEN f.size END), 0) AS stored,"
        " sum(EXISTS (SELECT 1 FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
        "  WHERE pf.file_id = f.id AND p.obsolete = 0 AND p.is_metadata = 0)) AS packed"
        " FROM files AS f JOIN items AS i ON i.id = f.item_id WHERE i.status = 'ok'"
        " GROUP BY 1, 2",
        tp,
    ).fetchall()


def tier_items(db: sqlite3.Connection, rk: Ranking) -> dict[int, int]:
    """Items per tier."""
    out: dict[int, int] = {}
    for r in item_sums(db, rk):
        out[r["tier"]] = out.get(r["tier"], 0) + r["items"]
    return out
