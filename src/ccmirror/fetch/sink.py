"""A `.part` file that hashes its bytes as they are written: one pass, never a second read.

Bytes are gathered into large writes (WRITE_SIZE), or written after FLUSH_EVERY seconds on
a slow link (a killed run keeps what had arrived); the digests always describe exactly the
bytes handed to the file. A `.part` left by an earlier run is read once, to bring the
digests up to where it ends; a resume within one run keeps the running digests.

Each write also starts the kernel's writeback of those bytes (sync_file_range, Linux): the
fsync before the rename then finds little left to write. Without it a large file sits dirty
in the page cache until that fsync, and the disk works only after the network is done.
A file past STREAM_AFTER streams through: its bytes already on disk leave the page cache
(posix_fadvise DONTNEED, a write behind), so a download of gigabytes neither evicts the
cache of everything else nor needs a fresh page for every byte (the pages are reused;
`check` reads such a file back from disk).
"""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ALGORITHMS = ("md5", "sha1", "sha256")
WRITE_SIZE = 4 * 1024 * 1024  # bytes gathered before one write (and one update per hash)
FLUSH_EVERY = 0.2  # seconds: on a slow link, what arrived reaches the file this soon
STREAM_AFTER = 64 * 1024 * 1024  # bytes: a larger file does not stay in the page cache
_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of dirty pages, do not wait


def _writeback_call() -> Callable[..., int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None  # not Linux: the fsync at the end writes everything
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_writeback = _writeback_call()


def start_writeback(fd: int, offset: int) -> None:
    """Ask the kernel to start writing `fd`'s dirty bytes from `offset` on (never waits for
    the disk; the GIL is released during the call). A refusal only costs speed."""
    if _writeback is not None:
        _writeback(fd, offset, 0, _SYNC_FILE_RANGE_WRITE)


def drop_cached(fd: int, start: int, end: int) -> None:
    """Let the page cache forget `fd`'s bytes [start, end) that are on disk (dirty pages
    stay until written)."""
    if hasattr(os, "posix_fadvise") and end > start:
        os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


_blocks = threading.local()  # one WRITE_SIZE block per download thread, reused file after file


def _take_block() -> mmap.mmap:
    """The thread's gathering block (a fresh one if a sink on this thread holds it): a buffer
    freed and allocated again per write would cost fresh memory pages every time."""
    block = getattr(_blocks, "free", None)
    _blocks.free = None
    return block if block is not None else mmap.mmap(-1, WRITE_SIZE)  # pages on first touch


def _give_block(block: mmap.mmap) -> None:
    _blocks.free = block


@dataclass(frozen=True)
class Landed:
    """What a transport put in the `.part` file: its size and digests."""

    size: int
    hashes: dict[str, str]


class Sink:
    """Writes `part` and hashes on the way; `begin(have)` before each attempt."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self._out: BinaryIO | None = None
        self._block: mmap.mmap | None = None  # bytes gathered for the next write
        self._fill = 0
        self._since = 0.0
        self._dropped = 0  # bytes of the file let go from the page cache
        self._reset()

    def _reset(self) -> None:
        self._hashers = [hashlib.new(a) for a in ALGORITHMS]
        self.size = 0

    def _update(self, data: bytes | memoryview) -> None:
        for h in self._hashers:
            h.update(data)  # hashlib drops the GIL for large blocks: threads hash in parallel
        self.size += len(data)

    def begin(self, have: int) -> None:
        """Continue the file at byte `have` (its current size; 0: start it over)."""
        self.close()
        if have == 0 or have != self.size:
            self._reset()
            if have:  # bytes an earlier run left: hashed once, here
                with open(self.part, "rb") as f:
                    while block := f.read(WRITE_SIZE):
                        self._update(block)
        self._out = open(self.part, "ab" if have else "wb")  # noqa: SIM115 - see close()
        self._block, self._fill = _take_block(), 0
        self._since = time.monotonic()
        self._dropped = 0

    def write(self, data: bytes) -> None:
        if self._block is None:
            raise ValueError("Sink.write before begin")
        view, done = memoryview(data), 0
        while done < len(view):
            take = min(len(view) - done, WRITE_SIZE - self._fill)
            self._block[self._fill : self._fill + take] = view[done : done + take]
            self._fill += take
            done += take
            if self._fill == WRITE_SIZE:
                self.flush()
        if time.monotonic() - self._since >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Hand what is gathered to the file (before a retry, a stop, or the end)."""
        if self._out is None:
            return
        if self._block is not None and self._fill:
            with memoryview(self._block)[: self._fill] as data:
                offset = self.size
                self._out.write(data)
                self._out.flush()
                self._to_disk(self._out.fileno(), offset, offset + len(data))
                self._update(data)
            self._fill = 0
        self._out.flush()
        self._since = time.monotonic()

    def _to_disk(self, fd: int, offset: int, end: int) -> None:
        """Writeback of [offset, end) started; a large file's bytes a write before let go."""
        start_writeback(fd, offset)
        if end > STREAM_AFTER:
            behind = max(offset - WRITE_SIZE, 0)  # their writeback has had a write's time
            drop_cached(fd, self._dropped, behind)
            self._dropped = max(self._dropped, behind)

    def close(self) -> None:
        if self._out is None:
            return
        try:
            self.flush()
        finally:
            self._out.close()
            self._out = None
            if self._block is not None:
                _give_block(self._block)
            self._block, self._fill = None, 0

    def landed(self) -> Landed:
        self.close()
        return Landed(
            self.size, {a: h.hexdigest() for a, h in zip(ALGORITHMS, self._hashers, strict=True)}
        )
