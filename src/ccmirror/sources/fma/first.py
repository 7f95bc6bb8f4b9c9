"""A first harvest on two cores: a child process reads and plans the rows while this one
writes them.

When the source holds no item yet every row is new, and a row's cost splits into two
halves of about the same size: reading and planning it (CSV, licence gate, values,
fingerprints: Python) and writing it (SQLite). So the child reads raw_tracks.csv itself
and sends each batch's insert tuples and counts down a pipe; the parent writes batch n
while the child plans batch n + 1. The pipe holds about one batch, so memory stays one
batch per process.

The child is spawned (never a fork of a process with threads and an open catalogue)
and dies with its parent: PR_SET_PDEATHSIG, armed first thing, then a check that the
parent is still the run (it may have ended before the signal was armed). A child that
ends early is an error, never a partial harvest taken for a whole one; its log lines
are logged by the parent, under the same logger names.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from ccmirror.catalogue import deferred, fma_load, transaction, utcnow
from ccmirror.errors import CCMirrorError
from ccmirror.manifest import LicenceConfig
from ccmirror.mirror import Mirror
from ccmirror.progress import Reporter
from ccmirror.sources.fma.audio import AudioIndex

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# A metadata file at least this big (about 80,000 rows of raw_tracks.csv zipped) is worth
# a second process: below it, the child's start-up (a new interpreter) outweighs it.
CHILD_BYTES = 4 << 20
# A first load into a catalogue of fewer items than this builds the secondary indexes of
# items and files once at its end (Writer); CREATE INDEX over 100k rows takes ~0.1 s.
DEFER_BELOW = 100_000

Send = Callable[[Any], None]
log = logging.getLogger("ccmirror.sources.fma")


@dataclass(frozen=True)
class Job:
    """What the child of a first load needs to read and plan every row (first.py)."""

    path: Path
    licence: LicenceConfig
    audio: AudioIndex
    albums: dict[str, dict[str, str]]
    salt: str
    batch: int


class Writer:
    """The parent's half of a first load: each batch the child planned, written.

    Used as a context manager. When the catalogue holds few items (fewer than
    DEFER_BELOW: building an index over them afterwards costs less than keeping it up
    row by row), the secondary indexes of items and files are dropped for the load and
    built once at its end (catalogue/deferred.py, under its load lock; a killed load's
    are built by the next connect). Foreign keys are not checked for the load's
    statements: every file row names an item of its own batch, inserted just before."""

    def __init__(self, mirror: Mirror, result: dict[str, Any], reporter: Reporter) -> None:
        self.db, self.result, self.reporter = mirror.db, result, reporter
        self.lock: int | None = None

    def __enter__(self) -> Writer:
        db = self.db
        self.keys = db.execute("PRAGMA foreign_keys").fetchone()[0]
        many = db.execute("SELECT 1 FROM items LIMIT 1 OFFSET ?", (DEFER_BELOW - 1,)).fetchone()
        if many is None and not deferred.pending(db):
            self.lock = deferred.take_lock(deferred.lock_path(db))
            if self.lock is not None:
                deferred.defer(db)
        db.execute("PRAGMA foreign_keys = OFF")
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        try:
            self.db.execute(f"PRAGMA foreign_keys = {int(self.keys)}")
            # Interrupted (^C): the next connect builds them; any other end: here.
            if self.lock is not None and (kind is None or issubclass(kind, Exception)):
                deferred.restore(self.db)
        finally:
            if self.lock is not None:
                deferred.release(self.lock)
                self.lock = None

    def __call__(self, message: tuple[list[Any], dict[str, Any]]) -> None:
        rows, counts = message
        with transaction(self.db):
            fma_load.insert_new(self.db, rows, utcnow())
        result = self.result
        for key, value in counts.items():
            if key == "refused":
                for reason, n in value.items():
                    result[key][reason] = result[key].get(reason, 0) + n
            elif isinstance(value, int):
                result[key] += value
        self.reporter.advance(len(rows))


def worth_a_child(path: Path) -> bool:
    return path.stat().st_size >= CHILD_BYTES


def run_child(work: Callable[[Any, Send], Any], job: Any, write: Send) -> Any:
    """`work(job, send)` in a child process; `write(message)` here for each message it
    sends, in order; returns what `work` returned. Its exceptions are raised here."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    level = logging.getLogger("ccmirror").getEffectiveLevel()
    proc = ctx.Process(
        target=_child,
        args=(work, job, send, os.getpid(), level),
        daemon=True,
        name="ccmirror-fma-plan",
    )
    proc.start()
    send.close()
    waited = loading = 0.0  # seconds this process waited for a message, and unpickled
    try:
        while True:
            t0 = time.perf_counter()
            try:
                data = recv.recv_bytes()
            except EOFError:
                proc.join(10)
                raise CCMirrorError(
                    f"the FMA planning process ended early (exit code {proc.exitcode})"
                ) from None
            t1 = time.perf_counter()
            kind, value = pickle.loads(data)  # what recv() does
            del data
            waited, loading = waited + t1 - t0, loading + time.perf_counter() - t1
            if kind == "batch":
                write(value)
            elif kind == "log":
                name, levelno, text = value
                logging.getLogger(name).log(levelno, "%s", text)
            elif kind == "error":
                error, code = value
                if isinstance(error, CCMirrorError):
                    error.exit_code = code
                raise error
            else:
                log.debug("FMA first load: waited %.1f s for the planner, unpickled %.1f s",
                          waited, loading)  # fmt: skip
                return value
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


class _Forward(logging.Handler):
    """The child's log records, sent to the parent to log."""

    def __init__(self, send: Send) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        self.send(("log", (record.name, record.levelno, record.getMessage())))


def _child(work: Callable[[Any, Send], Any], job: Any, conn: Any, parent: int, level: int) -> None:
    _die_with(parent)
    # A batch is tens of thousands of new tuples: with the default threshold (700) the
    # cyclic GC walked them again and again (3% of the child's instructions). The work
    # makes no cycles; collections still run, rarely, and skip the start-up's objects.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    logger = logging.getLogger("ccmirror")
    logger.handlers[:] = [_Forward(conn.send)]
    logger.setLevel(level)
    logger.propagate = False
    send = _Sender(conn)
    try:
        value = work(job, send)
    except BaseException as e:  # the parent raises it: nothing is lost with the child
        conn.send(("error", (_picklable(e), getattr(e, "exit_code", None))))
        return
    cpu = time.process_time()
    log.debug("FMA planner: %.1f s CPU, of which pickling %.1f s; waited %.1f s for the writer",
              cpu, send.pickling, send.waited)  # fmt: skip
    conn.send(("done", value))
    conn.close()


class _Sender:
    """Sends each batch; counts the CPU seconds spent pickling (and writing) it and the
    seconds waiting for the parent to take it (the pipe holds little: the write returns
    once the parent has read it all)."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.pickling, self.waited = conn, 0.0, 0.0

    def __call__(self, batch: Any) -> None:
        c0 = time.process_time()
        data = ForkingPickler.dumps(("batch", batch))  # what conn.send does
        t1 = time.perf_counter()
        self.conn.send_bytes(data)
        self.waited += time.perf_counter() - t1
        self.pickling += time.process_time() - c0  # its CPU: sending costs little


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:
        return CCMirrorError(f"FMA planning failed: {e!r}")
    return e


def _die_with(parent: int) -> None:
    """Linux: SIGKILL to this process when its parent ends; end now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent kills the child on its way out
        pass
    if os.getppid() != parent:
        os._exit(1)
