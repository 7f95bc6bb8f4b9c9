"""`[mirror] budget` applied: the store holds what `plan` selects for that size.

`fetch` (and so `sync`) fetch only the files of the items `tiers.select` holds for the
budget: the same selection `plan` reports. Files sealed in packs are never deleted to make
room: their items are held first, whatever the budget. `status` shows the budget, the
bytes the store holds and the share of listening its items cover.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ccmirror.catalogue.queries import mirror_status, store_bytes
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror
from ccmirror.tiers import Selection, ranked, select


def budget_selection(mirror: Mirror) -> Selection | None:
    """The selection for the manifest's budget; None when the manifest sets none."""
    budget = mirror.manifest.budget
    return None if budget is None else select(mirror, budget)


def budget_report(sel: Selection, stored: int) -> dict[str, Any]:
    """What a run reports about its budget: whether the budget is what stops growth."""
    chosen = [it for it in sel.items if it.id in sel.chosen]
    left_out = len(sel.items) - len(chosen)
    selected = sum(it.bytes for it in chosen)
    return {
        "budget": sel.budget,
        "selected_bytes": selected,
        "selected_items": len(chosen),
        "left_out_items": left_out,
        "store_bytes": stored,
        "popularity_share": round(sum(it.share for it in chosen), 6),
        "cut_tier": sel.cut_tier,
        "stopped_by_budget": left_out > 0,
        "note": (
            f"the budget stops growth: {left_out} items left out"
            f" (tier {sel.cut_tier} cut by popularity per byte)"
            if left_out
            else "everything fits the budget"
        ),
    }


def covered_share(mirror: Mirror) -> float:
    """Share of listening of the items the store holds whole: every file it keeps is
    fetched, and at least one is publishable."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    marks = ",".join("?" * len(allowed))
    held = _held_items(mirror.db, marks, allowed)
    return round(sum(it.share for it in ranked(mirror) if it.id in held), 6)


def _held_items(db: sqlite3.Connection, marks: str, allowed: tuple[str, ...]) -> set[int]:
    return {
        r[0]
        for r in db.execute(
            "SELECT f.item_id FROM files f GROUP BY f.item_id HAVING"
            " sum(f.status IN ('pending', 'failed') AND f.compact IS NOT 'derivative') = 0"
            f" AND sum(f.status = 'fetched' AND f.verdict IN ({marks})"
            "  AND (f.store_path IS NOT NULL OR f.compact IN ('copied', 'derivative'))) > 0",
            allowed,
        )
    }


def status(mirror: Mirror) -> dict[str, Any]:
    """`catalogue.queries.mirror_status` plus `budget`: the budget (None: no limit), the
    bytes the store holds, the share of listening covered, and the plan's selection."""
    db = mirror.db
    out = mirror_status(db, mirror.manifest.tiers.shares, mirror.data_dir)
    stored = store_bytes(db)
    budget: dict[str, Any] = {
        "budget": mirror.manifest.budget,
        "store_bytes": stored,
        "covered_share": covered_share(mirror),
        "compact_tiers": list(mirror.manifest.tiers.compact_tiers),
    }
    sel = budget_selection(mirror)
    if sel is not None:
        report = budget_report(sel, stored)
        budget |= {k: report[k] for k in ("selected_bytes", "left_out_items", "note")}
    return out | {"budget": budget}
