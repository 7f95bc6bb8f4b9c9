"""`sync --dry-run`: what `sync` would do, from every stage's own plan step (the steps
the run carries out), on a read-only catalogue; nothing is written or locked.

Per stage, the keys the real `sync --json` reports, with the values the run would produce;
where a value depends on bytes not yet read (a verdict, a compact decision) it is None and
the stage says so.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ccmirror import catalogue
from ccmirror.catalogue.assign import waiting_tiers
from ccmirror.catalogue.compact import CompactItems, item_file_names
from ccmirror.catalogue.queries import compact_candidates, files_to_judge
from ccmirror.catalogue.tiers import ranking
from ccmirror.compact.run import compact_items, compact_todo, plan_derivatives, plan_release
from ccmirror.errors import EXIT_OK
from ccmirror.fetch.plan import plan_fetch
from ccmirror.licence import judge_declared, publishable_verdicts
from ccmirror.licence.check import plan_check
from ccmirror.licence.policy import Policy, permits_format_shift
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror
from ccmirror.packs import PackPlan, plan_pack
from ccmirror.packs.retire import plan_retire
from ccmirror.publish.fingerprint import STATE_FILE, publish_fingerprint, read_state

__all__ = ["plan_sync", "policy_of", "sync_dry_run"]


def sync_dry_run(manifest: Manifest, *, max_bytes: int | None = None) -> dict[str, Any]:
    """What `sync` would do, from the stages' plan steps; creates and locks nothing.

    A data dir without a catalogue gets a plan that says everything starts with a harvest.
    """
    db_path = manifest.data_dir / "catalogue.sqlite"
    if not db_path.exists():
        out = _dry_head(manifest, "absent: the first run creates it")
        for name in ("fetch", "check", "compact", "pack"):
            out["stages"][name] = {"note": "depends on what the harvest finds"}
        out["stages"]["publish"] = {"would_publish": True}
        return out
    conn = catalogue.connect(db_path, readonly=True)
    try:
        return plan_sync(Mirror(manifest, conn), max_bytes=max_bytes)
    finally:
        conn.close()


def _dry_head(manifest: Manifest, catalogue_state: str) -> dict[str, Any]:
    sources = [{"kind": s.kind, "where": s.where} for s in manifest.sources]
    return {
        "dry_run": True,
        "mirror": manifest.name,
        "data_dir": str(manifest.data_dir),
        "catalogue": catalogue_state,
        "stages": {
            "harvest": {"sources": sources, "note": "asks each source for new or changed items"},
        },
        "failed": 0,
        "exit_code": EXIT_OK,
    }


def plan_sync(mirror: Mirror, *, max_bytes: int | None = None) -> dict[str, Any]:
    """The dry-run summary: per stage, the keys the real `sync --json` reports, with the
    values the run would produce, from the same plan steps the run carries out.

    Read-only: the catalogue, and lstat of the store. Harvest is not asked (what it finds
    is not foreseen), and verdicts depend on bytes not yet read: files still to be judged
    are assumed publishable when their item's declared licence is allowed (said in
    `check.verdicts`).
    """
    result = _dry_head(mirror.manifest, "present")
    stages = result["stages"]
    in_compact = compact_items(mirror.db, mirror.manifest)
    derived = _planned_derivatives(mirror, in_compact)
    fetch_plan = plan_fetch(mirror, max_bytes=max_bytes, probe=False, derivatives=derived)
    stages["fetch"] = {**fetch_plan.to_dict(), "ok": True}

    check_plan = plan_check(mirror)
    incoming = [t.file_id for t in fetch_plan.tasks]
    coming = set(incoming)
    to_check = len(check_plan.todo) + len(coming) - sum(i in coming for i in check_plan.todo)
    stages["check"] = {
        "checked": to_check,
        "unchanged": check_plan.unchanged,
        "files_to_check": to_check,
        "bytes_to_check": check_plan.todo_bytes + fetch_plan.bytes,
        "verdicts": "unknown until the bytes are read: files of an item whose declared"
        " licence is allowed are assumed publishable",
        "quarantined": None,  # a verdict: unknown until the bytes are read
        "missing": 0,
        "restored": 0,
        "failed": 0,
        "require_embedded": policy_of(mirror).require_embedded,
        "ok": True,
    }

    policy = policy_of(mirror)
    predicted = [
        r
        for r in files_to_judge(mirror.db, incoming)
        if judge_declared(r["licence_url"], r["licence_title"], mirror.manifest.licence).allowed
        or r["declared_licence_id"]
        and policy.judge(r["declared_licence_id"]) is None
    ]
    stages["compact"] = _compact_dict(mirror, in_compact, set(derived), predicted)

    taken = set(incoming) | {r.file_id for r in fetch_plan.refusals} | set(derived)
    # Tiers with a pending file this run's fetch does not bring (SQL, no object per item).
    waiting = waiting_tiers(
        mirror.db, ranking(mirror.db, mirror.manifest.tiers.shares), taken=taken
    )
    pack_plan = plan_pack(mirror, seal_when_complete=True, predicted=predicted, pending=waiting)
    stages["pack"] = _pack_dict(mirror, pack_plan)
    retire = plan_retire(mirror)
    stages["pack"]["obsoleted"] = len(retire.obsolete)
    stages["pack"]["would_obsolete"] = [
        {"name": n, "reason": why} for n, why in retire.obsolete.items()
    ]
    if mirror.manifest.tiers.compact_tiers:
        stages["pack"]["not_foreseen"] = (
            f"packs of compact tiers {list(mirror.manifest.tiers.compact_tiers)}: they hold"
            " what compact decides from each original's stream (copies, kept originals)"
        )

    state = read_state(mirror.data_dir / STATE_FILE)
    changed = state.get("published") != publish_fingerprint(mirror)
    work = bool(fetch_plan.tasks or to_check or pack_plan.assign.files or pack_plan.seal)
    published = (mirror.public_dir / "torrents.json").exists()
    stages["publish"] = {"would_publish": bool(work or changed or not published), "ok": True}
    return result


def _planned_derivatives(mirror: Mirror, in_compact: CompactItems) -> dict[int, sqlite3.Row]:
    """The originals whose smaller derivative the fetch stage's start (compact's
    `prepare`) chooses: the item has no file of the derivative's name yet."""
    return {
        fid: r
        for fid, r in plan_derivatives(mirror.db, in_compact).items()
        if r["dname"] not in item_file_names(mirror.db, r["item_id"])
    }


