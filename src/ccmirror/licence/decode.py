"""Decoding audio without a word on our stderr.

libsndfile's mpg123 prints warnings about damaged MP3s straight to file descriptor 2, which
cron mails to the operator on every run. So the decode runs in worker processes whose fds 1
and 2 are /dev/null. They start from a 'forkserver' (never a fork of a process that has
threads and an open SQLite connection); a decoder that crashes takes only its worker along.

Workers die with their run. A run killed by SIGKILL (a cron timeout, the OOM killer) runs
no clean-up, so each worker watches the run's process itself: a thread waits on a pidfd of
the run (polling where pidfds are missing) and, when it ends, kills the forkserver that
forked the worker, then the worker. The worker also has PR_SET_PDEATHSIG, so a forkserver
that dies first takes its workers along. (The forkserver itself gets no parent-death
signal: that fires when the *thread* that started it ends, and a check thread may.)
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("ccmirror.licence")

WORKERS = min(4, os.cpu_count() or 1)
FILE_TIMEOUT = 600  # seconds one file may take in a worker before the worker is ended
R_CRASHED = "audio decoder crashed"

T = TypeVar("T")

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_in_worker = False  # set in workers: they decode in place
_no_pool = False  # set when worker processes cannot be made here


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_POLL = 0.5  # seconds between checks where a pidfd cannot be had


def _die_with_parent() -> None:
    """Linux: SIGKILL to this process when its parent (the forkserver) ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the run watch below still holds
        pass


def _watch(run_pid: int, server_pid: int) -> None:
    """A worker's thread: wait for the run to end, then end the forkserver and the worker."""
    try:
        fd = os.pidfd_open(run_pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if fd is not None:
            select.select([fd], [], [])  # readable once the run has ended
        else:
            while True:
                os.kill(run_pid, 0)
                threading.Event().wait(WATCH_POLL)
    except OSError:
        pass  # ProcessLookupError: the run is gone
    # Still our parent means still alive and still the forkserver (not a reused pid);
    # never the run itself (without a forkserver the parent is the run, already gone).
    if server_pid not in (run_pid, 1) and os.getppid() == server_pid:
        os.kill(server_pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _silence(run_pid: int | None = None) -> None:
    """Worker start: nothing a worker or its C libraries print reaches our stdout/stderr;
    the worker ends with the run `run_pid` (see the module's docstring)."""
    global _in_worker
    _in_worker = True
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if run_pid is None:
        return
    server = os.getppid()
    _die_with_parent()
    if os.getppid() != server:  # the forkserver ended before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=_watch, args=(run_pid, server), name="run-watch", daemon=True).start()


def _timed(fn: Callable[[Any], T], arg: Any, seconds: int) -> T:
    """In a worker: `fn(arg)`, and a decoder that hangs ends with its process (SIGALRM's
    default action works even inside C code; the caller sees a dead worker)."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, seconds))
    try:
        return fn(arg)
    finally:
        signal.alarm(0)


def decode_frames(path: str) -> tuple[int, int] | str:
    """(frames the header promises, frames that decode), or why it does not decode.

    Runs in a worker process.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            expected, got = f.frames, 0
            # mpg123, libvorbis and libopus decode to floats: read as int16, an MP3 costs
            # 27% more, Vorbis 7%, Opus 4%; FLAC and PCM are integers (bench/licence.py)
            dtype = "float32" if f.format in ("MP3", "OGG") else "int16"
            while True:
                block = f.read(65536, dtype=dtype, always_2d=True)
                if not len(block):
                    break
                got += len(block)
    except Exception as e:  # libsndfile reports damage as several error types
        return f"audio does not decode: {(str(e).splitlines() or [''])[0][:120]}"
    return expected, got


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has already imported the decoder: cheap to start.
    ctx.set_forkserver_preload(["soundfile", "mutagen", "ccmirror.licence.tags", __name__])
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_silence, initargs=(os.getpid(),)
    )


def _shared() -> ProcessPoolExecutor | None:
    """The shared pool; None where processes cannot be made (then work runs in place:
    audible, but never a failed check)."""
    global _pool, _no_pool
    with _lock:
        if _pool is None and not _no_pool:
            try:
                _pool = _new_pool(WORKERS)
            except (OSError, ImportError, NotImplementedError, ValueError) as e:
                log.warning("no decoding worker processes (%s): decoding in place", e)
                _no_pool = True
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def call(fn: Callable[[str], T], path: str | os.PathLike[str], crashed: T) -> T:
    """`fn(path)` in a silent worker (`fn` must be importable by name); thread-safe.

    A worker that dies (or hangs past FILE_TIMEOUT) is retried once alone, so one bad file
    never condemns the files beside it; `crashed` is the answer when it dies alone too. In
    a worker, `fn` just runs.
    """
    path = os.path.abspath(path)  # workers keep the cwd they started with
    pool = None if _in_worker else _shared()
    if pool is None:
        return fn(path)
    try:
        return pool.submit(_timed, fn, path, FILE_TIMEOUT).result()
    except BrokenProcessPool:
        _discard(pool)
    log.warning("a decoding worker died; trying %s alone", path)
    alone = _new_pool(1)
    try:
        return alone.submit(_timed, fn, path, FILE_TIMEOUT).result()
    except BrokenProcessPool:
        return crashed
    finally:
        alone.shutdown(wait=True)


def call_batch(fn: Callable[[list[str]], T], paths: list[str | os.PathLike[str]], crashed: T) -> T:
    """`fn(paths)` in one silent worker: one round trip for many small files. A dead
    worker gives `crashed` (callers fall back to `call`, one file at a time)."""
    absolute = [os.path.abspath(p) for p in paths]
    pool = None if _in_worker else _shared()
    if pool is None:
        return fn(absolute)
    try:
        return pool.submit(_timed, fn, absolute, FILE_TIMEOUT * len(absolute)).result()
    except BrokenProcessPool:
        _discard(pool)
        return crashed


def decode(path: str | os.PathLike[str]) -> tuple[int, int] | str:
    """`decode_frames` in a silent worker."""
    return call(decode_frames, path, R_CRASHED)


def shutdown() -> None:
    """Stop the shared workers (they are also stopped at interpreter exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
