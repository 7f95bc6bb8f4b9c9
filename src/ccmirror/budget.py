"""`[mirror] budget` applied: the store holds what `plan` selects for that size.

`fetch` (and so `sync`) fetch only the files of the items `tiers.select` holds for the
budget: the same selection `plan` reports. Files sealed in packs are never deleted to make
room: their items are held first, whatever the budget. `status` shows the budget, the
bytes the store holds and the share of listening its items cover.
"""

from __future__ import annotations

import logging
from typing import Any

from ccmirror.catalogue.budget import covered_share_sum, held_table
from ccmirror.catalogue.queries import mirror_status, store_bytes
from ccmirror.catalogue.selection import eviction_order
from ccmirror.catalogue.states import file_evicted
from ccmirror.catalogue.tiers import Ranking, ranking
from ccmirror.errors import UnsafeName
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror
from ccmirror.tiers import Selection, select

log = logging.getLogger("ccmirror.budget")
# A file that left the store for the budget: pending again, its checksums and size kept.


def budget_selection(mirror: Mirror) -> Selection | None:
    """The selection for the manifest's budget; None when the manifest sets none."""
    budget = mirror.manifest.budget
    return None if budget is None else select(mirror, budget)


def held_sql(sel: Selection, col: str = "i.id") -> str:
    """SQL: the item id `col` is one the selection holds. The held ids go once into a TEMP
    table of the connection (`Selection.held_ids`, streamed: no set of every id), so
    callers filter in SQL; a later selection on the connection fills it afresh."""
    return held_table(sel.db, sel.held_ids(), col)


def make_room(mirror: Mirror, sel: Selection, need: int) -> dict[str, int]:
    """When the store plus `need` (what this run would fetch) passes the budget, files of
    items the selection no longer holds leave the store, least listening per byte first,
    until it fits: a fetched file becomes pending again (checksums kept, to be verified if
    it comes back); a local copy is dropped and its original pending again. Files in
    sealed packs never leave (they stay seeded); open packs drop what leaves."""
    db = mirror.db
    stored = store_bytes(db)
    out = {"evicted_files": 0, "evicted_bytes": 0}
    if stored + need <= sel.budget:
        return out
    # Only when the store must shrink: candidates by listening per byte, from SQL.
    for r in eviction_order(db, sel.ranking, sel.sizing):
        if stored + need <= sel.budget:
            break
        if r["item_id"] in sel.chosen:
            continue
        try:
            path = mirror.abspath(r["store_path"])
            path.unlink(missing_ok=True)
        except (OSError, UnsafeName) as e:
            log.warning("budget: cannot remove %s: %s", r["store_path"], e)
            continue
        file_evicted(db, r["id"], r["copy_of"] if r["url"] is None else None)
        stored -= r["size"] or 0
        out["evicted_files"] += 1
        out["evicted_bytes"] += r["size"] or 0
    if out["evicted_files"]:
        log.info(
            "budget: %d files (%d bytes) left the store to make room",
            out["evicted_files"], out["evicted_bytes"],
        )  # fmt: skip
    return out


def budget_report(sel: Selection, stored: int) -> dict[str, Any]:
    """What a run reports about its budget: whether the budget is what stops growth."""
    left_out = sel.total_items - sel.items
    selected = sel.bytes
    return {
        "budget": sel.budget,
        "selected_bytes": selected,
        "selected_items": sel.items,
        "left_out_items": left_out,
        "store_bytes": stored,
        "popularity_share": round(sel.share, 6),
        "cut_tier": sel.cut_tier,
        "stopped_by_budget": left_out > 0,
        "note": (
            f"the budget stops growth: {left_out} items left out"
            f" (tier {sel.cut_tier} cut by popularity per byte)"
            if left_out
            else "everything fits the budget"
        ),
    }


def covered_share(mirror: Mirror, rk: Ranking | None = None) -> float:
    """Share of listening of the items the store holds whole: every file it keeps is
    fetched, and at least one is publishable. One aggregate query driven by the fetched
    files (no object per item, nothing read for items with nothing fetched)."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    rk = rk or ranking(mirror.db, mirror.manifest.tiers.shares)
    share, params = rk.share_sql()
    return round(covered_share_sum(mirror.db, share, params, allowed), 6)


def status(mirror: Mirror) -> dict[str, Any]:
    """`catalogue.queries.mirror_status` plus `budget`: the budget (None: no limit), the
    bytes the store holds, the share of listening covered, and the plan's selection."""
    db = mirror.db
    rk = ranking(db, mirror.manifest.tiers.shares, prefetch=True)
    out = mirror_status(db, mirror.manifest.tiers.shares, mirror.data_dir, rk)
    stored = store_bytes(db)
    budget: dict[str, Any] = {
        "budget": mirror.manifest.budget,
        "store_bytes": stored,
        "covered_share": covered_share(mirror, rk),
        "compact_tiers": list(mirror.manifest.tiers.compact_tiers),
    }
    sel = budget_selection(mirror)
    if sel is not None:
        report = budget_report(sel, stored)
        budget |= {k: report[k] for k in ("selected_bytes", "left_out_items", "note")}
    return out | {"budget": budget}
