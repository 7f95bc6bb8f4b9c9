"""Popularity tiers (DESIGN §1) and the storage plan an operator's disk buys.

Per source, items are ranked by popularity (ties by catalogue id, so the order is
deterministic); tier k holds the items that bring the cumulative share of that source's
total popularity up to `shares[k]`. Items beyond the last share (when it is below 1.0)
form one more tier; a source with no popularity figures at all is one tier. An item
that has been packed keeps the tier it was packed in (`items.tier`): sealed packs never
reshuffle when popularity moves.

Popularity is not comparable across sources (IA downloads, FMA listens), so an item's
share is its share of its own source, divided by the number of sources with any
popularity: every source weighs the same in the mirror-wide figures.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccmirror.catalogue.selection import CutFill, Sizing, cut_fill, cut_prefix_ids, held_items
from ccmirror.catalogue.selection import sums as selection_sums
from ccmirror.catalogue.tiers import EPS, Ranking, iter_ranked, last_tier, ranking
from ccmirror.catalogue.tiersums import tier_sums
from ccmirror.compact.estimate import kept_bytes_sql, original_bytes_sql
from ccmirror.licence import publishable_verdicts
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror


@dataclass
class RankedItem:
    id: int
    source: str
    source_id: str
    popularity: float
    share: float  # of the whole mirror's listening (see module docstring)
    tier: int
    pinned: bool  # tier fixed by an earlier pack
    files: int = 0
    bytes: int = 0  # what the store keeps of it (a compact tier: its copies)
    original_bytes: int = 0  # what its originals weigh
    compact: bool = False  # in a compact tier


def tier_of(cum_before: float, total: float, shares: tuple[float, ...]) -> int:
    """The 1-based tier of an item whose predecessors hold `cum_before` of `total`."""
    if total <= 0:
        return 1
    frac = cum_before / total
    for k, s in enumerate(shares, start=1):
        if frac < s - EPS:
            return k
    # Only zero-popularity items reach here when shares end at 1.0: the last tier.
    return last_tier(shares)


def rank_items(db: sqlite3.Connection, shares: tuple[float, ...]) -> list[RankedItem]:
    """Every item with status 'ok', ranked per source, with its share and tier (the
    ranking is SQL, `catalogue.tiers`; this list is for callers that need every item)."""
    return [
        RankedItem(
            r["id"],
            r["source"],
            r["source_id"],
            r["popularity"],
            r["share"],
            r["tier"],
            bool(r["pinned"]),
        )  # fmt: skip
        for r in iter_ranked(db, ranking(db, shares))
    ]


def _attach_files(
    db: sqlite3.Connection, items: list[RankedItem], require_embedded: bool, manifest: Manifest
) -> None:
    """Files an item will occupy on disk: wanted (pending or fetched), not ruled out. An
    item of a compact tier counts what the store keeps of it (`compact.estimate`); every
    item also carries what its originals weigh (`original_bytes`), to show the gain."""
    by_id = {it.id: it for it in items}
    allowed = publishable_verdicts(require_embedded)
    marks = ",".join("?" * len(allowed))
    compact = bool(manifest.tiers.compact_tiers)
    kept = kept_bytes_sql(manifest.compact.bitrate) if compact else "0"
    for r in db.execute(
        "SELECT f.item_id, sum(f.copy_of IS NULL) AS originals, count(*) AS files,"
        " sum(coalesce(f.compact IN ('copied', 'derivative'), 0)) AS replaced,"
        f" sum({original_bytes_sql()}) AS original_bytes, sum({kept}) AS kept_bytes"
        " FROM files f WHERE f.status IN ('pending', 'fetched')"
        f" AND (f.verdict IS NULL OR f.verdict IN ({marks})) GROUP BY f.item_id",
        allowed,
    ):
        it = by_id.get(r["item_id"])
        if it is None:
            continue
        it.original_bytes = r["original_bytes"] or 0
        if compact and manifest.tiers.quality_of(it.tier) == "compact":
            it.compact = True
            it.files = r["files"] - r["replaced"]
            it.bytes = r["kept_bytes"] or 0
        else:
            it.files = r["originals"]
            it.bytes = it.original_bytes


def ranked(mirror: Mirror) -> list[RankedItem]:
    items = rank_items(mirror.db, mirror.manifest.tiers.shares)
    _attach_files(mirror.db, items, mirror.manifest.licence.require_embedded, mirror.manifest)
    return items


def summarise(items: list[RankedItem], ndigits: int | None = 6) -> list[dict[str, Any]]:
    """Per tier, in tier order: items, files, bytes, popularity_share, cumulative_share,
    cumulative_bytes. The one per-tier aggregation (tier table, index page, status); shares
    are rounded to `ndigits` (None: left exact)."""
    tiers: dict[int, dict[str, Any]] = {}
    for it in items:
        t = tiers.setdefault(
            it.tier,
            {"tier": it.tier, "items": 0, "files": 0, "bytes": 0, "popularity_share": 0.0,
             "quality": "compact" if it.compact else "original", "original_bytes": 0},
        )  # fmt: skip
        t["items"] += 1
        t["files"] += it.files
        t["bytes"] += it.bytes
        t["original_bytes"] += it.original_bytes
        t["popularity_share"] += it.share
        if it.compact:
            t["quality"] = "compact"
    return _cumulate(tiers, ndigits)


def _cumulate(tiers: dict[int, dict[str, Any]], ndigits: int | None = 6) -> list[dict[str, Any]]:
    out, cum_bytes, cum_share = [], 0, 0.0
    for k in sorted(tiers):
        t = tiers[k]
        cum_bytes += t["bytes"]
        cum_share += t["popularity_share"]
        # Listening per byte: what a compact tier multiplies.
        t["share_per_byte"] = t["popularity_share"] / t["bytes"] if t["bytes"] else None
        if ndigits is not None:
            t["popularity_share"] = round(t["popularity_share"], ndigits)
        t["cumulative_share"] = cum_share if ndigits is None else round(cum_share, ndigits)
        t["cumulative_bytes"] = cum_bytes
        out.append(t)
    return out


def tier_summary(mirror: Mirror, rk: Ranking | None = None) -> list[dict[str, Any]]:
    """`summarise(ranked(mirror), ndigits=None)` computed in SQLite (no object per item):
    per tier, in tier order, the mirror-wide figures with exact shares."""
    m = mirror.manifest
    compact = m.tiers.compact_tiers
    rows = tier_sums(
        mirror.db,
        rk or ranking(mirror.db, m.tiers.shares),
        publishable_verdicts(m.licence.require_embedded),
        compact,
        original_bytes_sql(),
        kept_bytes_sql(m.compact.bitrate) if compact else "0",
    )
    whole: dict[int, dict[str, Any]] = {}
    for r in rows:
        t = whole.setdefault(r["tier"], {"tier": r["tier"], "items": 0, "files": 0, "bytes": 0,
                                         "popularity_share": 0.0, "quality": "original",
                                         "original_bytes": 0})  # fmt: skip
        for k in ("items", "files", "bytes", "original_bytes"):
            t[k] += r[k]
        t["popularity_share"] += r["share"]
        if r["compact"]:
            t["quality"] = "compact"
    return _cumulate(whole, ndigits=None)


def tier_table(mirror: Mirror) -> dict[str, Any]:
    """Per tier: items, files, bytes, share of popularity, cumulative bytes and share;
    the same per source under `sources`. Aggregated in SQLite (memory does not grow with
    the catalogue); `estimated_bytes` of the bytes are estimates (sizes not known before
    fetch), `unsized_files` have neither a size nor an estimate."""
    m = mirror.manifest
    compact = m.tiers.compact_tiers
    kept = kept_bytes_sql(m.compact.bitrate) if compact else "0"
    rows = tier_sums(
        mirror.db,
        ranking(mirror.db, m.tiers.shares, prefetch=True),
        publishable_verdicts(m.licence.require_embedded),
        compact,
        original_bytes_sql(),
        kept,
    )
    whole: dict[int, dict[str, Any]] = {}
    per: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        for t in (
            whole.setdefault(r["tier"], _sum_row(r["tier"])),
            per.setdefault(r["source"], {}).setdefault(r["tier"], _sum_row(r["tier"])),
        ):
            for k in ("items", "files", "bytes", "original_bytes", "estimated_bytes"):
                t[k] += r[k]
            t["unsized_files"] += r["unsized"]
            t["popularity_share"] += r["share"]
            if r["compact"]:
                t["quality"] = "compact"
    tiers = _cumulate(whole)
    return {
        "shares": list(m.tiers.shares),
        "items": sum(t["items"] for t in tiers),
        "bytes": sum(t["bytes"] for t in tiers),
        "estimated_bytes": sum(t["estimated_bytes"] for t in tiers),
        "unsized_files": sum(t["unsized_files"] for t in tiers),
        "tiers": tiers,
        "sources": {src: _cumulate(per[src]) for src in sorted(per)},
    }


def _sum_row(tier: int) -> dict[str, Any]:
    return {
        "tier": tier,
        "items": 0,
        "files": 0,
        "bytes": 0,
        "popularity_share": 0.0,
        "quality": "original",
        "original_bytes": 0,
        "estimated_bytes": 0,
        "unsized_files": 0,
    }


@dataclass
class Selection:
    """What a budget holds (`select`): per-tier figures and how to list the held items.

    Computed in SQLite without an object per item: `chosen` (the ids of the items held) is
    built on first use, for callers that filter by it; `tiers` are the plan's rows."""

    budget: int
    cut_tier: int | None
    fixed_bytes: int  # of items sealed in packs: held whatever the budget (never deleted)
    tiers: list[dict[str, Any]]
    cut: CutFill | None  # what the budget takes of the cut tier
    db: sqlite3.Connection
    ranking: Ranking
    sealed_first: bool
    sizing: Sizing
    _chosen: set[int] | None = None

    @property
    def items(self) -> int:
        return sum(t["items"] for t in self.tiers)

    @property
    def bytes(self) -> int:
        return sum(t["bytes"] for t in self.tiers)

    @property
    def share(self) -> float:
        return sum(t["share"] for t in self.tiers)

    @property
    def total_items(self) -> int:
        return sum(t["tier_items"] for t in self.tiers)

    def held_ids(self) -> Iterator[int]:
        """Ids of the items the budget holds, streamed from cursors (one may repeat)."""
        yield from held_items(self.db, self.ranking, self.sealed_first, self.cut_tier)
        if self.cut is not None and self.cut_tier is not None:
            sel = (self.db, self.ranking, self.sizing, self.sealed_first, self.cut_tier)
            yield from cut_prefix_ids(*sel, self.cut.prefix)
            yield from self.cut.extra

    @property
    def chosen(self) -> set[int]:
        """Ids of the items the budget holds (built once, from `held_ids`)."""
        if self._chosen is None:
            self._chosen = set(self.held_ids())
        return self._chosen


