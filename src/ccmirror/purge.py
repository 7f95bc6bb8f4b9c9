"""Finishing a takedown on disk: every stored or packed copy of a withdrawn item's files goes.

`withdraw` calls it right after changing the catalogue; `publish` calls it again before it
publishes anything, so a takedown interrupted by a crash is finished there.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from ccmirror.catalogue import transaction
from ccmirror.catalogue.withdrawals import file_pack_paths, withdrawn_files, withdrawn_left_store
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import fsync_dir, safe_join
from ccmirror.mirror import Mirror
from ccmirror.packs.sealed import forget_generated

__all__ = ["purge_withdrawn"]

log = logging.getLogger("ccmirror.withdraw")


def purge_withdrawn(mirror: Mirror) -> int:
    """Delete every stored or packed copy of a withdrawn item's files; return how many."""
    db = mirror.db
    rows = withdrawn_files(db)
    per_item: dict[int, int] = {}
    for f in rows:
        paths: list[Path | None] = []
        if f["store_path"]:
            paths.append(_inside(mirror.data_dir, f["store_path"]))
        for p in file_pack_paths(db, f["id"]):
            paths.append(_inside(mirror.packs_dir, f"{p['name']}/{p['path']}"))
            forget_generated(mirror.data_dir, p["name"])  # its packs are never rebuilt
        for path in paths:
            if path is not None and _unlink(path):
                per_item[f["item_id"]] = per_item.get(f["item_id"], 0) + 1
    if rows:
        with transaction(db):
            withdrawn_left_store(db, per_item.items())
    return sum(per_item.values())


def _inside(base: Path, rel: str) -> Path | None:
    try:
        return safe_join(base, rel)
    except UnsafeName:
        log.warning("not deleting %r: it is not a plain path under %s", rel, base)
        return None


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    # Leave no empty item folders behind in the store.
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True