def _compact_dict(
    mirror: Mirror, in_compact: CompactItems, derived: set[int], predicted: list[sqlite3.Row]
) -> dict[str, Any]:
    """The compact stage's keys, predicted: which originals it decides (those judged
    publishable already, and `predicted`: those the check is expected to pass), which it
    keeps for their licence, which it releases (copies already judged). Whether an
    original is copied, kept or unreadable depends on its stream, read when the run
    decides: those keys are None, as verdicts are."""
    tiers = list(mirror.manifest.tiers.compact_tiers)
    out: dict[str, Any] = {
        "compact_tiers": tiers,
        "files_to_consider": compact_candidates(mirror.db) if in_compact else 0,
        "ok": True,
    }
    if not tiers:
        return out | {"copied": 0, "failed": 0, "released": 0}
    # Originals whose derivative is fetched instead are not decided.
    todo = [r for r in compact_todo(mirror, in_compact) if r["id"] not in derived]
    judged_now = [
        r
        for r in predicted
        if r["item_id"] in in_compact
        and r["copy_of"] is None
        and r["compact"] is None
        and r["id"] not in derived
    ]
    release, mismatched = plan_release(mirror)
    keep = sum(1 for r in todo if not permits_format_shift(r["licence"]))
    return out | {
        "to_decide": len(todo) + len(judged_now),
        "original_by_licence": keep,
        "original": None,
        "copied": None,
        "kept": None,
        "unreadable": None,
        "failed": 0,
        "released": len(release),
        "freed_bytes": sum(r["size"] or 0 for r in release),
        "licence_mismatch": mismatched,
        "derivatives": 0,  # in a sync, the fetch stage's start chooses them
        "derivatives_at_fetch": len(derived),
        "copy_bytes": None,
        "original_bytes": None,
        "checked_copies": None,
        "bitrate": mirror.manifest.compact.bitrate,
        "failures": [],
        "predictions": "copied, kept, original and unreadable depend on each original's"
        " stream, read when the run decides; original_by_licence counts the originals judged"
        " already whose licence forbids a format shift; released counts copies judged"
        " already (the run also releases the originals of the copies it makes and judges)",
    }


def policy_of(mirror: Mirror) -> Policy:
    return Policy.from_config(mirror.manifest.licence)


def _pack_dict(mirror: Mirror, plan: PackPlan) -> dict[str, Any]:
    sealed = [
        {"name": n, "files": plan.seal_files[n], "bytes": plan.seal_bytes[n]} for n in plan.seal
    ]
    per_tier: dict[str, int] = {}
    for slot in plan.assign.slots:
        if slot.name in plan.seal:
            key = str(slot.tier) if slot.tier else "unranked"
            per_tier[key] = per_tier.get(key, 0) + 1
    slots = {s.name for s in plan.assign.slots if s.files or s.pack_id is not None}
    return {
        "assigned_files": plan.assign.files,
        "assigned_items": plan.assign.item_count,
        "sealed": sealed,
        "open": sorted(n for n in slots if n not in plan.seal),
        "failed": 0,
        "repaired": 0,
        "obsoleted": 0,
        "publishable_verdicts": list(
            publishable_verdicts(mirror.manifest.licence.require_embedded)
        ),
        # Earlier dry-run keys, kept (additive).
        "files_to_pack": plan.assign.files,
        "bytes_to_pack": plan.assign.bytes,
        "open_packs": sorted(s.name for s in plan.assign.slots if s.pack_id is not None),
        "would_seal_packs_estimate": len(sealed),
        "would_seal_per_tier": per_tier,
        "note": "sealed packs as the run would name them, if every file verifies"
        " and every assumed verdict holds",
        "ok": True,
    }
