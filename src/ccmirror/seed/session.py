"""The built-in seeder: one libtorrent session seeding every sealed pack of a mirror.

It reads the catalogue only (a read-only connection), so `sync` runs beside it under the
data dir's write lock; a separate lock (`<data_dir>/seed/lock`) keeps a second seeder of
the same data dir away. Torrents are added in upload mode: a seeder never writes into
`packs/`, whatever a damaged payload or a peer would make libtorrent want to download.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import libtorrent as lt

from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.packs import seedable_packs
from ccmirror.errors import CCMirrorError, UsageError
from ccmirror.mirror import Mirror
from ccmirror.seed.options import SeedOptions
from ccmirror.seed.resume import ResumeStore, torrent_key

log = logging.getLogger("ccmirror.seed")

__all__ = ["SAVE_RESUME_TIMEOUT", "SeedOptions", "Seeder"]

SAVE_RESUME_TIMEOUT = 30.0  # seconds to wait for libtorrent's resume data on shutdown
_STATES = {
    lt.torrent_status.checking_files: "checking",
    lt.torrent_status.downloading_metadata: "metadata",
    lt.torrent_status.downloading: "incomplete",  # upload mode: never actually downloads
    lt.torrent_status.finished: "incomplete",
    lt.torrent_status.seeding: "seeding",
    lt.torrent_status.checking_resume_data: "checking-resume",
}


@dataclass
class _Entry:
    name: str
    key: str
    ti: Any
    handle: Any
    source: str  # "resume data" or why a full check was needed
    resumed: bool
    checked_files: bool = False  # libtorrent hashed the payload (state checking_files)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Seeder:
    """Seeds the sealed, non-obsolete packs of `mirror` until stopped.

    `mirror` may be opened read-only; the seeder only reads `packs`.
    """

    def __init__(self, mirror: Mirror, options: SeedOptions | None = None) -> None:
        self.mirror = mirror
        self.options = options or SeedOptions()
        self.save_path = mirror.packs_dir
        self.seed_dir = mirror.data_dir / "seed"
        self.resume = ResumeStore(self.seed_dir, self.save_path)
        self.entries: dict[str, _Entry] = {}  # pack name -> entry
        self.by_handle: dict[Any, _Entry] = {}
        self.failed: dict[str, str] = {}  # pack name -> why it cannot be seeded
        self.session: Any = None
        self.started = time.monotonic()
        self.resume_saved = 0
        self.stopped = False

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.session = lt.session(self.options.settings())
        except RuntimeError as e:
            raise UsageError(f"cannot start the seeding session: {e}") from None
        self.started = time.monotonic()
        log.info("seeding from %s, listening on port %s", self.save_path, self.listen_port())
        self.rescan()
        if not self.entries and not self.failed:
            log.warning(
                "no sealed packs yet in %s: run 'ccmirror sync' (new packs are picked up"
                " every %gs)",
                self.mirror.data_dir,
                self.options.rescan_interval,
            )

    def listen_port(self) -> int:
        return int(self.session.listen_port()) if self.session is not None else 0

    def stop(self) -> None:
        """Pause, then save resume data of every checked torrent (once)."""
        if self.session is None or self.stopped:
            return
        self.stopped = True
        self.session.pause()
        self.save_resume(all_torrents=True, wait=SAVE_RESUME_TIMEOUT)

    def close(self) -> None:
        """Drop the session (libtorrent says goodbye to trackers)."""
        self.session = None

    # -- catalogue -------------------------------------------------------------------

    def rescan(self) -> dict[str, int]:
        """Add newly sealed packs, remove packs that became obsolete."""
        added = removed = 0
        wanted = {}
        for row in seedable_packs(self.mirror.db):
            if not row["obsolete"]:
                wanted[row["name"]] = row
        for name in list(self.entries):
            if name not in wanted:
                entry = self.entries.pop(name)
                self.by_handle.pop(entry.handle, None)
                if entry.handle.is_valid():
                    self.session.remove_torrent(entry.handle)
                self.resume.discard(entry.key)
                log.info("stopped seeding %s: obsolete", name)
                removed += 1
        for name in list(self.failed):
            if name not in wanted:
                del self.failed[name]
        for name, row in wanted.items():
            if name in self.entries:
                continue
            # Failed packs are tried again at every rescan (a sync may repair them);
            # the error is logged when it first appears or changes.
            try:
                self._add(row)
            except (CCMirrorError, OSError, RuntimeError, ValueError) as e:
                if self.failed.get(name) != str(e):
                    log.error("cannot seed %s: %s", name, e)
                self.failed[name] = str(e)
                continue
            if self.failed.pop(name, None) is not None:
                log.info("%s can be seeded now", name)
            added += 1
        return {"added": added, "removed": removed}

    def _add(self, row: sqlite3.Row) -> None:
        path = self.mirror.abspath(row["torrent_path"])
        repair = f"'ccmirror pack {self.mirror.manifest.path}' rebuilds it"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CCMirrorError(f"{path} is missing; {repair}") from None
        except OSError as e:
            raise CCMirrorError(f"cannot read {path}: {e.strerror or e}") from None
        try:
            ti = lt.torrent_info(lt.bdecode(data))
        except RuntimeError as e:
            raise CCMirrorError(f"{path} is damaged ({e}); {repair}") from None
        hashes = ti.info_hashes()
        if row["info_hash_v1"] and hashes.has_v1() and str(hashes.v1) != row["info_hash_v1"]:
            raise ValueError(
                f"{path} has info-hash {hashes.v1}, the catalogue says otherwise; {repair}"
            )
        if row["info_hash_v2"] and hashes.has_v2() and str(hashes.v2) != row["info_hash_v2"]:
            raise ValueError(
                f"{path} has v2 info-hash {hashes.v2}, the catalogue says otherwise; {repair}"
            )
        atp, source = self.resume.load(ti)
        resumed = atp is not None
        if atp is None:
            atp = lt.add_torrent_params()
            log.info("%s: %s, full check", row["name"], source)
        atp.ti = ti
        atp.save_path = str(self.save_path)
        atp.flags |= lt.torrent_flags.upload_mode | lt.torrent_flags.auto_managed
        atp.flags &= ~lt.torrent_flags.paused
        handle = self.session.add_torrent(atp)
        entry = _Entry(row["name"], torrent_key(hashes), ti, handle, source, resumed)
        self.entries[row["name"]] = entry
        self.by_handle[handle] = entry

    # -- alerts and resume data ------------------------------------------------------

    def _entry_for(self, handle: Any) -> _Entry | None:
        try:
            return self.by_handle.get(handle)
        except TypeError:  # an alert without a usable handle
            return None

    def pump(self, wait: float = 0.25) -> int:
        """Handle pending alerts (waiting up to `wait` s); return resume data files written."""
        written = 0
        if self.session.wait_for_alert(int(wait * 1000)) is None:
            return 0
        for a in self.session.pop_alerts():
            if isinstance(a, lt.state_changed_alert):
                entry = self._entry_for(a.handle)
                if entry and a.state == lt.torrent_status.checking_files:
                    entry.checked_files = True
            elif isinstance(a, lt.torrent_checked_alert):
                entry = self._entry_for(a.handle)
                if entry:
                    st = a.handle.status()
                    if st.progress < 1.0:
                        log.warning(
                            "%s: payload incomplete in %s (%.1f%% verified); seeding what is there",
                            entry.name,
                            self.save_path,
                            st.progress * 100,
                        )
            elif isinstance(a, lt.save_resume_data_alert):
                entry = self._entry_for(a.handle)
                if entry:
                    try:
                        self.resume.save(entry.ti, a.params)
                        written += 1
                        self.resume_saved += 1
                    except OSError as e:
                        log.error("%s: cannot write resume data: %s", entry.name, e)
            elif isinstance(a, lt.save_resume_data_failed_alert):
                written += 1  # answered, if only with an error: stop waiting for it
                log.warning("resume data not saved: %s", a.message())
            elif isinstance(a, lt.listen_failed_alert):
                log.error("%s", a.message())
            elif isinstance(a, lt.listen_succeeded_alert):
                log.info("%s", a.message())
            elif isinstance(a, lt.torrent_error_alert | lt.file_error_alert):
                entry = self._entry_for(a.handle)
                if entry:
                    entry.error = a.message()
                log.error("%s", a.message())
        return written

    def save_resume(self, *, all_torrents: bool, wait: float) -> int:
        """Ask for resume data of checked torrents (all, or only changed ones) and write it."""
        asked = 0
        for entry in self.entries.values():
            h = entry.handle
            if not h.is_valid():
                continue
            st = h.status()
            # Half-checked torrents would record missing pieces: keep the old file instead.
            if st.state in (
                lt.torrent_status.checking_files,
                lt.torrent_status.checking_resume_data,
            ):
                continue
            if all_torrents or h.need_save_resume_data():
                h.save_resume_data(lt.torrent_handle.flush_disk_cache)
                asked += 1
        answered = 0
        deadline = time.monotonic() + wait
        while answered < asked and time.monotonic() < deadline:
            answered += self.pump(0.2)
        if answered < asked:
            log.warning("resume data: %d of %d torrents did not answer", asked - answered, asked)
        return answered

    # -- status ----------------------------------------------------------------------

    def status(self, event: str = "status") -> dict[str, Any]:
        packs = []
        totals = {"peers": 0, "uploaded": 0, "upload_rate": 0}
        counts: dict[str, int] = {}
        live = [(e, e.handle.status()) for e in self.entries.values() if e.handle.is_valid()]
        # The state_changed alert of a check is posted before the state it leads to can be
        # read: handled now, a torrent read as seeding never hides that it was hashed.
        self.pump(0)
        for entry, st in live:
            state = _STATES.get(st.state, str(st.state))
            if st.errc.value() or entry.error:
                state = "error"
            if st.state == lt.torrent_status.downloading and st.progress >= 1.0:
                state = "seeding"
            counts[state] = counts.get(state, 0) + 1
            row = {
                "name": entry.name,
                "info_hash": entry.key,
                "state": state,
                "progress": round(st.progress, 4),
                "peers": st.num_peers,
                "uploaded": st.all_time_upload,
                "upload_rate": st.upload_rate,
                "resumed": entry.resumed,
                "checked_files": entry.checked_files,
            }
            if entry.error:
                row["error"] = entry.error
            packs.append(row)
            totals["peers"] += st.num_peers
            totals["uploaded"] += st.all_time_upload
            totals["upload_rate"] += st.upload_rate
        return {
            "event": event,
            "time": utcnow(),
            "uptime": round(time.monotonic() - self.started, 1),
            "listen_port": self.listen_port(),
            "save_path": str(self.save_path),
            "torrents": len(packs),
            "states": counts,
            **totals,
            "failed": len(self.failed),
            "failures": [{"name": n, "error": e} for n, e in sorted(self.failed.items())],
            "packs": packs,
            "options": asdict(self.options),
        }
