"""`seed(mirror)`: one seeder per data dir, run until asked to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccmirror.errors import LockHeld
from ccmirror.lock import DataLock
from ccmirror.mirror import Mirror
from ccmirror.seed.options import SeedOptions
from ccmirror.seed.session import Seeder


def _seed_lock(data_dir: Path) -> DataLock:
    return DataLock(data_dir / "seed")


def seed(
    mirror: Mirror,
    *,
    options: SeedOptions | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Seed until `should_stop()` is true (or `options.duration` passed); return the last status.

    `on_status` receives a status dict at start, every `status_interval` seconds and at
    the end (`event`: started, status, stopped). Resume data is saved on the way out
    whatever ends the loop (a stop request, an exception, a signal turned exception).
    """
    options = options or SeedOptions()
    lock = _seed_lock(mirror.data_dir)
    try:
        lock.acquire()
    except LockHeld:
        raise LockHeld(
            f"another 'ccmirror seed' is already seeding {mirror.data_dir} ({lock.path})"
        ) from None
    seeder = Seeder(mirror, options)
    try:
        seeder.start()
        report = on_status or (lambda _s: None)
        report(seeder.status("started"))
        now = time.monotonic()
        next_status = now + options.status_interval
        next_rescan = now + options.rescan_interval
        next_resume = now + options.resume_interval
        end = now + options.duration if options.duration is not None else None
        while not should_stop():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            seeder.pump(0.25)
            if now >= next_rescan:
                seeder.rescan()
                next_rescan = now + options.rescan_interval
            if now >= next_resume:
                seeder.save_resume(all_torrents=False, wait=5.0)
                next_resume = now + options.resume_interval
            if now >= next_status:
                report(seeder.status())
                next_status = now + options.status_interval
        seeder.stop()
        final = seeder.status("stopped")
        final["resume_saved"] = seeder.resume_saved
        report(final)
        return final
    finally:
        try:
            seeder.stop()  # no-op after a clean stop; saves resume data after an exception
        finally:
            seeder.close()
            lock.release()