def sizing(mirror: Mirror) -> Sizing:
    """How the manifest counts a file's bytes (verdicts allowed, compact tiers)."""
    return _sizing(mirror)


def _sizing(mirror: Mirror) -> Sizing:
    m = mirror.manifest
    compact = tuple(m.tiers.compact_tiers)
    return Sizing(
        publishable_verdicts(m.licence.require_embedded),
        compact,
        original_bytes_sql(),
        kept_bytes_sql(m.compact.bitrate) if compact else "0",
    )


def _plan_row(tier: int, sealed: dict[str, Any] | None, rest: dict[str, Any] | None) -> dict:
    row = {"tier": tier, "included": "none", "items": 0, "files": 0, "bytes": 0, "share": 0.0}
    row["estimated_bytes"] = 0
    for part in (sealed, rest):
        if part:
            row["tier_items"] = row.get("tier_items", 0) + part["items"]
            row["tier_bytes"] = row.get("tier_bytes", 0) + part["bytes"]
            row["tier_original_bytes"] = row.get("tier_original_bytes", 0) + part["original_bytes"]
            row["tier_estimated_bytes"] = row.get("tier_estimated_bytes", 0) + part["est_bytes"]
    return row


def _take(row: dict[str, Any], part: dict[str, Any]) -> None:
    row["items"] += part["items"]
    row["files"] += part["files"]
    row["bytes"] += part["bytes"]
    row["estimated_bytes"] += part["est_bytes"]
    row["share"] += part["share"]


