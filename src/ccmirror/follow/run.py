"""`sync` on a follower manifest: read the list, plan, download, verify, re-plan.

Order matters for "nothing lost": the list is read and parsed whole before anything
changes; downloads only add; a pack is seeded only after it verified; obsolete packs are
dropped only once the live torrents of their tier that this follower planned are held; a
torrent that vanished from the list is kept (a truncated list must not empty a volunteer).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.follow import held_count, held_names
from ccmirror.errors import EXIT_FAILED, EXIT_OK, CCMirrorError, UnsafeName
from ccmirror.follow import state
from ccmirror.follow.listing import Listed, read_list, read_withdrawn
from ccmirror.follow.plan import Candidate, choose, volunteer_id
from ccmirror.follow.transfer import Job, TorrentRefused, download, fetch_torrent
from ccmirror.follow.verify import manifest_rows, verify_pack
from ccmirror.fsutil import safe_join
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.seedplan import SCRAPE_TIMEOUT, scrape_hashes
from ccmirror.sizes import format_size

log = logging.getLogger("ccmirror.follow")


def _plan(mirror: Mirror, entries: list[Listed], volunteer: str, timeout: float) -> dict:
    cfg = mirror.manifest.follow
    known = state.rows(mirror.db)
    held = {b: r["data_size"] for b, r in known.items() if r["state"] == "held"}
    skip = {b for b, r in known.items() if r["state"] == "quarantined"}
    live = [e for e in entries if not e.obsolete and e.btih not in skip]
    counts = scrape_hashes([(e.btih, e.btih, list(e.trackers)) for e in live], timeout)
    cands = [
        Candidate(e.btih, e.data_size, e.tier, counts.get(e.btih, {}).get("seeders")) for e in live
    ]
    choice = choose(cands, cfg.space, volunteer, held)
    by_btih = {e.btih: e for e in entries}
    seeders = {c.btih: c.seeders for c in cands}
    return {
        "choice": choice,
        "held": held,
        "known": known,
        "plan": [
            {
                "rank": i,
                "name": by_btih[c.btih].name,
                "btih": c.btih,
                "tier": c.tier,
                "data_size": c.data_size,
                "seeders": seeders[c.btih],
                "held": c.btih in held,
            }
            for i, c in enumerate(choice.chosen, start=1)
        ],
        "unknown_counts": sum(1 for c in cands if c.seeders is None),
    }


def _fetch_jobs(mirror: Mirror, wanted: list[Listed], out: dict[str, Any]) -> list[Job]:
    jobs = []
    for e in wanted:
        try:
            data, atp = fetch_torrent(e)
        except TorrentRefused as err:
            line = f"{e.name}: .torrent refused: {err}"
            log.warning("%s", line)
            out["refused_torrents"].append({"name": e.name, "btih": e.btih, "reason": str(err)})
            continue
        except CCMirrorError as err:
            log.warning("%s: %s (tried again next run)", e.name, err.message)
            out["failures"].append({"name": e.name, "error": err.message})
            continue
        state.upsert_wanted(mirror.db, e)
        jobs.append(Job(e, data, atp))
    return jobs


def _verify(mirror: Mirror, jobs: list[Job], out: dict[str, Any]) -> None:
    for job in jobs:
        e = job.entry
        if not job.done:
            why = job.error or f"incomplete: {job.progress * 100:.1f}% when the time was up"
            state.set_reason(mirror.db, e.btih, why)
            out["incomplete"].append({"name": e.name, "progress": round(job.progress, 4)})
            continue
        problems = verify_pack(
            state.payload_dir(mirror, e.name),
            job.atp.ti,
            mirror.manifest.licence,
            is_metadata=e.is_metadata,
        )
        if problems:
            where = state.quarantine_pack(mirror, e, job.data, problems)
            log.warning("%s refused, moved to %s: %s", e.name, where, problems[0])
            out["quarantined"].append({"name": e.name, "where": where, "problems": problems})
            continue
        state.hold(mirror, e, job.data)
        out["downloaded"].append(e.name)
        out["bytes"] += e.data_size


def _withdraw(mirror: Mirror, out: dict[str, Any]) -> None:
    """Delete the files of items the primary withdrew from every pack we hold."""
    withdrawn, warning = read_withdrawn(mirror.manifest.follow.torrents)
    if warning:
        out["warnings"].append(warning)
        log.warning("%s", warning)
    if not withdrawn:
        return
    for name in held_names(mirror.db):
        root = state.payload_dir(mirror, name)
        try:
            rows = manifest_rows(root)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        for row in rows:
            if (row.get("source"), row.get("source_id")) not in withdrawn:
                continue
            try:
                path = safe_join(root, row.get("path") or "")
            except UnsafeName:
                continue
            if path.is_file():
                path.unlink()
                out["withdrawn_files_deleted"] += 1
                log.info("%s: deleted %s (withdrawn by the primary)", name, row["path"])


def _drop_obsolete(mirror: Mirror, entries: list[Listed], planned: set[str], out: dict) -> None:
    """Obsolete held packs go once every planned live torrent of their tier is held."""
    known = state.rows(mirror.db)
    by_btih = {e.btih: e for e in entries}
    missing_tiers = {
        by_btih[b].tier for b in planned if known.get(b) is None or known[b]["state"] != "held"
    }
    for b, r in known.items():
        e = by_btih.get(b)
        if e is None or not e.obsolete:
            continue
        if r["state"] == "held" and e.tier not in missing_tiers:
            state.drop(mirror, b, r["name"], "obsolete in the list; its tier's live torrents held")
            out["dropped"].append(r["name"])
        elif r["state"] == "wanted":  # never finished: the partial payload goes
            state.drop(mirror, b, r["name"], "obsolete in the list before it was complete")


def _result(
    mirror: Mirror,
    entries: list[Listed],
    refused: list[dict[str, str]],
    planned: dict[str, Any],
    *,
    dry_run: bool,
    started: str,
) -> dict[str, Any]:
    """The run's summary before any download: what the list holds and what was planned."""
    cfg = mirror.manifest.follow
    choice = planned["choice"]
    return {
        "dry_run": dry_run,
        "follower": True,
        "mirror": mirror.name,
        "data_dir": str(mirror.data_dir),
        "list": cfg.torrents,
        "started_at": started,
        "listed": len(entries),
        "refused_entries": refused,
        "space": cfg.space,
        "planned": len(choice.chosen),
        "planned_bytes": choice.used,
        "over_space_bytes": choice.over_space,
        "not_fitting": len(choice.not_fitting),
        "not_fitting_bytes": sum(c.data_size for c in choice.not_fitting),
        "unknown_counts": planned["unknown_counts"],
        "plan": planned["plan"],
        "refused_torrents": [],
        "failures": [],
        "downloaded": [],
        "bytes": 0,
        "incomplete": [],
        "quarantined": [],
        "dropped": [],
        "withdrawn_files_deleted": 0,
        "warnings": [],
    }


