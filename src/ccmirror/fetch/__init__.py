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

The stage is a plan and a run: `plan_fetch` (ccmirror.fetch.plan, read-only) decides which
files and how many bytes; `run_fetch` carries out exactly that plan. `max_bytes` caps what
one run downloads: the first file that would pass it stops the plan; it and everything
after stay pending (`skipped_budget`) for the next run, which may fetch `max_bytes` more;
the store as a whole is capped by `[mirror] budget` (the plan's selection). Each source has its manifest's `downloads` in flight at once (8 by
default; 16 at most to one host), `workers` at most in all;
the catalogue is written only by the calling thread, fetched files in batches.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ccmirror.catalogue.artwork import artwork_summary
from ccmirror.catalogue.queries import store_bytes
from ccmirror.catalogue.states import file_attempted
from ccmirror.errors import SourceUnreachable, UnsafeName, WorkFailed
from ccmirror.fetch.plan import FetchPlan, FetchTask, backoff_delay, plan_fetch
from ccmirror.fetch.polite import Gate, GivenUp, InFlight, Unreachable, downloads_per_source
from ccmirror.fetch.record import Recorder
from ccmirror.fetch.result import FetchResult
from ccmirror.fetch.transport import Failed, Stopped, download
from ccmirror.fsutil import hash_file, promote, safe_join
from ccmirror.manifest import DEFAULT_DOWNLOADS
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.quarantine import quarantine

__all__ = ["FetchPlan", "FetchResult", "backoff_delay", "fetch", "plan_fetch", "run_fetch"]

log = logging.getLogger("ccmirror.fetch")
MAX_THREADS = 64  # download threads at most (two per download in flight)
VERIFY_TRIES = 2  # a mismatch earns one more full download before the file is failed
# Consecutive files that never got an answer from a host before its other files are left
# pending for this run (a host that is down must not cost minutes of backoff per file).
UNREACHABLE_AFTER = 5
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class _Net:
    """What the download threads of one run share: per-host politeness, downloads in flight."""

    gate: Gate
    inflight: InFlight
    hosts: Unreachable  # given up for the run


@dataclass
class _Outcome:
    task: FetchTask
    status: str  # fetched | failed | skipped (its host is down: stays as it was)
    reason: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    size: int = 0
    adopted: bool = False
    unreachable: bool = False
    cause: str | None = None  # why, in a few words (for the run's summary line)


def _mismatch(task: FetchTask, size: int, hashes: dict[str, str]) -> str | None:
    if task.size is not None and size != task.size:
        return f"size mismatch: expected {task.size}, got {size}"
    for algo in ("md5", "sha1"):
        want = getattr(task, algo)
        if want and hashes[algo] != want.lower():
            return f"{algo} mismatch"
    return None


def _verify(task: FetchTask, path: Path) -> tuple[str | None, int, dict[str, str]]:
    size = path.stat().st_size
    hashes = hash_file(path, ("md5", "sha1", "sha256"))
    return _mismatch(task, size, hashes), size, hashes


def _quarantine(mirror: Mirror, task: FetchTask, part: Path, reason: str) -> None:
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
    task: FetchTask,
    stop: threading.Event,
    reporter: Reporter,
    net: _Net,
) -> _Outcome:
    try:
        outcome = _one(mirror, task, stop, reporter, net)
    finally:
        net.inflight.skip(task.ticket, task.source)  # no download needed (or failed early)
    if outcome.status in ("fetched", "failed") and not outcome.unreachable:
        net.hosts.answered(urlsplit(task.url).netloc)
    return outcome


@contextmanager
def _counted(place: AbstractContextManager[object], net: _Net, url: str) -> Iterator[None]:
    """`place`, with a download that never got an answer counted before it lets go."""
    with place:
        try:
            yield
        except Failed as e:
            if e.unreachable:
                net.hosts.missed(urlsplit(url).netloc, e.cause, _origin(url))
            raise


def _one(
    mirror: Mirror,
    task: FetchTask,
    stop: threading.Event,
    reporter: Reporter,
    net: _Net,
) -> _Outcome:
    part = task.dest.with_name(task.dest.name + ".part")
    host = urlsplit(task.url).netloc
    if host in net.hosts:
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
            place = net.inflight.place(ticket, stop, lambda: host not in net.hosts, task.source)
            place = _counted(place, net, task.url)
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


def fetch(
    mirror: Mirror,
    *,
    max_bytes: int | None = None,
    workers: int | None = None,
    reporter: Reporter | None = None,
    retry_failed: bool = False,
) -> FetchResult:
    """Plan and run one fetch: pending (and previously failed) files, most popular first.

    Counts: considered, fetched, adopted, bytes (downloaded in this run), failed (downloads
    tried in this run that failed), refused, deferred (failed before, waiting out their
    backoff; `retry_failed` tries them anyway), skipped_budget (past `max_bytes`, this
    run's cap), skipped_unreachable (left pending: their host stopped answering),
    store_bytes (after the run), max_bytes, failures (a sample of {source_id, name, reason}).
    SourceUnreachable (exit 4) when a host never answered and nothing at all was fetched.
    """
    if mirror.manifest.tiers.compact_tiers:
        # Imported here: without a compact tier both are no-ops, and their imports (the
        # licence check, the encoder, the decode workers) are a third of fetch's start-up.
        from ccmirror.compact.run import need_encoder, prepare

        need_encoder(mirror.manifest)  # without an encoder: exit 2, nothing fetched
        prepare(mirror)  # compact tiers fetch the source's smaller derivative, not the original
    plan = plan_fetch(mirror, max_bytes=max_bytes, retry_failed=retry_failed)
    return run_fetch(mirror, plan, workers=workers, reporter=reporter)