def select(mirror: Mirror, budget: int, *, sealed_first: bool = True) -> Selection:
    """The one budget selection (plan, fetch and sync use it): items sealed in packs first
    (they stay, seeded, whatever the budget), then whole tiers, most popular first; the
    tier the budget cuts is filled by popularity per byte (greedy, skipping items that do
    not fit); later tiers are left out. Compact tiers count at their compact size; a size
    not known before fetch counts as its estimate. `sealed_first=False` plans a fresh
    mirror (what-if figures, bench/coverage.py). Aggregates and the cut tier's items
    stream from SQLite: memory does not grow with the catalogue."""
    if budget < 0:
        raise ValueError("budget must not be negative")
    db, sz = mirror.db, _sizing(mirror)
    rk = ranking(db, mirror.manifest.tiers.shares, prefetch=True)
    parts, fills = selection_sums(db, rk, sz, sealed_first, budget)
    tiers = sorted({k for k, _ in parts})
    rows = {k: _plan_row(k, parts.get((k, 1)), parts.get((k, 0))) for k in tiers}
    fixed = sum(p["bytes"] for (_, sealed), p in parts.items() if sealed)
    for (k, sealed), p in parts.items():
        if sealed:
            _take(rows[k], p)
    used, cut, fill = fixed, None, None
    for k in tiers:
        rest = parts.get((k, 0))
        if rest is None:
            continue
        if cut is None and used + rest["bytes"] <= budget:
            _take(rows[k], rest)
            used += rest["bytes"]
            continue
        if cut is None:
            cut = k
            fill = fills.get(k) or cut_fill(db, rk, sz, sealed_first, k, budget - used)
            _take(rows[k], fill.figures)
    for row in rows.values():
        n = row["items"]
        row["included"] = "full" if n == row["tier_items"] else "partial" if n else "none"
    return Selection(budget, cut, fixed, [rows[k] for k in tiers], fill, db, rk, sealed_first, sz)


