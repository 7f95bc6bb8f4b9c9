"""`sync`: harvest, fetch, check, pack and publish in one run (DESIGN §4), made for cron.

The caller holds the data dir's lock for the whole run (the CLI takes it once, through
`mirror_for(write=True)`); the stages are the library functions, called in order.

Failure policy, so a wrapper can act on the exit code:

- A stage that fails (raises, or reports `failed > 0`) is recorded and logged as a warning;
  the later stages still run on what the catalogue holds. Each stage only ever moves
  verified work forward (fetch verifies before it records, check judges fetched files,
  pack packs only checked publishable files), so a partial earlier stage never makes a
  later one wrong, only smaller. Exit 1.
- A source that cannot be reached at all (`SourceUnreachable` from its harvest or from
  fetch) does not stop the run either: the other sources are harvested, and what is
  already fetched is still checked, packed and published, so an outage of one host never
  holds back sealing what the mirror already has. Exit 4 (takes precedence over 1).
- A second run with nothing new changes nothing: harvest skips unchanged items, fetch,
  check and pack find nothing to do, and publish runs only when what it publishes changed
  since the last successful publish (a fingerprint kept in `<data_dir>/sync-state.json`),
  so the published files keep their bytes and mtimes.

`dry_run=True` touches nothing: it calls each stage's plan step (the same steps the run
carries out) on a read-only catalogue and reports what the run would do (`plan_sync`;
`sync_dry_run` opens the catalogue read-only, and copes with a data dir without one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccmirror import catalogue
from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.queries import compact_candidates, files_to_judge, pending_files
from ccmirror.catalogue.site import published_state
from ccmirror.compact.run import compact, compact_items, compact_todo, need_encoder, plan_release
from ccmirror.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, CCMirrorError, SourceUnreachable
from ccmirror.fetch import fetch
from ccmirror.fetch.plan import plan_fetch
from ccmirror.follow import follow_sync
from ccmirror.fsutil import atomic_write_json
from ccmirror.harvest import harvest
from ccmirror.licence import judge_declared, publishable_verdicts
from ccmirror.licence.check import check, plan_check
from ccmirror.licence.policy import Policy, permits_format_shift
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror
from ccmirror.packs import PackPlan, pack, plan_pack
from ccmirror.packs.retire import plan_retire
from ccmirror.progress import NullReporter, Reporter
from ccmirror.publish.run import publish
from ccmirror.publish.site import SITE_LAYOUT
from ccmirror.results import StageResult
from ccmirror.tiers import rank_items

__all__ = ["STAGES", "plan_sync", "publish_fingerprint", "sync", "sync_dry_run"]

log = logging.getLogger("ccmirror.sync")

STAGES = ("harvest", "fetch", "check", "compact", "pack", "publish")
STATE_FILE = "sync-state.json"


def sync(
    mirror: Mirror,
    *,
    dry_run: bool = False,
    max_bytes: int | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run every stage once; return a JSON-ready summary with `exit_code` and `failed`.

    `max_bytes` caps what fetch downloads in this run. With `dry_run`, nothing is written.
    """
    if mirror.manifest.is_follower:  # no sources: packs come from a primary's list
        return follow_sync(mirror, dry_run=dry_run, reporter=reporter)
    if dry_run:
        return plan_sync(mirror, max_bytes=max_bytes)
    need_encoder(mirror.manifest)  # a compact tier without an encoder: exit 2 before any work
    reporter = reporter or NullReporter()
    started, t0 = utcnow(), time.monotonic()
    result: dict[str, Any] = {
        "dry_run": False,
        "mirror": mirror.name,
        "data_dir": str(mirror.data_dir),
        "started_at": started,
        "stages": {},
        "unreachable": [],
    }
    stages: dict[str, dict[str, Any]] = result["stages"]

    stages["harvest"] = _stage(
        "harvest",
        lambda: harvest(mirror, workers=8, reporter=reporter, raise_unreachable=False),
    )
    result["unreachable"].extend(stages["harvest"].get("unreachable", []))
    stages["fetch"] = _stage(
        "fetch",
        lambda: fetch(mirror, max_bytes=max_bytes, reporter=reporter),
        result["unreachable"],
    )
    stages["check"] = _stage("check", lambda: check(mirror, reporter=reporter))
    stages["compact"] = _stage("compact", lambda: compact(mirror, reporter=reporter))
    stages["pack"] = _stage(
        "pack", lambda: pack(mirror, seal_when_complete=True, reporter=reporter)
    )
    stages["publish"] = _publish(mirror, reporter)

    if "budget" in stages["fetch"]:  # [mirror] budget: whether it is what stops growth
        result["budget"] = stages["fetch"]["budget"]
    failed = [name for name in STAGES if not stages[name]["ok"]]
    result["failed"] = len(failed)
    result["failed_stages"] = failed
    result["exit_code"] = (
        EXIT_UNREACHABLE if result["unreachable"] else EXIT_FAILED if failed else EXIT_OK
    )
    result["finished_at"] = utcnow()
    result["seconds"] = round(time.monotonic() - t0, 3)
    log.info(
        "sync finished in %.1fs: %s", result["seconds"], "ok" if not failed else f"failed {failed}"
    )
    return result


