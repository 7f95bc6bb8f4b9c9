"""The follower's rows (`follow_torrents`) and the moves on disk that go with them.

State changes follow the bytes: a pack is `held` only once its payload verified and its
.torrent is safely written; a refused pack is moved to quarantine/follow/<pack>/ before
its row says so.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.follow import (
    follow_rows,
    listed_obsolete,
    torrent_dropped,
    torrent_held,
    torrent_quarantined,
    torrent_reason,
    torrent_wanted,
)
from ccmirror.follow.listing import Listed
from ccmirror.fsutil import atomic_write_bytes, atomic_write_json, fsync_dir, safe_join
from ccmirror.mirror import Mirror
from ccmirror.quarantine import free_name


def rows(db: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    return follow_rows(db)


def upsert_wanted(db: sqlite3.Connection, e: Listed) -> None:
    torrent_wanted(db, e)


def set_reason(db: sqlite3.Connection, btih: str, reason: str | None) -> None:
    torrent_reason(db, btih, reason)


def mark_listed(db: sqlite3.Connection, entries: list[Listed]) -> None:
    """Record what the list now says about the torrents we have rows for."""
    listed_obsolete(db, entries)


def hold(mirror: Mirror, e: Listed, data: bytes) -> None:
    """The payload verified: write its .torrent, then call it held."""
    rel = f"torrents/{e.name}.torrent"
    path = safe_join(mirror.data_dir, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    torrent_held(mirror.db, e.btih, rel)


def quarantine_pack(mirror: Mirror, e: Listed, data: bytes, problems: list[str]) -> str:
    """Move packs/<name>/ to quarantine/follow/<name>/<name>/ beside reason.json and the
    .torrent; never delete. Returns the folder, relative to the data dir."""
    dest = free_name(safe_join(mirror.data_dir, "quarantine", "follow", e.name))
    dest.mkdir(parents=True)
    reason: dict[str, Any] = {
        "pack": e.name,
        "btih": e.btih,
        "url": e.url,
        "problems": problems,
        "quarantined_at": utcnow(),
    }
    atomic_write_json(dest / "reason.json", reason)
    atomic_write_bytes(dest / f"{e.name}.torrent", data)
    src = safe_join(mirror.data_dir, "packs", e.name)
    if src.exists():
        os.replace(src, dest / e.name)
        fsync_dir(src.parent)
    fsync_dir(dest)
    rel = str(dest.relative_to(mirror.data_dir))
    summary = f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    torrent_quarantined(mirror.db, e.btih, f"{summary}; see {rel}/reason.json")
    return rel


def remove_payload(mirror: Mirror, name: str) -> None:
    """Delete packs/<name>/ and torrents/<name>.torrent (inside the data dir only)."""
    folder = safe_join(mirror.data_dir, "packs", name)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.is_symlink():
        folder.unlink()
    torrent = safe_join(mirror.data_dir, "torrents", f"{name}.torrent")
    torrent.unlink(missing_ok=True)


def drop(mirror: Mirror, btih: str, name: str, reason: str) -> None:
    remove_payload(mirror, name)
    torrent_dropped(mirror.db, btih, reason)


def payload_dir(mirror: Mirror, name: str) -> Path:
    return safe_join(mirror.data_dir, "packs", name)