def follow_sync(
    mirror: Mirror,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    scrape_timeout: float = SCRAPE_TIMEOUT,
) -> dict[str, Any]:
    """One follower run; a JSON-ready summary with `failed` and `exit_code`."""
    cfg = mirror.manifest.follow
    reporter = reporter or NullReporter()
    t0, started = time.monotonic(), utcnow()
    entries, refused = read_list(cfg.torrents)
    for r in refused:
        log.warning("torrent list entry %s refused: %s", r["entry"], r["reason"])
    volunteer = volunteer_id(mirror.data_dir) if not dry_run else "dry-run"
    planned = _plan(mirror, entries, volunteer, scrape_timeout)
    choice = planned["choice"]
    if choice.not_fitting:
        line = (
            f"{len(choice.not_fitting)} listed torrents"
            f" ({format_size(sum(c.data_size for c in choice.not_fitting))}) do not fit in the"
            f" space offered ({format_size(cfg.space)}); what is held is kept"
        )
        log.warning("%s", line)
    out = _result(mirror, entries, refused, planned, dry_run=dry_run, started=started)
    if dry_run:
        out.update(failed=0, exit_code=EXIT_OK, seconds=round(time.monotonic() - t0, 3))
        return out
    state.mark_listed(mirror.db, entries)
    by_btih = {e.btih: e for e in entries}
    wanted = [by_btih[c.btih] for c in choice.chosen if c.btih not in planned["held"]]
    reporter.start("follow", len(wanted), "torrents")
    jobs = _fetch_jobs(mirror, wanted, out)
    download(
        mirror.packs_dir,
        jobs,
        time_limit=cfg.time_limit,
        dht=cfg.dht,
        on_progress=lambda _j: reporter.advance(),
    )
    reporter.finish()
    _verify(mirror, jobs, out)
    _withdraw(mirror, out)
    _drop_obsolete(mirror, entries, {c.btih for c in choice.chosen}, out)
    parts = {
        "fetch": len(out["failures"]) + len(out["refused_torrents"]),
        "download": len(out["incomplete"]),
        "verify": len(out["quarantined"]),
    }
    failed = sum(parts.values())
    out["failed_stages"] = [k for k, n in parts.items() if n]
    out["held"] = held_count(mirror.db)
    out.update(
        failed=failed,
        exit_code=EXIT_FAILED if failed else EXIT_OK,
        finished_at=utcnow(),
        seconds=round(time.monotonic() - t0, 3),
    )
    return out
