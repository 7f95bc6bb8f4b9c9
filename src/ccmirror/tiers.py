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
from dataclasses import dataclass, field
from typing import Any

from ccmirror.licence import publishable_verdicts
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
    bytes: int = 0
    file_ids: list[int] = field(default_factory=list)


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


def _attach_files(db: sqlite3.Connection, items: list[RankedItem], require_embedded: bool) -> None:
    """Files an item will occupy on disk: wanted (pending or fetched), not ruled out."""
    by_id = {it.id: it for it in items}
    allowed = publishable_verdicts(require_embedded)
    marks = ",".join("?" * len(allowed))
    for r in db.execute(
        "SELECT f.id, f.item_id, coalesce(f.size, 0) AS size FROM files f"
        " WHERE f.status IN ('pending', 'fetched')"
        f" AND (f.verdict IS NULL OR f.verdict IN ({marks}))",
        allowed,
    ):
        it = by_id.get(r["item_id"])
        if it is not None:
            it.files += 1
            it.bytes += r["size"]
            it.file_ids.append(r["id"])


def ranked(mirror: Mirror) -> list[RankedItem]:
    items = rank_items(mirror.db, mirror.manifest.tiers.shares)
    _attach_files(mirror.db, items, mirror.manifest.licence.require_embedded)
    return items


def summarise(items: list[RankedItem], ndigits: int | None = 6) -> list[dict[str, Any]]:
    """Per tier, in tier order: items, files, bytes, popularity_share, cumulative_share,
    cumulative_bytes. The one per-tier aggregation (tier table, index page, status); shares
    are rounded to `ndigits` (None: left exact)."""
    tiers: dict[int, dict[str, Any]] = {}
    for it in items:
        t = tiers.setdefault(
            it.tier, {"tier": it.tier, "items": 0, "files": 0, "bytes": 0, "popularity_share": 0.0}
        )
        t["items"] += 1
        t["files"] += it.files
        t["bytes"] += it.bytes
        t["popularity_share"] += it.share
    out, cum_bytes, cum_share = [], 0, 0.0
    for k in sorted(tiers):
        t = tiers[k]
        cum_bytes += t["bytes"]
        cum_share += t["popularity_share"]
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


def plan(mirror: Mirror, budget: int) -> dict[str, Any]:
    """What a storage budget buys: whole tiers, most popular first; the tier the budget
    cuts is filled by popularity per byte (greedy, skipping items that do not fit)."""
    if budget < 0:
        raise ValueError("budget must not be negative")
    items = ranked(mirror)
    by_tier: dict[int, list[RankedItem]] = {}
    for it in items:
        by_tier.setdefault(it.tier, []).append(it)
    used, share, chosen_items, chosen_files = 0, 0.0, 0, 0
    rows: list[dict[str, Any]] = []
    cut_tier: int | None = None
    for k in sorted(by_tier):
        its = by_tier[k]
        tier_bytes = sum(it.bytes for it in its)
        row = {"tier": k, "items": 0, "files": 0, "bytes": 0, "popularity_share": 0.0}
        if cut_tier is None and used + tier_bytes <= budget:
            picked = its
            row["included"] = "full"
        elif cut_tier is None:
            cut_tier = k
            # Most listening per byte first; items of unknown (0) size cost nothing.
            order = sorted(
                its, key=lambda it: (-(it.share / it.bytes if it.bytes else 1e300), it.id)
            )
            picked, room = [], budget - used
            for it in order:
                if it.bytes <= room:
                    picked.append(it)
                    room -= it.bytes
            row["included"] = "partial" if picked else "none"
        else:
            picked = []
            row["included"] = "none"
        row["items"] = len(picked)
        row["files"] = sum(it.files for it in picked)
        row["bytes"] = sum(it.bytes for it in picked)
        row["popularity_share"] = round(sum(it.share for it in picked), 6)
        row["tier_items"] = len(its)
        row["tier_bytes"] = tier_bytes
        used += row["bytes"]
        share += sum(it.share for it in picked)
        chosen_items += row["items"]
        chosen_files += row["files"]
        rows.append(row)
    note = (
        "everything fits"
        if cut_tier is None
        else f"the budget cuts tier {cut_tier}: filled by popularity per byte; later tiers left out"
    )
    return {
        "budget": budget,
        "bytes": used,
        "items": chosen_items,
        "files": chosen_files,
        "popularity_share": round(share, 6),
        "cut_tier": cut_tier,
        "note": note,
        "tiers": rows,
        "total_items": len(items),
        "total_bytes": sum(it.bytes for it in items),
    }