def _stage(
    name: str,
    run: Callable[[], dict[str, Any] | StageResult],
    unreachable: list[str] | None = None,
) -> dict[str, Any]:
    """Run one stage; whatever happens, return its summary with `ok` and `seconds`."""
    t0 = time.monotonic()
    try:
        got = run()
        if isinstance(got, StageResult):  # the type says whether it failed
            out, ok, failed = got.to_dict(), got.ok, got.failed_count
        else:
            out = dict(got or {})
            ok = not any(_count(out.get(k)) for k in ("failed", "errors", "unreachable"))
            failed = _count(out.get("failed"))
        if failed:
            log.warning("%s: %s failed (retried next run)", name, failed)
    except SourceUnreachable as e:
        log.warning("%s: %s", name, e.message)
        if unreachable is not None:
            unreachable.append(f"{name}: {e.message}")
        out, ok = {"error": e.message, "unreachable": True}, False
    except CCMirrorError as e:
        log.warning("%s: %s", name, e.message)
        out, ok = {"error": e.message}, False
    except Exception as e:  # a bug in one stage must not stop the others (see module doc)
        log.error("%s: internal error: %s: %s", name, type(e).__name__, e, exc_info=True)
        out, ok = {"error": f"internal error: {type(e).__name__}: {e}"}, False
    out["ok"] = ok
    out["seconds"] = round(time.monotonic() - t0, 3)
    if ok:
        log.info("%s: done in %.1fs", name, out["seconds"])
    return out


def _count(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dict | list):
        return len(value)
    return 1


# --- publish, only when what it publishes changed ------------------------------------------


def _publish(mirror: Mirror, reporter: Reporter) -> dict[str, Any]:
    state_path = mirror.data_dir / STATE_FILE
    state = _read_state(state_path)
    fingerprint = publish_fingerprint(mirror)
    torrents_json = mirror.public_dir / "torrents.json"
    if state.get("published") == fingerprint and torrents_json.exists():
        log.info("publish: nothing changed since the last publish")
        return {"ok": True, "seconds": 0.0, "skipped": "nothing changed since the last publish"}

    out = _stage("publish", lambda: publish(mirror, reporter=reporter))
    if out["ok"]:
        # What was published is what the catalogue holds now (publish itself may record rows).
        state["published"] = publish_fingerprint(mirror)
        state["published_at"] = utcnow()
        atomic_write_json(state_path, state)
    return out


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def publish_fingerprint(mirror: Mirror) -> str:
    """A digest of everything publish renders: packs, item and file states, the manifest.

    A few aggregate queries (milliseconds on a large catalogue); any change to a pack,
    an item's status, a file's verdict or the manifest's bytes changes it.
    """
    h = hashlib.sha256(SITE_LAYOUT.encode())
    with contextlib.suppress(OSError):
        h.update(mirror.manifest.path.read_bytes())
    for rows in published_state(mirror.db):
        h.update(repr(rows).encode())
    return h.hexdigest()


