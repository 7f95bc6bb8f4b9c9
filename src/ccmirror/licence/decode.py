"""Decoding audio without a word on our stderr.

libsndfile's mpg123 prints warnings about damaged MP3s straight to file descriptor 2, which
cron mails to the operator on every run. So the decode runs in worker processes whose fds 1
and 2 are /dev/null. They start from a 'forkserver' (never a fork of a process that has
threads and an open SQLite connection); a decoder that crashes takes only its worker along.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

log = logging.getLogger("ccmirror.licence")

WORKERS = min(4, os.cpu_count() or 1)
R_CRASHED = "audio decoder crashed"

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _silence() -> None:
    """Worker start: nothing a worker or its C libraries print reaches our stdout/stderr."""
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def decode_frames(path: str) -> tuple[int, int] | str:
    """(frames the header promises, frames that decode), or why it does not decode.

    Runs in a worker process.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            expected, got = f.frames, 0
            while True:
                block = f.read(65536, dtype="int16", always_2d=True)
                if not len(block):
                    break
                got += len(block)
    except Exception as e:  # libsndfile reports damage as several error types
        return f"audio does not decode: {(str(e).splitlines() or [''])[0][:120]}"
    return expected, got


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has already imported the decoder: cheap to start.
    ctx.set_forkserver_preload(["soundfile", __name__])
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_silence)


def _shared() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = _new_pool(WORKERS)
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def decode(path: str | os.PathLike[str]) -> tuple[int, int] | str:
    """`decode_frames` in a silent worker; thread-safe. A worker that dies is retried once
    alone, so one crashing file never condemns the files decoded beside it."""
    path = os.path.abspath(path)  # workers keep the cwd they started with
    pool = _shared()
    try:
        return pool.submit(decode_frames, path).result()
    except BrokenProcessPool:
        _discard(pool)
    log.warning("audio decoder died on a file; trying %s alone", path)
    alone = _new_pool(1)
    try:
        return alone.submit(decode_frames, path).result()
    except BrokenProcessPool:
        return R_CRASHED
    finally:
        alone.shutdown(wait=True)


def shutdown() -> None:
    """Stop the shared workers (they are also stopped at interpreter exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
