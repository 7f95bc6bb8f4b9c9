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

The dry run (`ccmirror.dryrun`: `plan_sync`, `sync_dry_run`) touches nothing: it calls
each stage's plan step (the same steps the run carries out) on a read-only catalogue and
reports what the run would do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ccmirror.catalogue.db import utcnow
from ccmirror.compact.run import compact, need_encoder
from ccmirror.dryrun import plan_sync, sync_dry_run  # noqa: F401 (sync's names, as before)
from ccmirror.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, CCMirrorError, SourceUnreachable
from ccmirror.fetch import fetch
from ccmirror.follow import follow_sync
from ccmirror.fsutil import atomic_write_json
from ccmirror.harvest import harvest
from ccmirror.licence.check import check
from ccmirror.mirror import Mirror
from ccmirror.packs import pack
from ccmirror.progress import NullReporter, Reporter
from ccmirror.publish.fingerprint import STATE_FILE, publish_fingerprint, read_state
from ccmirror.publish.run import publish
from ccmirror.results import StageResult

__all__ = ["STAGES", "plan_sync", "publish_fingerprint", "sync", "sync_dry_run"]

log = logging.getLogger("ccmirror.sync")

STAGES = ("harvest", "fetch", "check", "compact", "pack", "publish")


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
    state = read_state(state_path)
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