# --- the dry run: every stage's own plan step, nothing written -----------------------------


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
    fetch_plan = plan_fetch(mirror, max_bytes=max_bytes, probe=False)
    stages["fetch"] = {**fetch_plan.to_dict(), "ok": True}

    check_plan = plan_check(mirror)
    incoming = [t.file_id for t in fetch_plan.tasks]
    judged = {r["id"] for r in check_plan.todo}
    to_check = len(judged) + sum(1 for i in incoming if i not in judged)
    stages["check"] = {
        "checked": to_check,
        "unchanged": check_plan.unchanged,
        "files_to_check": to_check,
        "bytes_to_check": sum(r["size"] or 0 for r in check_plan.todo) + fetch_plan.bytes,
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
    stages["compact"] = _compact_dict(mirror, predicted)

    taken = set(incoming) | {r.file_id for r in fetch_plan.refusals}
    tier_of = {it.id: it.tier for it in rank_items(mirror.db, mirror.manifest.tiers.shares)}
    waiting = {tier_of[r["item_id"]] for r in pending_files(mirror.db) if r["id"] not in taken}
    pack_plan = plan_pack(
        mirror,
        seal_when_complete=True,
        predicted=predicted,
        pending=waiting & set(tier_of.values()),
    )
    stages["pack"] = _pack_dict(mirror, pack_plan)
    retire = plan_retire(mirror)
    stages["pack"]["obsoleted"] = len(retire.obsolete)
    stages["pack"]["would_obsolete"] = [
        {"name": n, "reason": why} for n, why in retire.obsolete.items()
    ]

    state = _read_state(mirror.data_dir / STATE_FILE)
    changed = state.get("published") != publish_fingerprint(mirror)
    work = bool(fetch_plan.tasks or to_check or pack_plan.assign.entries or pack_plan.seal)
    published = (mirror.public_dir / "torrents.json").exists()
    stages["publish"] = {"would_publish": bool(work or changed or not published), "ok": True}
    return result


def _compact_dict(mirror: Mirror, predicted: list[sqlite3.Row]) -> dict[str, Any]:
    """The compact stage's keys, predicted: which originals it decides (those judged
    publishable already, and `predicted`: those the check is expected to pass), which it
    keeps for their licence, which it releases (copies already judged). Whether an
    original is copied, kept or unreadable depends on its stream, read when the run
    decides: those keys are None, as verdicts are."""
    tiers = list(mirror.manifest.tiers.compact_tiers)
    in_compact = compact_items(mirror.db, mirror.manifest)
    out: dict[str, Any] = {
        "compact_tiers": tiers,
        "files_to_consider": compact_candidates(mirror.db) if in_compact else 0,
        "ok": True,
    }
    if not tiers:
        return out | {"copied": 0, "failed": 0, "released": 0}
    todo = compact_todo(mirror, in_compact)
    judged_now = [
        r
        for r in predicted
        if r["item_id"] in in_compact and r["copy_of"] is None and r["compact"] is None
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
        "derivatives": None,  # chosen by the fetch stage's start in a sync
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
        "assigned_files": len(plan.assign.entries),
        "assigned_items": len(plan.assign.items),
        "sealed": sealed,
        "open": sorted(n for n in slots if n not in plan.seal),
        "failed": 0,
        "repaired": 0,
        "obsoleted": 0,
        "publishable_verdicts": list(
            publishable_verdicts(mirror.manifest.licence.require_embedded)
        ),
        # Earlier dry-run keys, kept (additive).
        "files_to_pack": len(plan.assign.entries),
        "bytes_to_pack": sum(e[3] for e in plan.assign.entries),
        "open_packs": sorted(s.name for s in plan.assign.slots if s.pack_id is not None),
        "would_seal_packs_estimate": len(sealed),
        "would_seal_per_tier": per_tier,
        "note": "sealed packs as the run would name them, if every file verifies"
        " and every assumed verdict holds",
        "ok": True,
    }
