"""The fetch stage's plan: which files one run downloads, and how many bytes (read-only).

`plan_fetch` reads the catalogue and never writes; `ccmirror.fetch.run_fetch` carries out
exactly the plan it is given, and `sync --dry-run` reports the same plan. `select_files`
is the one place that decides what a run takes: most popular first, failed files waiting
out their backoff left out, and at most `max_bytes` downloaded in this run (a cap per run:
the next run fetches up to `max_bytes` more).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccmirror.catalogue.artwork import artwork_summary
from ccmirror.catalogue.fetching import fetch_candidates
from ccmirror.catalogue.queries import store_bytes
from ccmirror.errors import UnsafeName
from ccmirror.fetch.transport import source_size
from ccmirror.mirror import Mirror

if TYPE_CHECKING:  # the budget's modules load only under a budget
    from ccmirror.tiers import Selection

__all__ = [
    "FetchPlan",
    "FetchTask",
    "Refusal",
    "backoff_delay",
    "plan_fetch",
    "select_files",
]
# `select_files` is the one selection: `[mirror] budget` narrows its candidates to the items
# `tiers.select` holds; `max_bytes` caps the run.

BACKOFF_FIRST = timedelta(hours=1)
BACKOFF_MAX = timedelta(days=7)


def backoff_delay(fail_streak: int) -> timedelta:
    """How long a file that failed `fail_streak` runs in a row waits: 0, 1 h, 2 h ... 7 d."""
    if fail_streak <= 1:
        return timedelta(0)  # one failure may be a passing fault: the next run tries again
    if fail_streak > 12:  # 2**10 h is past the cap already; no huge powers
        return BACKOFF_MAX
    return min(BACKOFF_FIRST * 2 ** (fail_streak - 2), BACKOFF_MAX)


def deferred(row: sqlite3.Row, now: datetime) -> bool:
    """A failed file still waiting out its backoff."""
    if row["status"] != "failed" or not row["fail_streak"] or not row["last_attempt"]:
        return False
    try:
        last = datetime.strptime(row["last_attempt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False  # an unreadable stamp: try the file rather than strand it
    return now < last + backoff_delay(row["fail_streak"])


@dataclass
class FetchTask:
    file_id: int | None  # None: a derivative a dry run expects `prepare` to record
    source: str
    source_id: str
    name: str
    url: str
    size: int | None
    md5: str | None
    sha1: str | None
    relpath: str
    dest: Path
    ticket: int = -1  # its turn to start downloading (fetch.polite.InFlight), set by the run


@dataclass
class Refusal:
    """A file the plan cannot download; the run records `status` with `reason`."""

    file_id: int
    source_id: str
    name: str
    status: str  # refused (the name itself, for good) | failed (something on disk; rerun)
    reason: str
    message: str


@dataclass
class FetchPlan:
    """What one fetch run will do. `bytes` counts the tasks of known size."""

    tasks: list[FetchTask] = field(default_factory=list)
    bytes: int = 0
    considered: int = 0
    deferred: int = 0
    skipped_budget: int = 0
    unknown_size: int = 0  # sizes neither the source nor (in a dry run) a probe gave
    refusals: list[Refusal] = field(default_factory=list)
    max_bytes: int | None = None
    store_bytes: int = 0  # fetched bytes before the run
    pending_files: int = 0
    pending_bytes: int = 0
    failed_files: int = 0  # failed before, of live items (retried or deferred)
    probed: bool = True  # False: a dry run, no source asked for a size
    budget: Selection | None = None  # [mirror] budget's selection (tiers.select), if set
    outside_budget: int = 0
    artwork: dict[str, Any] | None = None  # cover images as the run would leave them

    def to_dict(self) -> dict[str, Any]:
        """The keys the real run reports, with the values it would produce."""
        failed = sum(1 for r in self.refusals if r.status == "failed")
        out: dict[str, Any] = {
            "considered": self.considered,
            "fetched": len(self.tasks),
            "adopted": 0,
            "bytes": self.bytes,
            "failed": failed,
            "refused": len(self.refusals) - failed,
            "deferred": self.deferred,
            "skipped_budget": self.skipped_budget,
            "skipped_unreachable": 0,
            "store_bytes": self.store_bytes + self.bytes,
            "max_bytes": self.max_bytes,
            "failures": [
                {"source_id": r.source_id, "name": r.name, "reason": r.message}
                for r in self.refusals
            ],
            # Earlier dry-run keys, kept (additive).
            "pending_files": self.pending_files,
            "pending_bytes": self.pending_bytes,
            "would_fetch_files": len(self.tasks),
            "would_fetch_bytes": self.bytes,
            "unknown_size_files": self.unknown_size,
            "failed_files": self.failed_files,
        }
        notes = ["a prediction: downloads that fail or do not verify are not foreseen"]
        if self.unknown_size:
            notes.append(
                f"{self.unknown_size} files of unknown size"
                + (" (the run asks the source; a dry run does not)" if not self.probed else "")
            )
        if self.artwork is not None:
            out["artwork"] = self.artwork
        if self.budget is not None:
            from ccmirror.budget import budget_report

            out["outside_budget"] = self.outside_budget
            out["budget"] = budget_report(self.budget, self.store_bytes + self.bytes)
        out["note"] = "; ".join(notes)
        return out


def plan_fetch(
    mirror: Mirror,
    *,
    max_bytes: int | None = None,
    retry_failed: bool = False,
    probe: bool = True,
    derivatives: dict[int, sqlite3.Row] | None = None,
) -> FetchPlan:
    """Read the catalogue and decide what a fetch run downloads; writes nothing.

    `probe=False` (a dry run) asks no source anything: a file of unknown size under a
    `max_bytes` cap is counted in `unknown_size` and left out. `derivatives` (a dry run:
    original id -> the derivative compact's `prepare` would choose first) fetches those
    instead of the originals, as the run does once `prepare` has recorded them (their
    tasks have no file id yet).
    """
    db = mirror.db
    rows = fetch_candidates(db)
    if derivatives:
        rows = _derivatives_instead(rows, derivatives)
    plan = FetchPlan(max_bytes=max_bytes, store_bytes=store_bytes(db), probed=probe)
    plan.considered = len(rows)
    if mirror.manifest.budget is not None:
        from ccmirror.budget import budget_selection

        plan.budget = budget_selection(mirror)
    if plan.budget is not None:
        # [mirror] budget: only the items the plan's selection holds (the one selection).
        rows = [r for r in rows if r["item_id"] in plan.budget.chosen]
        plan.outside_budget = plan.considered - len(rows)
    pending = [r for r in rows if r["status"] == "pending"]
    plan.pending_files = len(pending)
    plan.pending_bytes = sum(r["size"] or 0 for r in pending)
    plan.failed_files = len(rows) - len(pending)
    if not retry_failed:
        now = datetime.now(UTC)
        waiting = {r["id"] for r in rows if deferred(r, now)}
        plan.deferred = len(waiting)
        rows = [r for r in rows if r["id"] not in waiting]
    select_files(mirror, rows, plan, size_of=source_size if probe else None)
    # (a dry run's derivative rows stand in for audio originals: they have no kind)
    images = {r["id"] for r in rows if dict(r).get("kind") == "artwork"}
    plan.artwork = artwork_summary(db)
    plan.artwork["fetched"] += sum(1 for t in plan.tasks if t.file_id in images)
    return plan


def _derivatives_instead(
    rows: Sequence[sqlite3.Row], derivatives: dict[int, sqlite3.Row]
) -> list[Any]:
    """The candidates with each original in `derivatives` replaced by its derivative, a
    new pending file of the same item, in the candidates' order (within an item, by name)."""
    out: list[Any] = []
    start = 0
    for n, r in enumerate(rows):
        if n and r["item_id"] != rows[n - 1]["item_id"]:
            out[start:] = sorted(out[start:], key=lambda x: x["name"])
            start = len(out)
        d = derivatives.get(r["id"])
        if d is None:
            out.append(r)
            continue
        out.append(
            {
                "id": None,
                "item_id": r["item_id"],
                "name": d["dname"],
                "size": d["dsize"],
                "md5": d["md5"],
                "sha1": d["sha1"],
                "url": d["url"],
                "status": "pending",
                "fail_streak": 0,
                "last_attempt": None,
                "source": r["source"],
                "source_id": r["source_id"],
            }
        )
    out[start:] = sorted(out[start:], key=lambda x: x["name"])
    return out


def select_files(
    mirror: Mirror,
    rows: Sequence[sqlite3.Row],
    plan: FetchPlan,
    *,
    size_of: Callable[[str], int | None] | None,
) -> None:
    """Fill `plan` from candidate rows (most popular first): tasks, refusals, budget skips.

    The one selection of the fetch stage (sync and its dry run use it too). `size_of`
    asks a source for a size the catalogue lacks; None: do not ask.
    """
    cap = plan.max_bytes
    for n, r in enumerate(rows):
        try:
            relpath = mirror.store_relpath(r["source"], r["source_id"], r["name"])
        except UnsafeName as e:  # the name itself: refused for good
            plan.refusals.append(
                Refusal(
                    r["id"],
                    r["source_id"],
                    r["name"],
                    "refused",
                    f"unsafe name: {e.message}",
                    e.message,
                )
            )
            continue
        try:
            dest = mirror.abspath(relpath)
        except UnsafeName as e:  # something on disk (a symlink) leads out: fix and rerun
            plan.refusals.append(
                Refusal(
                    r["id"],
                    r["source_id"],
                    r["name"],
                    "failed",
                    f"unsafe path: {e.message}",
                    e.message,
                )
            )
            continue
        size = r["size"]
        if size is None and cap is not None and size_of is not None:
            size = size_of(r["url"] or "")
        if size is None:
            plan.unknown_size += 1
            if cap is not None:
                plan.skipped_budget += 1  # cannot be placed under a cap unseen
                continue
        if cap is not None and plan.bytes + size > cap:
            # The first file past the cap stops the plan: most popular first, no reordering.
            plan.skipped_budget += len(rows) - n
            break
        plan.bytes += size or 0
        plan.tasks.append(
            FetchTask(
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
