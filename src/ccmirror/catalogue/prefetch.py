"""Asking the OS to read an index's pages ahead, all at once, before a query walks it.

A cold scan of an index (the first `tiers` after a harvest: the catalogue, ~14 GB at 10M
items, is not in the page cache) reads its leaf pages one at a time in key order, and
those pages lie scattered over the file (an index on popularity grows wherever its keys
fall), so each is one small read waited for in turn. The leaves' page numbers are in the
index's interior pages (a few hundred at 10M items), so reading those and passing every
leaf to `posix_fadvise(WILLNEED)` lets the disk serve the whole index in parallel while
SQLite starts on it. Only ever a hint: pages are read from the main file without SQLite's
locks (a page changed since, or still in the WAL, only makes the hint miss), anything
unexpected ends it, and a system without `posix_fadvise` skips it.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Sequence

INTERIOR, LEAF = 0x02, 0x0A  # b-tree page types of an index
MAX_INTERIOR = 20_000  # interior pages read at most (~3M leaves): a bound, not a limit met


def _children(page: bytes, first: bool) -> list[int] | None:
    """The child page numbers of an interior index page (None: not one)."""
    off = 100 if first else 0  # page 1 starts with the file header
    if page[off] != INTERIOR:
        return None
    (n,) = struct.unpack_from(">H", page, off + 3)
    (right,) = struct.unpack_from(">I", page, off + 8)
    cells = struct.unpack_from(f">{n}H", page, off + 12)
    return [struct.unpack_from(">I", page, c)[0] for c in cells] + [right]


def _leaves(fd: int, size: int, root: int) -> list[int]:
    """Leaf page numbers of the index b-tree at `root`, level by level from its interior
    pages (the level above the leaves names them: they are not read)."""
    level, read = [root], 0
    while level:
        below: list[int] = []
        for pg in level:
            page = os.pread(fd, size, (pg - 1) * size)
            read += 1
            kids = _children(page, pg == 1) if len(page) == size else None
            if kids is None or read > MAX_INTERIOR:
                return [pg] if pg == root and page[:1] == bytes([LEAF]) else []
            below.extend(kids)
        probe = os.pread(fd, 1, (below[0] - 1) * size)
        if probe == bytes([LEAF]):
            return below
        level = below
    return []


def prefetch_indexes(db: sqlite3.Connection, names: Sequence[str]) -> int:
    """Hint the OS to read the leaf pages of the named indexes of `db`'s main file;
    returns how many pages were hinted (0 when it could not)."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    path = next((r[2] for r in db.execute("PRAGMA database_list") if r[1] == "main"), "")
    size = db.execute("PRAGMA page_size").fetchone()[0]
    marks = ",".join("?" * len(names))
    roots = [
        r[0]
        for r in db.execute(
            f"SELECT rootpage FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",
            list(names),
        )
    ]
    if not path or not roots:
        return 0
    hinted = 0
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        for root in roots:
            pages = sorted(_leaves(fd, size, root))
            hinted += len(pages)
            start = prev = 0
            for pg in [*pages, 0]:
                if prev and pg == prev + 1:
                    prev = pg
                    continue
                if start:  # one hint per run of consecutive pages
                    os.posix_fadvise(fd, (start - 1) * size, (prev - start + 1) * size,
                                     os.POSIX_FADV_WILLNEED)  # fmt: skip
                start = prev = pg
    except (OSError, struct.error, IndexError):
        pass  # a hint only: the query reads the index itself either way
    finally:
        os.close(fd)
    return hinted
