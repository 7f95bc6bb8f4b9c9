"""`fetch`: download the catalogue's pending files, most popular first, every byte verified.

Each file goes to `<store path>.part` (resumed with Range over http), is checked against
what the source promised (size, md5, sha1: whatever is known), fsynced and renamed into
`store/<source>/<item>/<name>`; only then does the catalogue say `fetched`. Bytes that do
not match after a second full try are moved to `quarantine/` with a `.reason.json` and the
file is `failed` (the run exits 1). The next run tries it again (the fault may have been
passing); from its second failed run in a row it waits, from its last attempt, 1 h, then
2 h, 4 h ... at most 7 days (stale metadata at the source: bytes that never match must not
be downloaded twice on every cron run). Until then it is `deferred`, which is not a
failure of the run; `retry_failed` ignores the wait.
A host that never answered does not count towards the backoff (not the file's fault).
A file already in the store with the right bytes (a crash between rename and catalogue
update) is adopted, not fetched.

`max_bytes` bounds the store: bytes already fetched plus the files this run would add. The
first file that would pass it stops the plan; it and everything after stay pending
(`skipped_budget`). Each source has its manifest's `downloads` in flight at once (8 by
default; 16 at most to one host), `workers` at most in all;
the catalogue is written only by the calling thread, fetched files in batches.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccmirror.budget import budget_report, budget_selection, make_room
from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.queries import store_bytes
from ccmirror.compact.run import need_encoder, prepare
from ccmirror.errors import SourceUnreachable, UnsafeName, WorkFailed
from ccmirror.fetch.polite import Gate, GivenUp, InFlight
from ccmirror.fetch.record import Recorder
from ccmirror.fetch.transport import Failed, Stopped, download, source_size
from ccmirror.fsutil import hash_file, promote, safe_join
from ccmirror.manifest import DEFAULT_DOWNLOADS
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.quarantine import quarantine

__all__ = ["fetch"]

log = logging.getLogger("ccmirror.fetch")
MAX_THREADS = 64  # download threads at most (two per download in flight)
VERIFY_TRIES = 2  # a mismatch earns one more full download before the file is failed
MAX_LISTED_FAILURES = 50
# Consecutive files that never got an answer from a host before its other files are left
# pending for this run (a host that is down must not cost minutes of backoff per file).
UNREACHABLE_AFTER = 5
BACKOFF_FIRST = timedelta(hours=1)
BACKOFF_MAX = timedelta(days=7)


def backoff_delay(fail_streak: int) -> timedelta:
    """How long a file that failed `fail_streak` runs in a row waits: 0, 1 h, 2 h ... 7 d."""
    if fail_streak <= 1:
        return timedelta(0)  # one failure may be a passing fault: the next run tries again
    if fail_streak > 12:  # 2**10 h is past the cap already; no huge powers
        return BACKOFF_MAX
    return min(BACKOFF_FIRST * 2 ** (fail_streak - 2), BACKOFF_MAX)


def _deferred(row: sqlite3.Row, now: datetime) -> bool:
    if row["status"] != "failed" or not row["fail_streak"] or not row["last_attempt"]:
        return False
    try:
        last = datetime.strptime(row["last_attempt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False  # an unreadable stamp: try the file rather than strand it
    return now < last + backoff_delay(row["fail_streak"])


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class _Task:
    file_id: int
    source: str
    source_id: str
    name: str
    url: str
    size: int | None
    md5: str | None
    sha1: str | None
    relpath: str
    dest: Path
    ticket: int = -1  # its turn to start downloading (InFlight), set when submitted


@dataclass
class _Net:
    """What the download threads of one run share: per-host politeness, downloads in flight."""

    gate: Gate
    inflight: InFlight


@dataclass
class _Outcome:
    task: _Task
    status: str  # fetched | failed | skipped (its host is down: stays as it was)
    reason: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    size: int = 0
    adopted: bool = False
    unreachable: bool = False
    cause: str | None = None  # why, in a few words (for the run's summary line)


def _mismatch(task: _Task, size: int, hashes: dict[str, str]) -> str | None:
    if task.size is not None and size != task.size:
        return f"size mismatch: expected {task.size}, got {size}"
    for algo in ("md5", "sha1"):
        want = getattr(task, algo)
        if want and hashes[algo] != want.lower():
            return f"{algo} mismatch"
    return None


def _verify(task: _Task, path: Path) -> tuple[str | None, int, dict[str, str]]:
    size = path.stat().st_size
    hashes = hash_file(path, ("md5", "sha1", "sha256"))
    return _mismatch(task, size, hashes), size, hashes


def _quarantine(mirror: Mirror, task: _Task, part: Path, reason: str) -> None:
    """Keep the bad bytes for an operator to look at, never in the store."""
    try:
        quarantine(
            mirror.data_dir,
            task.source,
            task.source_id,
            task.name,
            part,
            {
                "url": task.url,
                "reason": reason,
                "expected": {"size": task.size, "md5": task.md5, "sha1": task.sha1},
            },
        )
    except (OSError, UnsafeName) as e:
        log.warning("fetch: cannot quarantine %s: %s", part, e)
        part.unlink(missing_ok=True)


def _run_one(
    mirror: Mirror,
    task: _Task,
    stop: threading.Event,
    reporter: Reporter,
    down: set[str],
    net: _Net,
) -> _Outcome:
    try:
        return _one(mirror, task, stop, reporter, down, net)
    finally:
        net.inflight.skip(task.ticket, task.source)  # no download needed (or failed early)


def _one(
    mirror: Mirror,
    task: _Task,
    stop: threading.Event,
    reporter: Reporter,
    down: set[str],
    net: _Net,
) -> _Outcome:
    part = task.dest.with_name(task.dest.name + ".part")
    host = urlsplit(task.url).netloc
    if host in down:
        return _Outcome(task, "skipped", "host unreachable")
    try:
        task.dest.parent.mkdir(parents=True, exist_ok=True)
        # Re-check after creating folders: a symlink planted in the store must not lead out.
        safe_join(mirror.data_dir, task.relpath)
        if task.dest.is_file() and (task.size is not None or task.md5 or task.sha1):
            bad, size, hashes = _verify(task, task.dest)
            if bad is None:
                return _Outcome(task, "fetched", None, hashes, size, adopted=True)
        for attempt in range(1, VERIFY_TRIES + 1):
            # Hashed while the bytes streamed in: the .part is not read again.
            # In plan order for the first try; a second try of a bad file goes straight on.
            ticket = task.ticket if attempt == 1 else None
            place = net.inflight.place(ticket, stop, lambda: host not in down, task.source)
            landed = download(task.url, part, task.size, stop, reporter.advance, net.gate, place)
            size, hashes = landed.size, landed.hashes
            bad = _mismatch(task, size, hashes)
            if bad is None:
                promote(part, task.dest)
                return _Outcome(task, "fetched", None, hashes, size)
            log.info("fetch: %s/%s: %s (try %d)", task.source_id, task.name, bad, attempt)
            if attempt < VERIFY_TRIES:
                part.unlink()  # start over: the bad bytes may be anywhere in the file
            else:
                _quarantine(mirror, task, part, bad)
        return _Outcome(task, "failed", bad)
    except GivenUp:
        return _Outcome(task, "skipped", "host unreachable")
    except Failed as e:
        return _Outcome(task, "failed", e.reason, unreachable=e.unreachable, cause=e.cause)
    except UnsafeName as e:
        return _Outcome(task, "failed", f"unsafe path: {e.message}")
    except OSError as e:
        if e.errno in DISK_FULL:
            # Not the file's fault, and every later file would hit it too: stop the run.
            return _Outcome(task, "disk_full", e.strerror or str(e))
        return _Outcome(task, "failed", f"local error: {e.strerror or e}")


def _candidates(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute(
        """SELECT f.id, f.item_id, f.name, f.size, f.md5, f.sha1, f.url, f.status,
                  f.fail_streak, f.last_attempt, i.source, i.source_id
           FROM files f JOIN items i ON i.id = f.item_id
           WHERE i.status = 'ok' AND f.status IN ('pending', 'failed')
             AND f.compact IS NOT 'derivative'  -- a compact tier fetches the derivative
           ORDER BY i.popularity DESC, i.source, i.source_id, f.name"""
    ).fetchall()


def fetch(
    mirror: Mirror,
    *,
    max_bytes: int | None = None,
    workers: int | None = None,
    reporter: Reporter | None = None,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Fetch pending (and previously failed) files; return counts.

    Keys: considered, fetched, adopted, bytes (added to the store), failed (downloads
    tried in this run that failed), refused, deferred (failed before, waiting out their
    backoff; `retry_failed` tries them anyway), skipped_budget, skipped_unreachable (left
    pending: their host stopped answering), store_bytes (after the run), max_bytes,
    failures (a sample of {source_id, name, reason}). `failed > 0` means exit 1.
    SourceUnreachable (exit 4) when a host never answered and nothing at all was fetched.
    """
    reporter = reporter or NullReporter()
    need_encoder(mirror.manifest)  # a compact tier without an encoder: exit 2, nothing fetched
    prepare(mirror)  # compact tiers fetch the source's smaller derivative, not the original
    db = mirror.db
    counts: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    stored = store_bytes(db)
    rows = _candidates(db)
    counts["considered"] = len(rows)
    held = budget_selection(mirror)
    if held is not None:
        # [mirror] budget: only the items the plan's selection holds (the one selection).
        rows = [r for r in rows if r["item_id"] in held.chosen]
        counts["outside_budget"] = counts["considered"] - len(rows)

    plan: list[_Task] = []
    planned_bytes = 0
    now = datetime.now(UTC)
    if not retry_failed:
        waiting = [r for r in rows if _deferred(r, now)]
        if waiting:
            counts["deferred"] = len(waiting)
            log.info("fetch: %d failed files wait out their backoff", len(waiting))
            skip = {r["id"] for r in waiting}
            rows = [r for r in rows if r["id"] not in skip]
    for n, r in enumerate(rows):
        try:
            relpath = mirror.store_relpath(r["source"], r["source_id"], r["name"])
        except UnsafeName as e:  # the name itself: refused for good
            _set_status(db, r["id"], "refused", f"unsafe name: {e.message}")
            counts["refused"] += 1
            failures.append({"source_id": r["source_id"], "name": r["name"], "reason": e.message})
            continue
        try:
            dest = mirror.abspath(relpath)
        except UnsafeName as e:  # something on disk (a symlink) leads out: fix and rerun
            _set_status(db, r["id"], "failed", f"unsafe path: {e.message}")
            counts["failed"] += 1
            failures.append({"source_id": r["source_id"], "name": r["name"], "reason": e.message})
            continue
        size = r["size"]
        if size is None and max_bytes is not None:
            size = source_size(r["url"] or "")
            if size is None:
                counts["skipped_budget"] += 1  # cannot be placed under a budget unseen
                continue
        if max_bytes is not None and stored + planned_bytes + size > max_bytes:
            counts["skipped_budget"] += len(rows) - n
            break
        planned_bytes += size or 0
        plan.append(
            _Task(
                r["id"],
                r["source"],
                r["source_id"],
                r["name"],
                r["url"] or "",
                r["size"],
                r["md5"],
                r["sha1"],
                relpath,
                dest,
            )
        )

    room = make_room(mirror, held, planned_bytes) if held is not None else {}
    stop = threading.Event()
    lanes = downloads_per_source(mirror, workers)
    workers = max(1, workers or min(sum(lanes.values()) or DEFAULT_DOWNLOADS, MAX_THREADS // 2))
    net = _Net(Gate(workers), InFlight(workers, lanes))
    disk_full: str | None = None
    down: set[str] = set()  # hosts given up on for this run
    why: dict[str, str] = {}  # host -> why it does not answer
    misses: Counter[str] = Counter()  # consecutive unanswered files per host
    origins = {urlsplit(t.url).netloc: _origin(t.url) for t in plan}
    recorder = Recorder(db)  # fetched rows in batches (record.py)
    if plan:  # no empty bar when there is nothing to do
        reporter.start("fetch", planned_bytes, "bytes")
    try:
        # Twice the threads of downloads in flight: while one thread fsyncs and renames a
        # file that has arrived, another's requests are already out.
        with ThreadPoolExecutor(max_workers=2 * workers, thread_name_prefix="fetch") as pool:
            queue = iter(plan)
            futures: set[Future[_Outcome]] = set()

            def refill() -> None:
                # A bounded queue in plan order: most popular first, memory flat.
                while len(futures) < 3 * workers and not stop.is_set():
                    task = next(queue, None)
                    if task is None:
                        return
                    task.ticket = net.inflight.ticket(task.source)
                    futures.add(pool.submit(_run_one, mirror, task, stop, reporter, down, net))

            try:
                refill()
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    futures.difference_update(done)
                    refill()
                    for fut in done:
                        try:
                            outcome = fut.result()
                        except Stopped:
                            continue  # stopped for a full disk: the file stays as it was
                        if outcome.status == "disk_full":
                            disk_full = outcome.reason
                            stop.set()
                            continue
                        _record(mirror, recorder, outcome, counts, failures)
                        host = urlsplit(outcome.task.url).netloc
                        misses[host] = misses[host] + 1 if outcome.unreachable else 0
                        if outcome.unreachable:
                            why[host] = outcome.cause or "no answer"
                        if misses[host] >= UNREACHABLE_AFTER and host not in down:
                            log.warning(
                                "fetch: cannot reach %s (%s); its files wait for the next run",
                                _origin(outcome.task.url),
                                why[host],
                            )
                            down.add(host)
            except BaseException:
                # Interrupted: workers stop between chunks; .part files stay for resuming.
                stop.set()
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        recorder.flush()  # even when interrupted: what is in the store is recorded
        reporter.finish()
    if disk_full is not None:
        left = len(plan) - counts["fetched"] - counts["failed"]
        raise WorkFailed(
            f"fetch stopped: {disk_full} under {mirror.store_dir} after {counts['fetched']}"
            f" files; {left} wait for the next run (free space, or pass --max-bytes)"
        )
    if down and not counts["fetched"]:
        hosts = "; ".join(f"{origins[h]} ({why[h]})" for h in sorted(down))
        raise SourceUnreachable(
            f"cannot reach {hosts}: nothing fetched,"
            f" {counts['skipped_unreachable']} files left pending"
        )
    result: dict[str, Any] = {
        k: counts[k]
        for k in (
            "considered",
            "fetched",
            "adopted",
            "bytes",
            "failed",
            "refused",
            "deferred",
            "skipped_budget",
            "skipped_unreachable",
        )
    }
    result["store_bytes"] = store_bytes(db)
    result["max_bytes"] = max_bytes
    if held is not None:
        result["outside_budget"] = counts["outside_budget"]
        result["budget"] = budget_report(held, result["store_bytes"]) | room
    result["failures"] = failures[:MAX_LISTED_FAILURES]
    return result


def downloads_per_source(mirror: Mirror, workers: int | None = None) -> dict[str, int]:
    """Downloads in flight at most per catalogue source (`ia`, `fma`): the manifest's
    `downloads` (the smallest, for two sources of one kind), within `workers` if given."""
    lanes: dict[str, int] = {}
    for src in mirror.manifest.sources:
        lanes[src.kind] = min(lanes.get(src.kind, src.downloads), src.downloads)
    return {k: min(n, workers) if workers else n for k, n in lanes.items()}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _set_status(
    db: sqlite3.Connection,
    file_id: int,
    status: str,
    reason: str | None,
    *,
    backoff: bool = False,
) -> None:
    """Record a file's new status; `backoff`: a failure that counts towards its backoff.

    A file that was pending (new, or changed at the source since) starts a new streak."""
    with transaction(db):
        db.execute(
            """UPDATE files SET status = ?, reason = ?, attempts = attempts + 1,
                   fail_streak = (CASE WHEN status = 'failed' THEN fail_streak ELSE 0 END) + ?,
                   last_attempt = ? WHERE id = ?""",
            (status, reason, int(backoff), utcnow(), file_id),
        )


def _record(
    mirror: Mirror,
    recorder: Recorder,
    o: _Outcome,
    counts: Counter[str],
    failures: list[dict[str, str]],
) -> None:
    t = o.task
    if o.status == "skipped":
        counts["skipped_unreachable"] += 1
        return
    if o.status == "fetched":
        recorder.fetched(t.file_id, t.relpath, o.size, o.hashes)
        counts["fetched"] += 1
        counts["adopted"] += o.adopted
        counts["bytes"] += o.size
    else:
        # A host that never answered is not the file's fault: no backoff for that.
        _set_status(mirror.db, t.file_id, "failed", o.reason, backoff=not o.unreachable)
        counts["failed"] += 1
        failures.append({"source_id": t.source_id, "name": t.name, "reason": o.reason or "?"})
        log.warning("fetch: %s/%s failed: %s", t.source_id, t.name, o.reason)
