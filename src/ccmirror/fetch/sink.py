"""A `.part` file that hashes its bytes as they are written: one pass, never a second read.

Bytes are gathered into large writes (WRITE_SIZE), or written after FLUSH_EVERY seconds on
a slow link (a killed run keeps what had arrived); the digests always describe exactly the
bytes handed to the file. A `.part` left by an earlier run is read once, to bring the
digests up to where it ends; a resume within one run keeps the running digests.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ALGORITHMS = ("md5", "sha1", "sha256")
WRITE_SIZE = 4 * 1024 * 1024  # bytes gathered before one write (and one update per hash)
FLUSH_EVERY = 0.2  # seconds: on a slow link, what arrived reaches the file this soon


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
        self._buf = bytearray()
        self._since = 0.0
        self._reset()

    def _reset(self) -> None:
        self._hashers = [hashlib.new(a) for a in ALGORITHMS]
        self.size = 0

    def _update(self, data: bytes | bytearray) -> None:
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
        self._since = time.monotonic()

    def write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= WRITE_SIZE or time.monotonic() - self._since >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Hand what is gathered to the file (before a retry, a stop, or the end)."""
        if self._out is None:
            return
        if self._buf:
            self._out.write(self._buf)
            self._update(self._buf)
            self._buf.clear()
        self._out.flush()
        self._since = time.monotonic()

    def close(self) -> None:
        if self._out is None:
            return
        try:
            self.flush()
        finally:
            self._out.close()
            self._out = None
            self._buf.clear()

    def landed(self) -> Landed:
        self.close()
        return Landed(
            self.size, {a: h.hexdigest() for a, h in zip(ALGORITHMS, self._hashers, strict=True)}
        )
