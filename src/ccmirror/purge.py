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
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import fsync_dir, safe_join
from ccmirror.mirror import Mirror

__all__ = ["purge_withdrawn"]

log = logging.getLogger("ccmirror.withdraw")


def purge_withdrawn(mirror: Mirror) -> int:
    """Delete every stored or packed copy of a withdrawn item's files; return how many."""
    db = mirror.db
    rows = db.execute(
        "SELECT f.id, f.item_id, f.store_path FROM files AS f JOIN items AS i ON i.id = f.item_id"
        " WHERE i.status = 'withdrawn'"
    ).fetchall()
    per_item: dict[int, int] = {}
    for f in rows:
        paths: list[Path | None] = []
        if f["store_path"]:
            paths.append(_inside(mirror.data_dir, f["store_path"]))
        for p in db.execute(
            "SELECT p.name, pf.path FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
            " WHERE pf.file_id = ?",
            (f["id"],),
        ):
            paths.append(_inside(mirror.packs_dir, f"{p['name']}/{p['path']}"))
        for path in paths:
            if path is not None and _unlink(path):
                per_item[f["item_id"]] = per_item.get(f["item_id"], 0) + 1
    if rows:
        with transaction(db):
            db.execute(
                "UPDATE files SET store_path = NULL WHERE store_path IS NOT NULL AND item_id IN"
                " (SELECT id FROM items WHERE status = 'withdrawn')"
            )
            db.executemany(
                "UPDATE withdrawals SET files_removed = files_removed + ? WHERE item_id = ?",
                [(n, item_id) for item_id, n in per_item.items()],
            )
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
