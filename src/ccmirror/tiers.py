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
from dataclasses import dataclass
from typing import Any

from ccmirror.compact.estimate import kept_bytes_sql, original_bytes_sql
from ccmirror.licence import publishable_verdicts
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror

EPS = 1e-12


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
    return len(shares) if shares[-1] >= 1.0 - EPS else len(shares) + 1


def rank_items(db: sqlite3.Connection, shares: tuple[float, ...]) -> list[RankedItem]:
    """Every item with status 'ok', ranked per source, with its share and tier."""
    rows = db.execute(
        "SELECT id, source, source_id, popularity, tier FROM items WHERE status = 'ok'"
        " ORDER BY source, popularity DESC, id"
    ).fetchall()
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["source"]] = totals.get(r["source"], 0.0) + max(r["popularity"], 0.0)
    weighted = sum(1 for t in totals.values() if t > 0) or 1
    out: list[RankedItem] = []
    cum: dict[str, float] = {}
    for r in rows:
        src, pop = r["source"], max(r["popularity"], 0.0)
        total = totals[src]
        computed = tier_of(cum.get(src, 0.0), total, shares)
        cum[src] = cum.get(src, 0.0) + pop
        share = pop / total / weighted if total > 0 else 0.0
        pinned = r["tier"] is not None
        out.append(
            RankedItem(
                r["id"], src, r["source_id"], pop, share, r["tier"] if pinned else computed, pinned
            )
        )
    return out


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


def tier_table(mirror: Mirror) -> dict[str, Any]:
    """Per tier: items, files, bytes, share of popularity, cumulative bytes and share;
    the same per source under `sources`."""
    items = ranked(mirror)
    per_source: dict[str, list[RankedItem]] = {}
    for it in items:
        per_source.setdefault(it.source, []).append(it)
    return {
        "shares": list(mirror.manifest.tiers.shares),
        "items": len(items),
        "bytes": sum(it.bytes for it in items),
        "tiers": summarise(items),
        "sources": {src: summarise(its) for src, its in sorted(per_source.items())},
    }


@dataclass
class Selection:
    """What a budget holds (`select`): the items, their bytes and share, tier by tier."""

    budget: int
    items: list[RankedItem]  # every ranked item
    chosen: set[int]  # ids of the items the budget holds
    cut_tier: int | None
    fixed_bytes: int  # of items sealed in packs: held whatever the budget (never deleted)


def _sealed_items(db: sqlite3.Connection) -> set[int]:
    return {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT f.item_id FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
            " JOIN files f ON f.id = pf.file_id WHERE p.status = 'sealed' AND p.obsolete = 0"
            " AND p.is_metadata = 0"
        )
    }


def select(mirror: Mirror, budget: int, *, sealed_first: bool = True) -> Selection:
    """The one budget selection (plan, fetch and sync use it): items sealed in packs first
    (they stay, seeded, whatever the budget), then whole tiers, most popular first; the
    tier the budget cuts is filled by popularity per byte (greedy, skipping items that do
    not fit); later tiers are left out. Compact tiers count at their compact size.
    `sealed_first=False` plans a fresh mirror (what-if figures, bench/coverage.py)."""
    if budget < 0:
        raise ValueError("budget must not be negative")
    items = ranked(mirror)
    sealed = _sealed_items(mirror.db) if sealed_first else set()
    chosen = {it.id for it in items if it.id in sealed}
    fixed = sum(it.bytes for it in items if it.id in chosen)
    used = fixed
    by_tier: dict[int, list[RankedItem]] = {}
    for it in items:
        if it.id not in chosen:
            by_tier.setdefault(it.tier, []).append(it)
    cut_tier: int | None = None
    for k in sorted(by_tier):
        its = by_tier[k]
        tier_bytes = sum(it.bytes for it in its)
        if used + tier_bytes <= budget:
            chosen.update(it.id for it in its)
            used += tier_bytes
            continue
        cut_tier = k
        # Most listening per byte first; items of unknown (0) size cost nothing.
        order = sorted(its, key=lambda it: (-(it.share / it.bytes if it.bytes else 1e300), it.id))
        for it in order:
            if used + it.bytes <= budget:
                chosen.add(it.id)
                used += it.bytes
        break
    return Selection(budget, items, chosen, cut_tier, fixed)


def plan(mirror: Mirror, budget: int, *, sealed_first: bool = True) -> dict[str, Any]:
    """What a storage budget buys (`select`), per tier: included (full, partial, none),
    items, files, bytes, share of listening, share per byte."""
    sel = select(mirror, budget, sealed_first=sealed_first)
    by_tier: dict[int, list[RankedItem]] = {}
    for it in sel.items:
        by_tier.setdefault(it.tier, []).append(it)
    rows: list[dict[str, Any]] = []
    for k in sorted(by_tier):
        its = by_tier[k]
        picked = [it for it in its if it.id in sel.chosen]
        included = "full" if len(picked) == len(its) else "partial" if picked else "none"
        picked_bytes = sum(it.bytes for it in picked)
        share = sum(it.share for it in picked)
        rows.append(
            {
                "tier": k,
                "included": included,
                "quality": mirror.manifest.tiers.quality_of(k),
                "items": len(picked),
                "files": sum(it.files for it in picked),
                "bytes": picked_bytes,
                "popularity_share": round(share, 6),
                "share_per_byte": share / picked_bytes if picked_bytes else None,
                "tier_items": len(its),
                "tier_bytes": sum(it.bytes for it in its),
                "tier_original_bytes": sum(it.original_bytes for it in its),
            }
        )
    chosen = [it for it in sel.items if it.id in sel.chosen]
    used = sum(it.bytes for it in chosen)
    note = (
        "everything fits"
        if sel.cut_tier is None
        else f"the budget cuts tier {sel.cut_tier}: filled by popularity per byte;"
        " later tiers left out"
    )
    if sel.fixed_bytes > budget:
        note = "the packs already sealed hold more than the budget: they stay, nothing is added"
    return {
        "budget": budget,
        "bytes": used,
        "items": len(chosen),
        "files": sum(it.files for it in chosen),
        "popularity_share": round(sum(it.share for it in chosen), 6),
        "cut_tier": sel.cut_tier,
        "sealed_bytes": sel.fixed_bytes,
        "compact_tiers": list(mirror.manifest.tiers.compact_tiers),
        "note": note,
        "tiers": rows,
        "total_items": len(sel.items),
        "total_bytes": sum(it.bytes for it in sel.items),
        "total_original_bytes": sum(it.original_bytes for it in sel.items),
    }
