"""Decode workers (and their forkserver) end when the run that started them is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ccmirror.catalogue import transaction, utcnow
from ccmirror.sample.audio import write_audio
from packhelpers import add_item, make_mirror


def _table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process now."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(d.name)] = (int(fields[1]), fields[0], fields[19])
    return out


def _descendants(root: int) -> dict[int, str]:
    """The live (not zombie) processes below `root`: pid -> start time."""
    table = _table()
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, state, start) in table.items():
            if ppid == parent and pid not in found and state != "Z":
                found[pid] = start
                todo.append(pid)
    return found


def _alive(procs: dict[int, str]) -> list[int]:
    table = _table()
    # The same process (its start time) and not a zombie (ended, not yet reaped).
    return [p for p, start in procs.items() if p in table and table[p][2] == start and table[p][1] != "Z"]  # fmt: skip


def test_killing_check_midway_leaves_no_worker_behind(tmp_path):
    mirror = make_mirror(tmp_path)
    # A long MP3: decoding each copy takes a while, so `check` is still at work when killed.
    sample = write_audio(tmp_path / "long.mp3", seconds=90.0, tags={"title": "long"})
    item = add_item(mirror, "ia", "album", popularity=1)
    with transaction(mirror.db):
        for i in range(40):
            name = f"{i:02d}.mp3"
            rel = mirror.store_relpath("ia", "album", name)
            dest = mirror.abspath(rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(sample, dest)
            mirror.db.execute(
                "INSERT INTO files (item_id, name, size, status, store_path, fetched_at)"
                " VALUES (?, ?, ?, 'fetched', ?, ?)",
                (item, name, sample.stat().st_size, rel, utcnow()),
            )
    manifest = mirror.manifest.path
    mirror.close()

    run = subprocess.Popen(
        [sys.executable, "-m", "ccmirror", "check", str(manifest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers: dict[int, str] = {}
        deadline = time.monotonic() + 120
        # The forkserver and at least one decoding worker below it.
        while time.monotonic() < deadline and run.poll() is None and len(workers) < 2:
            workers = _descendants(run.pid)
            time.sleep(0.05)
        assert run.poll() is None, "check ended before its workers were seen"
        assert len(workers) >= 2, workers
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait(timeout=30) == -signal.SIGKILL
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    # Bounded wait for the orphans to go: they must not outlive the run for long.
    deadline = time.monotonic() + 30
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _alive(workers)
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"worker processes outlived their run: {left}"
