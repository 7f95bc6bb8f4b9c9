"""A `.part` file that hashes its bytes as they are written: one pass, never a second read.

Bytes are gathered into large writes (WRITE_SIZE), or written after FLUSH_EVERY seconds on
a slow link (a killed run keeps what had arrived); the digests always describe exactly the
bytes handed to the file. A `.part` left by an earlier run is read once, to bring the
digests up to where it ends; a resume within one run keeps the running digests.

A file expected past STREAM_AFTER goes to the disk without the page cache (O_DIRECT): the
disk reads the gathered block itself, so the kernel neither copies a byte nor allocates,
dirties and later evicts a page of the cache for it (measured on this VM: most of the
kernel's CPU time of a large download), a download of gigabytes leaves the cache of
everything else alone, and the fsync before the rename finds nothing left to write
(`check` reads such a file back from disk). The block is kept aligned to the file (ALIGN):
a write that ends mid-page writes its last partial page through the cache and keeps it at
the block's front, where the next direct write covers it again, whole.
Where O_DIRECT is refused (tmpfs, other systems), and for smaller files or files of unknown
size, writes go through the cache and each one starts the kernel's writeback
(sync_file_range, Linux): the fsync then finds little left to write; past STREAM_AFTER
such a file's bytes on disk leave the cache a write behind (posix_fadvise DONTNEED).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ALGORITHMS = ("md5", "sha1", "sha256")
WRITE_SIZE = 4 * 1024 * 1024  # bytes gathered before one write (and one update per hash)
FLUSH_EVERY = 0.2  # seconds: on a slow link, what arrived reaches the file this soon
STREAM_AFTER = 64 * 1024 * 1024  # bytes: a larger file does not stay in the page cache
HASH_SLICE = 256 * 1024  # bytes each digest takes in turn: the slice stays in the L2 cache
ALIGN = 4096  # O_DIRECT: file offsets, lengths and buffer addresses in multiples of this
_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of dirty pages, do not wait
_O_DIRECT = getattr(os, "O_DIRECT", 0)


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


def open_direct(path: Path) -> int:
    """A write descriptor on `path` past the page cache, or -1 where that is refused."""
    if not _O_DIRECT:
        return -1
    try:
        return os.open(path, os.O_WRONLY | _O_DIRECT)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return -1  # tmpfs and some others: written through the cache instead
        raise


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


_blocks = threading.local()  # one WRITE_SIZE block per download thread, reused file after file


def _take_block() -> mmap.mmap:
    """The thread's gathering block (a fresh one if a sink on this thread holds it): a buffer
    freed and allocated again per write would cost fresh memory pages every time. An mmap:
    page-aligned, as O_DIRECT needs."""
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
    """Writes `part` and hashes on the way; `begin(have)` before each attempt.

    The block holds the file's bytes [base, base + fill); its first `lead` bytes are on
    file and hashed already (the partial page a direct write covers again)."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self._fd = -1  # written through the page cache
        self._direct = -1  # O_DIRECT, for a large file (-1: none)
        self._block: mmap.mmap | None = None
        self._base = self._lead = self._fill = 0
        self._since = 0.0
        self._dropped = 0  # bytes of the file let go from the page cache
        self._reset()

    def _reset(self) -> None:
        self._hashers = [hashlib.new(a) for a in ALGORITHMS]
        self.size = 0

    def _update(self, data: bytes | memoryview) -> None:
        # Slice by slice, each through the three digests while it is in the CPU's cache: a
        # whole block per digest reads it from memory three times (measured: 3.3 -> 2.75 s
        # of CPU per GiB). hashlib drops the GIL for large updates: threads hash in parallel.
        with memoryview(data) as view:
            for i in range(0, len(view), HASH_SLICE):
                with view[i : i + HASH_SLICE] as piece:
                    for h in self._hashers:
                        h.update(piece)
        self.size += len(data)

    def begin(self, have: int, expect: int | None = None) -> None:
        """Continue the file at byte `have` (its current size; 0: start it over); `expect`:
        the size it will have, if known (a large one is written past the page cache)."""
        self.close()
        if have == 0 or have != self.size:
            self._reset()
            if have:  # bytes an earlier run left: hashed once, here
                with open(self.part, "rb") as f:
                    while block := f.read(WRITE_SIZE):
                        self._update(block)
        self._fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | (0 if have else os.O_TRUNC), 0o666)
        if expect is not None and expect >= STREAM_AFTER:
            self._direct = open_direct(self.part)
        self._block = _take_block()
        self._base = have - have % ALIGN if self._direct >= 0 else have
        self._lead = self._fill = have - self._base
        if self._lead:  # the partial page the first direct write covers again
            with open(self.part, "rb") as f:
                f.seek(self._base)
                self._block[: self._lead] = f.read(self._lead)
        self._since = time.monotonic()
        self._dropped = 0

    def write(self, data: bytes | memoryview) -> None:
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
        if self._fd < 0 or self._block is None:
            return
        if self._fill > self._lead:
            with memoryview(self._block) as block:
                if self._direct >= 0:
                    self._write_direct(block)
                else:
                    self._write_cached(block)
                self._update(block[self._lead : self._fill])  # written: now it counts
                keep = self._fill % ALIGN if self._direct >= 0 else 0
                if keep and self._fill > ALIGN:  # the partial page, to be covered again
                    block[:keep] = block[self._fill - keep : self._fill]
            self._base += self._fill - keep
            self._lead = self._fill = keep
        self._since = time.monotonic()

    def _write_cached(self, block: memoryview) -> None:
        start, end = self._base + self._lead, self._base + self._fill
        _pwrite_all(self._fd, block[self._lead : self._fill], start)
        start_writeback(self._fd, start)
        if end > STREAM_AFTER:  # an unexpectedly large file: let go a write behind
            behind = max(start - WRITE_SIZE, 0)  # their writeback has had a write's time
            drop_cached(self._fd, self._dropped, behind)
            self._dropped = max(self._dropped, behind)

    def _write_direct(self, block: memoryview) -> None:
        """Whole pages past the cache, the last partial one through it."""
        fill = self._fill
        whole = fill - fill % ALIGN
        if whole:
            try:
                done = os.pwrite(self._direct, block[:whole], self._base)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise  # a full disk is the caller's
                done = 0  # refused after all: this file goes through the cache
                os.close(self._direct)
                self._direct = -1
            if done < whole:
                _pwrite_all(self._fd, block[done:whole], self._base + done)
        start = max(whole, self._lead)  # a lead is on file already
        if fill > start:
            _pwrite_all(self._fd, block[start:fill], self._base + start)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            for fd in (self._fd, self._direct):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._direct = -1
            if self._block is not None:
                _give_block(self._block)
            self._block = None
            self._base = self._lead = self._fill = 0

    def landed(self) -> Landed:
        self.close()
        return Landed(
            self.size, {a: h.hexdigest() for a, h in zip(ALGORITHMS, self._hashers, strict=True)}
        )
