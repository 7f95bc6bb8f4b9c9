"""Getting a fetched file's bytes back without a download: from a sealed pack's hard link
(checksums verified) or from where `check` quarantined them just before a crash."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

from ccmirror.catalogue.packs import sealed_copies_of
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import hash_file, promote, safe_join, safe_relpath
from ccmirror.mirror import Mirror
from ccmirror.quarantine import reason_path

__all__ = ["quarantine_rel", "recover", "restore_from_pack"]


def quarantine_rel(row: sqlite3.Row) -> Path:
    rel = safe_relpath(f"{row['source']}/{row['source_id']}") / safe_relpath(row["name"])
    return Path("quarantine") / rel


def _ours(path: Path, row: sqlite3.Row) -> str | None:
    """When `check` put these bytes here, the time it did ("" if unknown); None when not
    (fetch quarantines bad downloads at the same place: never taken for the file)."""
    try:
        reason = json.loads(reason_path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(reason, dict)
        and "verdict" in reason
        and reason.get("store_path") == row["store_path"]
    ):
        return str(reason.get("quarantined_at") or "")
    return None


def restore_from_pack(mirror: Mirror, row: sqlite3.Row, store: Path) -> bool:
    """Put a sealed pack's copy of a vanished store file back, if its checksums match."""
    want = {a: row[a] for a in ("md5", "sha1") if row[a]}
    if not want:
        return False
    for p in sealed_copies_of(mirror.db, row["id"]):
        try:
            copy = safe_join(mirror.packs_dir, p["name"], p["path"])
        except UnsafeName:
            continue
        if copy.is_symlink() or not copy.is_file() or hash_file(copy, want) != want:
            continue
        store.parent.mkdir(parents=True, exist_ok=True)
        part = store.with_name(store.name + ".part")
        part.unlink(missing_ok=True)
        try:
            os.link(copy, part)
        except OSError:
            shutil.copyfile(copy, part)
        promote(part, store)
        return True
    return False


def recover(mirror: Mirror, row: sqlite3.Row) -> Path | None:
    """Bytes `check` moved to quarantine just before a crash (the catalogue never heard):
    the newest of <name>, <name>.1, ... (`quarantine.free_name`'s choices) that is ours."""
    base = mirror.abspath(str(quarantine_rel(row)))
    found, newest = None, ""
    candidate, n = base, 0
    while candidate.exists() or reason_path(candidate).exists():
        when = _ours(candidate, row)
        if when is not None and when >= newest and candidate.is_file():
            found, newest = candidate, when
        n += 1
        candidate = base.with_name(f"{base.name}.{n}")
    return found
