"""Benchmark: `check` over N fetched real audio files (default 2,000 of 0.2 s each).

Builds a throwaway mirror (catalogue rows + real encoded files in store/, mixed formats and
tag conventions, a few conflicts and damaged files) and prints files per second for:

- a plain loop of `mutagen.File` over the files, one after the other (the baseline);
- our tag reading alone: `read_tags_batch` (every tag convention parsed, licences found)
  in the silent worker processes, chunk_size files a round trip, as `check` calls it;
- a plain loop of `mutagen.File` plus a full decode with soundfile (the decode baseline);
- our decode checks as `check` runs them in the workers: `read_tags_batch` with every
  file's audio decoded and its container checked;
- `check`'s first run: tags, a full decode of every file, verdicts, catalogue writes;
- `check`'s second run, which finds every file unchanged.

    .venv/bin/python bench/licence.py [--files 2000] [--seconds 0.2] [--keep DIR]

Fair by construction: the same files, read once before the rounds so that every loop finds
them in the page cache, and one untimed pass of each side (caches of the process and the
workers warm on both sides); each of --rounds rounds runs the four loops one after the other
(interleaved: a busy machine slows whichever runs then) and prints each with its files/s
(wall) and the CPU seconds it used (ours: this process and the worker processes, from
/proc/<pid>/task/*/schedstat in ns), the load average when the round began, then the min
and median over the rounds. On a busy machine each session gets its share of the cores
whatever its processes, so CPU per file says what wall time cannot. The plain loops run in
this process, one file after the other, with fd 2 on /dev/null as our workers have it
(libmpg123 prints warnings about the damaged files).

Targets: ours ahead of the plain loops on 2 cores (ratios printed); the second run over
20,000 unchanged files (`--files 20000`) in under 0.3 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mutagen
import soundfile as sf

from ccmirror.catalogue.db import transaction, utcnow
from ccmirror.licence import decode
from ccmirror.licence.check import WORKERS, check, chunk_size
from ccmirror.licence.tags import read_tags_batch
from ccmirror.mirror import open_mirror
from ccmirror.sample.audio import write_audio

KINDS = ("mp3", "flac", "ogg", "opus", "wav")
ROUNDS = 5
BYSA = "http://creativecommons.org/licenses/by-sa/3.0/"
TAGS = (
    {"license": BYSA},
    {"copyright": f"2010 Bench. Licensed to the public under {BYSA} verify at http://x.example/"},
    {"title": "no licence tag"},
    {"license": "https://creativecommons.org/licenses/by-nc/4.0/"},  # conflict
    {"copyright": "Attribution-ShareAlike 3.0 Unported", "isrc": "USRC17607839"},
)


def build(root: Path, n: int, seconds: float) -> Path:
    manifest = root / "bench.toml"
    manifest.write_text(
        f'[mirror]\nname = "bench"\ndata_dir = "{root / "data"}"\n\n'
        '[[source]]\nkind = "ia"\nquery = "collection:bench"\n',
        encoding="utf-8",
    )
    # One sample per (kind, tags); copies differ only in their place, as real files do not
    # need to differ for the reader's cost.
    samples: dict[tuple[str, int], bytes] = {}
    for k in KINDS:
        for t in range(len(TAGS)):
            p = write_audio(root / "samples" / f"{t}.{k}", seconds=seconds, seed=t, tags=TAGS[t])
            samples[(k, t)] = p.read_bytes()
    with open_mirror(manifest) as m, transaction(m.db) as db:
        for i in range(n):
            item = f"item{i // 10:05d}"
            if i % 10 == 0:
                db.execute(
                    "INSERT INTO items (source, source_id, licence_url, first_seen, harvested_at)"
                    " VALUES ('ia', ?, ?, ?, ?)",
                    (item, BYSA, utcnow(), utcnow()),
                )
            kind, t = KINDS[i % len(KINDS)], (i // len(KINDS)) % len(TAGS)
            data = samples[(kind, t)]
            if i % 97 == 0:
                data = data[: len(data) // 3]  # damaged download
            name = f"track{i:05d}.{kind}"
            rel = m.store_relpath("ia", item, name)
            path = m.abspath(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            db.execute(
                "INSERT INTO files (item_id, name, size, status, store_path, fetched_at)"
                " SELECT id, ?, ?, 'fetched', ?, ? FROM items WHERE source_id = ?",
                (name, len(data), rel, utcnow(), item),
            )
    return manifest


def _workers_cpu() -> float:
    """CPU seconds the decode worker processes have used so far (Linux /proc, in ns: the
    clock ticks of /proc/<pid>/stat are too coarse for a round of a few tenths)."""
    pool = decode._pool
    total = 0
    for pid in list(getattr(pool, "_processes", {}) or {}):
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
    return total / 1e9


def _cpu() -> float:
    return time.process_time() + _workers_cpu()


def _timed(fn, *a: object, **kw: object) -> tuple[float, float]:
    """(wall, CPU seconds of this process and the workers) of fn(*a, **kw)."""
    c, t = _cpu(), time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t, _cpu() - c


def _check_into(res: dict, m: object) -> None:
    res.update(check(m))


def _plain(paths: list[str], *, full: bool) -> float:
    """The naive loop: mutagen.File on each file (and, `full`, decode all its audio with
    the decoder and block size our workers use)."""
    t0 = time.perf_counter()
    for p in paths:
        try:
            mutagen.File(p)
            if full:
                with sf.SoundFile(p) as f:
                    while len(f.read(65536, dtype="int16", always_2d=True)):
                        pass
        except Exception:  # noqa: BLE001 - damaged files are part of the set
            pass
    return time.perf_counter() - t0


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """fd 2 on /dev/null, as the workers have it (libmpg123 warns on damaged files)."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _warm(paths: list[str]) -> None:
    """Every file read once: all loops find the same bytes in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


def _ours_tags(paths: list[str], *, full: bool = False) -> float:
    """Our tag reading as check runs it: chunk_size files a round trip, four threads a worker
    (`full`: every file's audio decoded too, as check's workers do)."""
    size = chunk_size(len(paths))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4 * WORKERS) as pool:
        got = sum(len(r) for r in pool.map(lambda c: read_tags_batch(c, verify_audio=full), chunks))
    dt = time.perf_counter() - t0
    if got != len(paths):
        raise SystemExit(f"tag reading saw {got} of {len(paths)} files")
    return dt


def _summary(rows: list[tuple[tuple[float, float], ...]], n: int) -> None:
    """Min and median over the rounds: files/s, CPU per file, and ours against plain."""
    print(f"over {len(rows)} rounds (min / median):")
    for label, o, p in (("tag reading", 1, 0), ("decode checks", 3, 2)):
        speed = [r[p][0] / r[o][0] for r in rows]
        cpu = [r[p][1] / r[o][1] for r in rows]
        for side, i in (("ours", o), ("plain", p)):
            fps = [n / r[i][0] for r in rows]
            us = [r[i][1] / n * 1e6 for r in rows]
            print(
                f"  {label:<14} {side:<5} {min(fps):7,.0f} / {statistics.median(fps):7,.0f}"
                f" files/s, {min(us):4.0f} / {statistics.median(us):4.0f} us CPU per file"
            )
        print(
            f"  {label:<14} ratio {min(speed):.2f}x / {statistics.median(speed):.2f}x files/s,"
            f" {min(cpu):.2f}x / {statistics.median(cpu):.2f}x CPU per file"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=0.2)
    ap.add_argument("--keep", type=Path, help="build the mirror here and keep it")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ccmirror-bench-licence-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        manifest = build(root, args.files, args.seconds)
        print(f"built {args.files} files in {time.perf_counter() - t0:.1f} s")
        paths = sorted(str(p) for p in (root / "data" / "store").rglob("*") if p.is_file())
        n = len(paths)
        _warm(paths)
        decode.call(os.path.abspath, paths[0], "")  # workers up, as in a run already going
        with _quiet_fd2():  # one untimed pass of each loop: both sides start warm
            _plain(paths, full=True)
            _ours_tags(paths, full=True)
        print(f"cores                  {os.cpu_count()} (workers {WORKERS})")
        rows = []
        for i in range(args.rounds):  # interleaved: a busy machine slows whichever runs then
            load = os.getloadavg()[0]
            with _quiet_fd2():
                row = (
                    _timed(_plain, paths, full=False),
                    _timed(_ours_tags, paths),
                    _timed(_plain, paths, full=True),
                    _timed(_ours_tags, paths, full=True),
                )
            rows.append(row)
            print(f"round {i + 1} (load {load:.2f})")
            for label, (ours, plain) in (("tag reading", (row[1], row[0])),
                                         ("decode checks", (row[3], row[2]))):  # fmt: skip
                print(
                    f"  {label:<14} ours {n / ours[0]:7,.0f} files/s {ours[1]:5.2f} s CPU"
                    f" ({ours[1] / n * 1e6:4.0f} us/file) | plain {n / plain[0]:7,.0f} files/s"
                    f" {plain[1]:5.2f} s CPU ({plain[1] / n * 1e6:4.0f} us/file)"
                    f" | {plain[0] / ours[0]:.2f}x files/s, {plain[1] / ours[1]:.2f}x CPU"
                )
        _summary(rows, n)
        plain_full = statistics.median(r[2][1] for r in rows)
        with open_mirror(manifest) as m:
            for label in ("first run", "second run"):
                res: dict = {}
                dt, cpu = _timed(_check_into, res, m)
                print(
                    f"check, {label:<10}  {args.files / dt:,.0f} files/s ({dt:.2f} s, {cpu:.2f} s"
                    f" CPU; checked {res['checked']}, unchanged {res['unchanged']},"
                    f" quarantined {res['quarantined']})"
                )
                if label == "first run":
                    print(f"  CPU against plain mutagen + decode (median): {plain_full / cpu:.2f}x")
            print("verdicts:", dict(sorted(res["verdicts"].items())))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
