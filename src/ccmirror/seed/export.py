"""`export-torrents`: hand every sealed pack's .torrent to another client's watch folder.

The client's save path must be `<data_dir>/packs` (README: "Seeding with your own client"),
so it finds the payload in place and seeds after a check. Copies are atomic (a hidden
`.part` name a watch folder ignores, then rename); a different file already under the same
name is never overwritten: it is reported as a conflict (exit 1).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ccmirror.catalogue.packs import live_torrents
from ccmirror.errors import UnsafeName, UsageError
from ccmirror.fsutil import fsync_dir
from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.seed")


def _copy_atomic(dest: Path, data: bytes) -> None:
    part = dest.with_name(f".{dest.name}.part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        # link() fails if dest appeared meanwhile: never replace someone else's file.
        os.link(part, dest)
    finally:
        part.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def export_torrents(mirror: Mirror, to: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy the .torrent of every sealed, non-obsolete pack into `to`.

    Returns counts (exported, unchanged, conflicts, missing, failed) and one row per pack.
    """
    folder = Path(to).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    rows = live_torrents(mirror.db)
    result: dict[str, Any] = {
        "to": str(folder),
        "save_path": str(mirror.packs_dir),
        "exported": 0,
        "unchanged": 0,
        "conflicts": 0,
        "missing": 0,
        "failed": 0,
        "torrents": [],
    }
    for row in rows:
        dest = folder / f"{row['name']}.torrent"
        entry = {
            "name": row["name"],
            "info_hash": row["info_hash_v1"] or row["info_hash_v2"],
            "path": str(dest),
        }
        try:
            src = mirror.abspath(row["torrent_path"])
            data = src.read_bytes()
        except (FileNotFoundError, UnsafeName) as e:
            entry["status"] = "missing"
            entry["error"] = f"{row['torrent_path']}: {e.strerror if isinstance(e, OSError) else e}"
            log.error("%s: torrent file %s", row["name"], entry["error"])
            result["missing"] += 1
            result["failed"] += 1
            result["torrents"].append(entry)
            continue
        if dest.exists() or dest.is_symlink():
            if dest.is_file() and dest.read_bytes() == data:
                entry["status"] = "unchanged"
                result["unchanged"] += 1
            else:
                entry["status"] = "conflict"
                entry["error"] = f"{dest} exists and differs; left alone"
                log.error("%s: %s exists with other content; not overwritten", row["name"], dest)
                result["conflicts"] += 1
                result["failed"] += 1
            result["torrents"].append(entry)
            continue
        try:
            _copy_atomic(dest, data)
        except FileExistsError:
            entry["status"] = "conflict"
            entry["error"] = f"{dest} appeared while copying; left alone"
            result["conflicts"] += 1
            result["failed"] += 1
        else:
            entry["status"] = "exported"
            result["exported"] += 1
        result["torrents"].append(entry)
    return result
