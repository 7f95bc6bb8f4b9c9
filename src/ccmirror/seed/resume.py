"""Resume data for the built-in seeder, kept in `<data_dir>/seed/`.

libtorrent's resume data (`<key>.resume`) says which pieces were verified, so a restart
seeds at once instead of hashing every pack again. Beside it, `<key>.stamp.json` records
the size and mtime of every payload file when the resume data was written, and the
resume data's sha1: if a payload file changed since (or either file is missing or torn),
the resume data is stale and the torrent gets a full check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import libtorrent as lt

from ccmirror.fsutil import atomic_write_bytes, atomic_write_json

log = logging.getLogger("ccmirror.seed")


def torrent_key(info_hashes: Any) -> str:
    """The hex info-hash naming a torrent's resume files: v1, or v2 for a v2-only torrent."""
    if info_hashes.has_v1():
        return str(info_hashes.v1)
    return str(info_hashes.v2)


def payload_stamp(ti: Any, save_path: Path) -> list[list[Any]]:
    """[path, size, mtime_ns] of every real file of the torrent (None when missing)."""
    layout = ti.layout()
    pad = lt.file_storage.flag_pad_file
    rows: list[list[Any]] = []
    for i in range(layout.num_files()):
        if layout.file_flags(i) & pad:
            continue
        rel = layout.file_path(i)
        try:
            st = os.stat(save_path / rel)
            rows.append([rel, st.st_size, st.st_mtime_ns])
        except FileNotFoundError:
            rows.append([rel, None, None])
    return rows


class ResumeStore:
    """Reads and writes resume data for torrents seeded from one save path."""

    def __init__(self, folder: Path, save_path: Path) -> None:
        self.folder = folder
        self.save_path = save_path

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.resume", self.folder / f"{key}.stamp.json"

    def load(self, ti: Any) -> tuple[Any | None, str]:
        """add_torrent_params from fresh resume data, or (None, why a full check is needed)."""
        key = torrent_key(ti.info_hashes())
        resume_path, stamp_path = self._paths(key)
        try:
            buf = resume_path.read_bytes()
            stamp = json.loads(stamp_path.read_text("utf-8"))
        except FileNotFoundError:
            return None, "no resume data"
        except (OSError, ValueError) as e:
            return None, f"unreadable resume data ({e})"
        if not isinstance(stamp, dict):  # valid JSON, but not the stamp we write
            return None, "unreadable resume data (the stamp is not an object)"
        if stamp.get("resume_sha1") != hashlib.sha1(buf).hexdigest():
            return None, "resume data does not match its stamp"
        if stamp.get("files") != payload_stamp(ti, self.save_path):
            return None, "payload changed since the resume data was written"
        try:
            atp = lt.read_resume_data(buf)
        except RuntimeError as e:
            return None, f"resume data rejected by libtorrent ({e})"
        if torrent_key(atp.info_hashes) != key:
            return None, "resume data is for another torrent"
        return atp, "resume data"

    def save(self, ti: Any, params: Any) -> Path:
        """Write resume data atomically, then its stamp (a torn pair reads as stale)."""
        key = torrent_key(ti.info_hashes())
        resume_path, stamp_path = self._paths(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = lt.write_resume_data_buf(params)
        atomic_write_bytes(resume_path, buf)
        atomic_write_json(
            stamp_path,
            {
                "name": ti.name(),
                "resume_sha1": hashlib.sha1(buf).hexdigest(),
                "files": payload_stamp(ti, self.save_path),
            },
        )
        return resume_path

    def discard(self, key: str) -> None:
        for path in self._paths(key):
            path.unlink(missing_ok=True)