def run_fetch(
    mirror: Mirror,
    plan: FetchPlan,
    *,
    workers: int | None = None,
    reporter: Reporter | None = None,
) -> FetchResult:
    """Carry out `plan` exactly: record its refusals, download its tasks in order."""
    reporter = reporter or NullReporter()
    result = FetchResult(
        considered=plan.considered,
        deferred=plan.deferred,
        skipped_budget=plan.skipped_budget,
        max_bytes=plan.max_bytes,
    )
    if plan.deferred:
        log.info("fetch: %d failed files wait out their backoff", plan.deferred)
    for r in plan.refusals:
        _set_status(mirror.db, r.file_id, r.status, r.reason)
        if r.status == "refused":
            result.refused += 1
        else:
            result.failed += 1
        result.failures.append({"source_id": r.source_id, "name": r.name, "reason": r.message})

    # [mirror] budget: files the selection no longer holds leave the store to make room.
    room: dict[str, int] = {}
    if plan.budget is not None:
        from ccmirror.budget import make_room  # only under a budget (the ranking's imports)

        room = make_room(mirror, plan.budget, plan.bytes)
    lanes = downloads_per_source(mirror, workers)
    workers = max(1, workers or min(sum(lanes.values()) or DEFAULT_DOWNLOADS, MAX_THREADS // 2))
    run = _Run(mirror, plan.tasks, workers, lanes, reporter, result)
    if plan.tasks:  # no empty bar when there is nothing to do
        reporter.start("fetch", plan.bytes, "bytes")
    try:
        run.download_all()
    finally:
        run.recorder.flush()  # even when interrupted: what is in the store is recorded
        reporter.finish()
    if run.disk_full is not None:
        left = len(plan.tasks) - result.fetched - result.failed
        raise WorkFailed(
            f"fetch stopped: {run.disk_full} under {mirror.store_dir} after {result.fetched}"
            f" files; {left} wait for the next run (free space, or pass --max-bytes)"
        )
    down = run.net.hosts
    if down.down and not result.fetched:
        origins = {urlsplit(t.url).netloc: _origin(t.url) for t in plan.tasks}
        hosts = "; ".join(f"{origins[h]} ({down.why[h]})" for h in sorted(down.down))
        raise SourceUnreachable(
            f"cannot reach {hosts}: nothing fetched,"
            f" {result.skipped_unreachable} files left pending"
        )
    result.store_bytes = store_bytes(mirror.db)
    result.artwork = artwork_summary(mirror.db)  # what is fetched of it, what skipped, why
    if plan.budget is not None:
        from ccmirror.budget import budget_report

        result.outside_budget = plan.outside_budget
        result.budget = budget_report(plan.budget, result.store_bytes) | room
    return result


class _Run:
    """The download loop of one run: a bounded queue in plan order on worker threads."""

    def __init__(
        self,
        mirror: Mirror,
        tasks: list[FetchTask],
        workers: int,
        lanes: dict[str, int],
        reporter: Reporter,
        result: FetchResult,
    ) -> None:
        self.mirror, self.tasks, self.workers = mirror, tasks, workers
        self.reporter, self.result = reporter, result
        self.stop = threading.Event()
        self.disk_full: str | None = None
        self.net = _Net(Gate(workers), InFlight(workers, lanes), Unreachable(UNREACHABLE_AFTER))
        self.recorder = Recorder(mirror.db)  # fetched rows in batches (record.py)

    def download_all(self) -> None:
        # Twice the threads of downloads in flight: while one thread fsyncs and renames a
        # file that has arrived, another's requests are already out.
        with ThreadPoolExecutor(max_workers=2 * self.workers, thread_name_prefix="fetch") as pool:
            queue = iter(self.tasks)
            futures: set[Future[_Outcome]] = set()

            def refill() -> None:
                # A bounded queue in plan order: most popular first, memory flat.
                while len(futures) < 3 * self.workers and not self.stop.is_set():
                    task = next(queue, None)
                    if task is None:
                        return
                    task.ticket = self.net.inflight.ticket(task.source)
                    futures.add(
                        pool.submit(
                            _run_one,
                            self.mirror,
                            task,
                            self.stop,
                            self.reporter,
                            self.net,
                        )
                    )

            try:
                refill()
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    futures.difference_update(done)
                    refill()
                    for fut in done:
                        self._done(fut)
            except BaseException:
                # Interrupted: workers stop between chunks; .part files stay for resuming.
                self.stop.set()
                for fut in futures:
                    fut.cancel()
                raise

    def _done(self, fut: Future[_Outcome]) -> None:
        try:
            outcome = fut.result()
        except Stopped:
            return  # stopped for a full disk: the file stays as it was
        if outcome.status == "disk_full":
            self.disk_full = outcome.reason
            self.stop.set()
            return
        _record(self.mirror, self.recorder, outcome, self.result)


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
    """Record a file's new status; `backoff`: a failure that counts towards its backoff."""
    file_attempted(db, file_id, status, reason, backoff=backoff)


def _record(mirror: Mirror, recorder: Recorder, o: _Outcome, result: FetchResult) -> None:
    t = o.task
    if o.status == "skipped":
        result.skipped_unreachable += 1
        return
    if o.status == "fetched":
        recorder.fetched(t.file_id, t.relpath, o.size, o.hashes)
        result.fetched += 1
        result.adopted += o.adopted
        result.bytes += o.size
    else:
        # A host that never answered is not the file's fault: no backoff for that.
        _set_status(mirror.db, t.file_id, "failed", o.reason, backoff=not o.unreachable)
        result.failed += 1
        result.failures.append(
            {"source_id": t.source_id, "name": t.name, "reason": o.reason or "?"}
        )
        log.warning("fetch: %s/%s failed: %s", t.source_id, t.name, o.reason)
