"""catalogue.prefetch: the leaf pages of an index, found from its interior pages."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ccmirror.catalogue.prefetch import _leaves, prefetch_indexes


def _db(path, rows: int) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b REAL, c TEXT)")
    db.execute("CREATE INDEX t_b ON t (b DESC, a, c)")
    db.execute("CREATE INDEX t_empty ON t (c) WHERE a < 0")
    db.executemany(  # keys in no order: the index's pages scattered as a harvest leaves them
        "INSERT INTO t VALUES (?, ?, ?)",
        ((i, (i * 7919) % 10007 / 3.0, f"text {i:06d}") for i in range(rows)),
    )
    db.commit()
    return db


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="posix_fadvise is POSIX only")
def test_every_leaf_of_a_deep_index_is_hinted(tmp_path):
    db = _db(tmp_path / "c.sqlite", 60_000)
    leaves = {
        r[0]
        for r in db.execute("SELECT pageno FROM dbstat WHERE name = 't_b' AND pagetype = 'leaf'")
    }
    depth = db.execute("SELECT max(length(path) - length(replace(path, '/', ''))) FROM dbstat"
                       " WHERE name = 't_b'").fetchone()[0]  # fmt: skip
    assert depth >= 2 and len(leaves) > 400  # interior pages below the root
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 't_b'").fetchone()
    fd = os.open(tmp_path / "c.sqlite", os.O_RDONLY)
    try:
        assert set(_leaves(fd, 4096, root)) == leaves
    finally:
        os.close(fd)
    assert prefetch_indexes(db, ["t_b"]) == len(leaves)
    assert prefetch_indexes(db, ["t_empty"]) == 1  # a root that is its only leaf
    assert prefetch_indexes(db, ["no_such_index", "t"]) == 0  # tables are not hinted
    db.close()
