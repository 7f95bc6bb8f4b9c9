"""`<data_dir>/quarantine/`: rejected or suspect bytes, kept for an operator (DESIGN §3).

Never deletes and never overwrites: a second file for the same place gets `.1`, `.2`, ...
The reason file is written first, so bytes never sit in quarantine unexplained.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ccmirror.catalogue import utcnow
from ccmirror.fsutil import atomic_write_json, fsync_dir, safe_join

REASON_SUFFIX = ".reason.json"


def reason_path(path: Path) -> Path:
    return path.with_name(path.name + REASON_SUFFIX)


def free_name(path: Path) -> Path:
    """The first of `path`, `path.1`, ... whose bytes and reason file do not exist yet."""
    candidate, n = path, 0
    while candidate.exists() or reason_path(candidate).exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def quarantine(
    data_dir: Path, source: str, source_id: str, name: str, src: Path, reason: dict[str, Any]
) -> Path:
    """Move `src` (inside the data dir) to `quarantine/<source>/<item>/<name>` with its
    reason file; returns the new path. Raises UnsafeName or OSError, moving nothing."""
    # Joined from the data dir itself: a symlinked quarantine/ must not lead outside it.
    dest = free_name(safe_join(data_dir, "quarantine", source, source_id, name))
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(reason_path(dest), {**reason, "quarantined_at": utcnow()})
    os.replace(src, dest)
    fsync_dir(dest.parent)
    fsync_dir(src.parent)
    return dest
