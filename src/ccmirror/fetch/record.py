"""Fetched files into the catalogue in batches: one transaction per BATCH files or FLUSH_AFTER s.

Written by the fetch loop's own thread, never a download thread. A file is renamed into the
store before its row is queued, so a crash before the batch is written loses nothing: the
next run finds the bytes in the store, verifies and adopts them without a download.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ccmirror.catalogue import utcnow
from ccmirror.catalogue.states import files_fetched

BATCH = 64
FLUSH_AFTER = 0.5  # seconds: what `status` shows never lags the store by more than this


class Recorder:
    """Queues fetched rows and writes them in batches (`flush` at the end of the run)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._rows: list[tuple[Any, ...]] = []
        self._since = time.monotonic()

    def fetched(self, file_id: int, relpath: str, size: int, hashes: dict[str, str]) -> None:
        now = utcnow()
        self._rows.append(
            (relpath, now, now, size, hashes["md5"], hashes["sha1"], hashes["sha256"], file_id)
        )
        if len(self._rows) >= BATCH or time.monotonic() - self._since >= FLUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            files_fetched(self.db, self._rows)
            self._rows.clear()
        self._since = time.monotonic()
