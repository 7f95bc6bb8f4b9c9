"""Packs that may no longer be published: sealed ones become obsolete (their other files
are packed again), open ones drop the file. `plan_retire` reads; `retire_unpublishable`
carries the plan out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ccmirror.catalogue import transaction
from ccmirror.catalogue.packs import (
    pack_obsoleted,
    unpublishable_in_sealed_packs,
    unpublishable_out_of_open_packs,
)
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.packs")

__all__ = ["RetirePlan", "plan_retire", "retire_unpublishable"]


@dataclass
class RetirePlan:
    """Sealed packs to make obsolete, by name, with why (the first reason found)."""

    obsolete: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


def plan_retire(mirror: Mirror) -> RetirePlan:
    """Which sealed packs hold a file that may no longer be published (read only)."""
    plan = RetirePlan()
    verdicts = publishable_verdicts(mirror.manifest.licence.require_embedded)
    for r in unpublishable_in_sealed_packs(mirror.db, verdicts):
        if r["name"] in plan.obsolete:
            continue
        plan.ids[r["name"]] = r["id"]
        plan.obsolete[r["name"]] = (
            f"item {r['source']}:{r['source_id']} {r['item_status']}"
            if r["item_status"] != "ok"
            else f"a file of {r['source']}:{r['source_id']} is no longer publishable"
        )
    return plan


def retire_unpublishable(mirror: Mirror) -> dict[str, int]:
    """Sealed packs holding a file that may no longer be published become obsolete (their
    other files are then packed again); open packs just drop such files."""
    db = mirror.db
    verdicts = publishable_verdicts(mirror.manifest.licence.require_embedded)
    obsolete = 0
    with transaction(db):
        plan = plan_retire(mirror)
        for name, why in plan.obsolete.items():
            if pack_obsoleted(db, plan.ids[name], why):
                obsolete += 1
                log.warning("pack %s is obsolete: %s", name, why)
        dropped = unpublishable_out_of_open_packs(db, verdicts)
    return {"obsoleted": obsolete, "dropped": dropped}
