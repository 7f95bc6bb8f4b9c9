"""`check`: a licence verdict for every fetched file of the catalogue (DESIGN §5).

A file already judged is read again only when its bytes (size, mtime), its item's declared
licence or the policy changed. Conflict and unreadable files are moved, never deleted, to
`quarantine/<source>/<item>/<file>` beside `<file>.reason.json`; the catalogue records where.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import stat
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccmirror.catalogue import checking
from ccmirror.catalogue.db import transaction, utcnow
from ccmirror.catalogue.states import files_back_to_pending, files_judged
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import fsync_dir
from ccmirror.licence import Declared, judge_declared
from ccmirror.licence.artwork import artwork_verdict
from ccmirror.licence.normalise import by_id
from ccmirror.licence.policy import NO_LICENCE, Policy
from ccmirror.licence.recover import recover, restore_from_pack
from ccmirror.licence.tags import TagReport, read_tags_apart, read_tags_batch
from ccmirror.licence.verdict import Verdict, decide
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.quarantine import quarantine
from ccmirror.recording import fill_sql, merge_tags

log = logging.getLogger("ccmirror.licence")

QUARANTINED = ("conflict", "unreadable")
R_MISSING = "file missing from store"
BATCH = 100
# Most files read per worker round trip: a round trip costs this process ~0.3 ms, 20 us a
# file at 16 (bench/licence.py), 8 at 64; fewer where that keeps every thread busy.
CHUNK = 64
WORKERS = min(4, os.cpu_count() or 1)
# Names the quick unchanged test will not touch (fsutil.safe_relpath's refusals, as a regex).
_UNSAFE = re.compile(r"^/|\\|[\x00-\x1f\x7f-\x9f]|(?:^|/)\.{0,2}(?:/|$)")


def chunk_size(files: int, workers: int = WORKERS) -> int:
    """Files per round trip for `files` files: CHUNK, or fewer so that each of the
    4 threads per worker has a chunk."""
    return max(1, min(CHUNK, -(-files // (4 * max(1, workers)))))


def _declared(row: sqlite3.Row, mirror: Mirror, policy: Policy) -> Declared:
    d = judge_declared(row["licence_url"], row["licence_title"], mirror.manifest.licence)
    if d.reason == NO_LICENCE and row["declared_licence_id"]:
        # A source that stored only the normalised id (no URL or title to re-read).
        lic = by_id(row["declared_licence_id"])
        if lic is not None:
            reason = policy.judge(lic.id)
            return Declared(lic.id, lic.url, reason is None, reason)
    return d


def _source_evidence(row: sqlite3.Row) -> list[dict[str, str]]:
    out = []
    if row["licence_url"]:
        out.append({"tag": f"{row['source']}:licence_url", "value": row["licence_url"]})
    if row["licence_title"]:
        out.append({"tag": f"{row['source']}:licence_title", "value": row["licence_title"]})
    return out


def _move_to_quarantine(mirror: Mirror, row: sqlite3.Row, src: Path, v: Verdict) -> str:
    """Reason file first, then the bytes (a rename inside the data dir); returns the rel path."""
    dest = quarantine(
        mirror.data_dir,
        row["source"],
        row["source_id"],
        row["name"],
        src,
        {
            "file": row["name"],
            "source": row["source"],
            "source_id": row["source_id"],
            "store_path": row["store_path"],
            "verdict": v.verdict,
            "reason": v.reason,
            "error": v.error,
            "licence_id": v.licence_id,
            "evidence": v.evidence,
        },
    )
    return str(dest.relative_to(mirror.data_dir))


class _Run:
    def __init__(self, mirror: Mirror, policy: Policy) -> None:
        self.mirror, self.policy = mirror, policy
        self.fingerprint = policy.fingerprint()
        self.declared: dict[tuple[Any, ...], tuple[Declared, str]] = {}  # items share few
        self.base = os.path.join(mirror.data_dir, "")
        self.read: dict[str, tuple[int, int, TagReport]] = {}  # prefetched, by abs path
        self.pending: list[tuple[Any, ...]] = []
        self.filled: list[tuple[Any, ...]] = []
        self.lock = threading.Lock()  # workers share the counts and the pending batch
        self.counts: dict[str, Any] = {
            "checked": 0,
            "unchanged": 0,
            "quarantined": 0,
            "missing": 0,
            "restored": 0,
            "failed": 0,
            "run": {},
        }

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def flush(self) -> None:
        if self.pending:
            with transaction(self.mirror.db) as db:
                files_judged(db, self.pending)  # with the filled fields: one transaction
                db.executemany(fill_sql(), self.filled)
            self.pending.clear()
            self.filled.clear()

    def record(self, row: sqlite3.Row, v: Verdict, size: int | None, mtime: int | None,
               key: str, qpath: str | None) -> None:  # fmt: skip
        # The file's tags and stream fill what the source left empty; a tag that
        # disagrees with the source is noted in the evidence, the source's value kept.
        filled, notes = merge_tags(row, v.recording)
        evidence = v.evidence + notes
        values = (v.verdict, v.licence_id, v.licence_url, v.reason, json.dumps(evidence),
                  v.isrc, v.mbid, utcnow(), size, mtime, key, qpath, row["id"])  # fmt: skip
        with self.lock:
            self.pending.append(values)
            self.filled.append((*filled, row["id"]))
            run = self.counts["run"]
            run[v.verdict] = run.get(v.verdict, 0) + 1
            self.counts["checked"] += 1
            if len(self.pending) >= BATCH:
                self.flush()

    def prefetch(self, rows: list[sqlite3.Row]) -> None:
        """Read a chunk's store files in one worker round trip (the per-file cost of a
        process hop would otherwise eat the time of reading a small file)."""
        paths = [
            self.base + r["store_path"]
            for r in rows
            if r["store_path"] and r["kind"] == "audio" and not _UNSAFE.search(r["store_path"])
        ]  # images have no tags to read
        if paths:
            self.read.update(read_tags_batch(paths))

    def judge(self, row: sqlite3.Row, path: Path, decl: Declared, st: os.stat_result) -> Verdict:
        if row["kind"] == "artwork":  # no tags to read: the item's licence, declared
            return artwork_verdict(
                path,
                size=row["size"],
                declared_id=decl.licence_id,
                declared_reason=decl.reason,
                require_embedded=self.policy.require_embedded,
                source_evidence=_source_evidence(row),
            )
        size = st.st_size
        hit = self.read.pop(os.path.abspath(path), None)
        if row["size"] is not None and row["size"] != size:
            # Not the bytes the source listed: unreadable, whatever the tags say.
            tags = TagReport(error=f"size {size} differs from catalogue size {row['size']}")
            tags.evidence.append({"tag": "catalogue:size", "value": tags.error})
        elif hit is not None and hit[:2] == (size, st.st_mtime_ns):
            tags = hit[2]  # read before this stat, and the bytes have not changed since
        else:
            tags = read_tags_apart(path)
        return decide(
            tags,
            self.policy,
            declared_id=decl.licence_id,
            declared_reason=decl.reason,
            source=True,
            source_evidence=_source_evidence(row),
        )

    def decl(self, row: sqlite3.Row) -> tuple[Declared, str]:
        """The item's declared licence judged once per run per distinct declaration, and
        the key a verdict is valid for."""
        dkey = (row["licence_url"], row["licence_title"], row["declared_licence_id"])
        hit = self.declared.get(dkey)
        if hit is None:
            d = _declared(row, self.mirror, self.policy)
            hit = self.declared[dkey] = (d, f"{self.fingerprint}|{d.licence_id}|{d.reason}")
        return hit

    def unchanged(self, row: sqlite3.Row) -> bool:
        """A no-op run's common case, decided in the main thread with one lstat: a judged
        regular file whose size, mtime and key are as recorded. Anything else (and any
        name that is not plainly safe) goes the full way."""
        if row["verdict"] is None or row["checked_key"] != self.decl(row)[1]:
            return False
        sp, qp = row["store_path"], row["quarantine_path"]
        if not sp or _UNSAFE.search(sp) or (qp and _UNSAFE.search(qp)):
            return False
        try:
            st = os.lstat(self.base + sp)
        except FileNotFoundError:
            st = None
        except OSError:
            return False
        if qp is not None:
            if st is not None or row["verdict"] not in QUARANTINED:
                return False  # bytes back in the store: judged again
            try:
                st = os.lstat(self.base + qp)
            except OSError:
                return False
        return (
            st is not None
            and stat.S_ISREG(st.st_mode)
            and row["checked_size"] == st.st_size
            and row["checked_mtime_ns"] == st.st_mtime_ns
        )

    def one(self, row: sqlite3.Row) -> None:
        decl, key = self.decl(row)
        try:
            store = self.mirror.abspath(row["store_path"]) if row["store_path"] else None
        except UnsafeName as e:
            log.error("file %s: %s", row["id"], e)
            self.count("failed")
            return
        if store is not None and store.is_file():
            st = store.stat()
            if (
                row["verdict"] is not None
                and row["checked_size"] == st.st_size
                and row["checked_mtime_ns"] == st.st_mtime_ns
                and row["checked_key"] == key
                and row["quarantine_path"] is None
            ):
                self.count("unchanged")
                return
            v = self.judge(row, store, decl, st)
            qpath = None
            size, mtime = st.st_size, st.st_mtime_ns
            if v.verdict in QUARANTINED:
                try:
                    qpath = _move_to_quarantine(self.mirror, row, store, v)
                    self.count("quarantined")
                except (OSError, UnsafeName) as e:
                    log.error("cannot quarantine %s: %s", store, e)
                    self.count("failed")
                    size = mtime = None  # not publishable either way; retried next run
            self.record(row, v, size, mtime, key, qpath)
            return
        try:
            if row["quarantine_path"]:
                qrel = row["quarantine_path"]
                qabs: Path | None = self.mirror.abspath(qrel)
            else:
                qabs = recover(self.mirror, row)
                qrel = str(qabs.relative_to(self.mirror.data_dir)) if qabs else ""
        except UnsafeName as e:
            log.error("file %s: %s", row["id"], e)
            self.count("failed")
            return
        if qabs is not None and qabs.is_file():
            # Quarantined earlier (or moved just before a crash): judged where it lies.
            st = qabs.stat()
            if (
                row["quarantine_path"]
                and row["verdict"] in QUARANTINED
                and row["checked_key"] == key
                and row["checked_size"] == st.st_size
                and row["checked_mtime_ns"] == st.st_mtime_ns
            ):
                self.count("unchanged")
                return
            v = self.judge(row, qabs, decl, st)
            if v.verdict not in QUARANTINED and store is not None:
                store.parent.mkdir(parents=True, exist_ok=True)
                os.replace(qabs, store)  # policy or source changed: back into the store
                fsync_dir(store.parent)
                self.record(row, v, st.st_size, st.st_mtime_ns, key, None)
            else:
                self.record(row, v, st.st_size, st.st_mtime_ns, key, qrel)
            return
        # The catalogue says fetched but the bytes are gone: a sealed pack may still hold the
        # same verified bytes (a hard link); otherwise the next fetch gets them again.
        if store is not None and restore_from_pack(self.mirror, row, store):
            log.warning("fetched file missing: %s; restored from its pack", row["store_path"])
            self.count("restored")
            self.one(row)
            return
        self.count("missing")
        log.warning("fetched file missing: %s; the next fetch gets it again", row["store_path"])
        with self.lock:
            files_back_to_pending(self.mirror.db, [(R_MISSING, row["id"])])


def totals(db: sqlite3.Connection) -> dict[str, Any]:
    """Verdicts and licences of every fetched file of an ok item."""
    verdicts: dict[str, int] = {}
    licences: dict[str, dict[str, int]] = {}
    for r in db.execute(
        "SELECT coalesce(f.verdict, 'unchecked') AS v, coalesce(f.licence_id, '(none)') AS l,"
        " count(*) AS n FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'fetched' AND i.status = 'ok' GROUP BY 1, 2 ORDER BY 2, 1"
    ):
        verdicts[r["v"]] = verdicts.get(r["v"], 0) + r["n"]
        licences.setdefault(r["l"], {})[r["v"]] = r["n"]
    return {"verdicts": verdicts, "licences": licences}


@dataclass
class CheckPlan:
    """What a check run judges: `todo` (read again), `unchanged` (settled as recorded)."""

    todo: array[int] = field(default_factory=lambda: array("q"))  # file ids, in id order
    unchanged: int = 0
    policy: Policy | None = None
    todo_bytes: int = 0


def plan_check(mirror: Mirror) -> CheckPlan:
    """The fetched files whose verdict must be (re)decided; reads the catalogue and lstats
    the store, writes nothing. Unchanged files (size, mtime, key as recorded) are settled
    with one lstat each."""
    policy = Policy.from_config(mirror.manifest.licence)
    probe = _Run(mirror, policy)
    # Streamed, and only the ids of the files to judge are kept: a row is ~1 KiB, and a
    # million fetched files never judged made a dry run hold every one of them.
    plan, seen = CheckPlan(policy=policy), 0
    for row in checking.fetched(mirror.db):
        seen += 1
        if not probe.unchanged(row):
            plan.todo.append(row["id"])
            plan.todo_bytes += row["size"] or 0
    plan.unchanged = seen - len(plan.todo)
    return plan


def check(
    mirror: Mirror, *, reporter: Reporter | None = None, workers: int = WORKERS
) -> dict[str, Any]:
    """Decide the verdict of every fetched file; returns counts (this run and in total)."""
    return run_check(mirror, plan_check(mirror), reporter=reporter, workers=workers)


def run_check(
    mirror: Mirror, plan: CheckPlan, *, reporter: Reporter | None = None, workers: int = WORKERS
) -> dict[str, Any]:
    """Judge the files of `plan`: `chunk_size` at a time through `workers` threads, which have
    the silent worker processes of `licence.decode` read them; the catalogue is written in
    batches, each file's row only after its bytes are where it says.
    """
    reporter = reporter or NullReporter()
    policy = plan.policy or Policy.from_config(mirror.manifest.licence)
    run = _Run(mirror, policy)
    reporter.start("check", total=len(plan.todo) + plan.unchanged, unit="files")
    run.counts["unchanged"] += plan.unchanged
    reporter.advance(plan.unchanged)
    ids = plan.todo

    def some(chunk: list[sqlite3.Row]) -> None:
        run.prefetch(chunk)
        for row in chunk:
            run.one(row)
            reporter.advance()

    try:
        if ids:
            size = chunk_size(len(ids), workers)
            # Four threads per worker process: while some judge and record their batch (a
            # quarantine waits for several fsyncs), the worker is already reading another's
            # (never idle between batches). bench/licence.py: 2 per worker left the
            # workers waiting behind quarantines.
            threads = 4 * max(1, workers)
            with ThreadPoolExecutor(threads, thread_name_prefix="check") as pool:
                for start in range(0, len(ids), 64 * size):  # bounded: rows read per group
                    with run.lock:
                        rows = checking.rows_of(mirror.db, ids[start : start + 64 * size])
                    list(pool.map(some, [rows[i : i + size] for i in range(0, len(rows), size)]))
    finally:
        with run.lock:
            run.flush()
        reporter.finish()
    return {**run.counts, **totals(mirror.db), "require_embedded": policy.require_embedded}
