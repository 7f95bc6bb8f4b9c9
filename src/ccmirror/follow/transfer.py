"""Fetch and check a listed .torrent, then download payloads with libtorrent.

A .torrent is accepted only when its v1 info-hash is the list's `btih`, its name is the
listed pack name and every file path inside is a plain relative path under that folder
(read from the bencoded info dictionary itself, before libtorrent tidies any name).
Downloads go to `<data_dir>/packs` from the swarm and the torrent's web seeds (BEP 19),
for at most the run's time limit; what is unfinished is picked up by the next run, whose
libtorrent check of the partial files keeps every verified piece. libtorrent is imported
in the functions that use it: `ccmirror status` imports this package and never loads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccmirror import __version__
from ccmirror.follow.listing import TORRENT_MAX_BYTES, Listed, read_bytes

log = logging.getLogger("ccmirror.follow")


class TorrentRefused(Exception):
    """A .torrent that does not match its list entry (the entry is not followed)."""


@dataclass
class Job:
    entry: Listed
    data: bytes
    atp: Any  # from check_torrent: libtorrent keeps trackers and web seeds here, not in ti
    handle: Any = None
    done: bool = False
    progress: float = 0.0
    error: str | None = None


def _component_ok(part: Any) -> bool:
    if not isinstance(part, bytes) or not part:
        return False
    text = part.decode("utf-8", "replace")
    return text not in (".", "..") and not any(c in text for c in "/\\\0") and text.isprintable()


def check_torrent(entry: Listed, data: bytes) -> Any:
    """The add_torrent_params of `data` (its `ti`, trackers and web seeds) when it is the
    torrent the entry lists; else TorrentRefused."""
    import libtorrent as lt

    try:
        meta = lt.bdecode(data)
    except RuntimeError:
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get(b"info"), dict):
        raise TorrentRefused("not a .torrent file")
    info = meta[b"info"]
    try:
        atp = lt.load_torrent_buffer(data)  # hashes the info dictionary's own bytes
    except RuntimeError as e:
        raise TorrentRefused(f"libtorrent cannot read it: {e}") from None
    hashes = atp.ti.info_hashes() if atp.ti is not None else None
    btih = str(hashes.v1) if hashes is not None and hashes.has_v1() else "none (v2 only)"
    if btih != entry.btih:
        raise TorrentRefused(f"its info-hash is {btih}, the list says {entry.btih}")
    name = info.get(b"name")
    if name != entry.name.encode():
        shown = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        raise TorrentRefused(f"it is named {shown!r}, the list says {entry.name!r}")
    files = info.get(b"files")
    if not isinstance(files, list) or not files:
        raise TorrentRefused("not a pack folder (a single-file torrent)")
    for f in files:
        path = f.get(b"path") if isinstance(f, dict) else None
        if not isinstance(path, list) or not path or not all(_component_ok(p) for p in path):
            raise TorrentRefused(f"a file name would escape the pack folder: {path!r}")
    return atp


def fetch_torrent(entry: Listed) -> tuple[bytes, Any]:
    """The .torrent's bytes and its add_torrent_params, checked against the entry."""
    data = read_bytes(entry.url, TORRENT_MAX_BYTES, ".torrent")
    return data, check_torrent(entry, data)


def _session(dht: bool) -> Any:
    import libtorrent as lt

    return lt.session(
        {
            "listen_interfaces": "0.0.0.0:0,[::]:0",
            "enable_dht": dht,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "user_agent": f"ccmirror-follow/{__version__} libtorrent/{lt.__version__}",
            "allow_multiple_connections_per_ip": True,
            "active_downloads": 1_000_000,
            "active_limit": 1_000_000,
            "alert_mask": lt.alert_category.status
            | lt.alert_category.error
            | lt.alert_category.storage,
        }
    )


def download(
    packs_dir: Path,
    jobs: list[Job],
    *,
    time_limit: float,
    dht: bool = True,
    on_progress: Callable[[Job], None] | None = None,
) -> None:
    """Download every job's payload into `packs_dir` until all are complete or the time is
    up; sets `done`, `progress` and `error` on each job."""
    import libtorrent as lt

    if not jobs:
        return
    packs_dir.mkdir(parents=True, exist_ok=True)
    ses = _session(dht)
    by_hash: dict[str, Job] = {}
    for job in jobs:
        atp = job.atp
        atp.save_path = str(packs_dir)
        atp.flags &= ~lt.torrent_flags.paused
        job.handle = ses.add_torrent(atp)
        by_hash[job.entry.btih] = job
    deadline = time.monotonic() + time_limit
    try:
        while time.monotonic() < deadline and not all(j.done or j.error for j in jobs):
            ses.wait_for_alert(250)
            for a in ses.pop_alerts():
                if isinstance(a, lt.torrent_error_alert | lt.file_error_alert):
                    job = by_hash.get(str(a.handle.info_hashes().v1))
                    if job is not None:
                        job.error = a.message()
            for job in jobs:
                if job.done or job.error:
                    continue
                st = job.handle.status()
                job.progress = st.progress
                if st.is_finished or st.state == lt.torrent_status.seeding:
                    job.done, job.progress = True, 1.0
                    job.handle.flush_cache()
                    if on_progress:
                        on_progress(job)
    finally:
        _close(ses, jobs)


def _close(ses: Any, jobs: list[Job]) -> None:
    """Remove every torrent and wait (briefly) until libtorrent closed their files."""
    import libtorrent as lt

    pending = 0
    for job in jobs:
        if job.handle is not None and job.handle.is_valid():
            ses.remove_torrent(job.handle)
            pending += 1
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        ses.wait_for_alert(200)
        pending -= sum(1 for a in ses.pop_alerts() if isinstance(a, lt.torrent_removed_alert))
    del ses