def plan(mirror: Mirror, budget: int, *, sealed_first: bool = True) -> dict[str, Any]:
    """What a storage budget buys (`select`), per tier: included (full, partial, none),
    items, files, bytes (estimated_bytes of them estimates), share of listening, share
    per byte."""
    sel = select(mirror, budget, sealed_first=sealed_first)
    rows = []
    for t in sel.tiers:
        row = {k: v for k, v in t.items() if k != "share"}
        row["quality"] = mirror.manifest.tiers.quality_of(t["tier"])
        row["popularity_share"] = round(t["share"], 6)
        row["share_per_byte"] = t["share"] / t["bytes"] if t["bytes"] else None
        rows.append(row)
    note = (
        "everything fits"
        if sel.cut_tier is None
        else f"the budget cuts tier {sel.cut_tier}: filled by popularity per byte;"
        " later tiers left out"
    )
    if sel.fixed_bytes > budget:
        note = "the packs already sealed hold more than the budget: they stay, nothing is added"
    estimated = sum(t["tier_estimated_bytes"] for t in sel.tiers)
    if estimated:
        note += "; sizes of files not fetched yet are estimates (bit rate x duration)"
    return {
        "budget": budget,
        "bytes": sel.bytes,
        "estimated_bytes": sum(t["estimated_bytes"] for t in sel.tiers),
        "items": sel.items,
        "files": sum(t["files"] for t in sel.tiers),
        "popularity_share": round(sel.share, 6),
        "cut_tier": sel.cut_tier,
        "sealed_bytes": sel.fixed_bytes,
        "compact_tiers": list(mirror.manifest.tiers.compact_tiers),
        "note": note,
        "tiers": rows,
        "total_items": sel.total_items,
        "total_bytes": sum(t["tier_bytes"] for t in sel.tiers),
        "total_original_bytes": sum(t["tier_original_bytes"] for t in sel.tiers),
        "total_estimated_bytes": estimated,
    }
