"""Benchmark: `check` over N fetched real audio files (default 2,000 of 0.2 s each).

Builds a throwaway mirror (catalogue rows + real encoded files in store/, mixed formats and
tag conventions, a few conflicts and damaged files) and prints files per second for:

- a plain loop of `mutagen.File` over the files, one after the other (the baseline);
- our tag reading alone: `read_tags_batch` (every tag convention parsed, licences found)
  in the silent worker processes, CHUNK files a round trip, as `check` calls it;
- a plain loop of `mutagen.File` plus a full decode with soundfile (the decode baseline);
- our decode checks as `check` runs them in the workers: `read_tags_batch` with every
  file's audio decoded and its container checked;
- `check`'s first run: tags, a full decode of every file, verdicts, catalogue writes;
- `check`'s second run, which finds every file unchanged.

    .venv/bin/python bench/licence.py [--files 2000] [--seconds 0.2] [--keep DIR]

Each of ROUNDS rounds runs the four loops one after the other and prints them with the CPU
seconds each used (ours: this process and the worker processes): on a busy machine each
session gets its share of the cores whatever its processes, so files per CPU second say
what wall time cannot.

Targets: ours ahead of the plain loops on 2 cores (ratios printed); the second run over
20,000 unchanged files (`--files 20000`) in under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mutagen
import soundfile as sf

from ccmirror.catalogue.db import transaction, utcnow
from ccmirror.licence import decode
from ccmirror.licence.check import CHUNK, WORKERS, check
from ccmirror.licence.tags import read_tags_batch
from ccmirror.mirror import open_mirror
from ccmirror.sample.audio import write_audio

KINDS = ("mp3", "flac", "ogg", "opus", "wav")
ROUNDS = 3
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
    """CPU seconds the decode worker processes have used so far (Linux /proc)."""
    pool = decode._pool
    total = 0.0
    for pid in list(getattr(pool, "_processes", {}) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _cpu() -> float:
    return time.process_time() + _workers_cpu()


def _timed(fn, *a: object, **kw: object) -> tuple[float, float]:
    """(wall, CPU seconds of this process and the workers) of fn(*a, **kw)."""
    c, t = _cpu(), time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t, _cpu() - c


def _plain(paths: list[str], *, full: bool) -> float:
    """The naive loop: mutagen.File on each file (and, `full`, decode all its audio)."""
    t0 = time.perf_counter()
    for p in paths:
        try:
            mutagen.File(p)
            if full:
                with sf.SoundFile(p) as f:
                    while len(f.read(65536, dtype="int16")):
                        pass
        except Exception:  # noqa: BLE001 - damaged files are part of the set
            pass
    return time.perf_counter() - t0


def _ours_tags(paths: list[str], *, full: bool = False) -> float:
    """Our tag reading as check runs it: CHUNK files a round trip, four threads a worker
    (`full`: every file's audio decoded too, as check's workers do)."""
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4 * WORKERS) as pool:
        got = sum(len(r) for r in pool.map(lambda c: read_tags_batch(c, verify_audio=full), chunks))
    dt = time.perf_counter() - t0
    if got != len(paths):
        raise SystemExit(f"tag reading saw {got} of {len(paths)} files")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=0.2)
    ap.add_argument("--keep", type=Path, help="build the mirror here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ccmirror-bench-licence-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        manifest = build(root, args.files, args.seconds)
        print(f"built {args.files} files in {time.perf_counter() - t0:.1f} s")
        paths = sorted(str(p) for p in (root / "data" / "store").rglob("*") if p.is_file())
        n = len(paths)
        decode.call(os.path.abspath, paths[0], "")  # workers up, as in a run already going
        print(f"cores                  {os.cpu_count()} (workers {WORKERS})")
        rows = []
        for _ in range(ROUNDS):  # interleaved: a busy machine slows whichever runs then
            rows.append(
                (
                    _timed(_plain, paths, full=False),
                    _timed(_ours_tags, paths),
                    _timed(_plain, paths, full=True),
                    _timed(_ours_tags, paths, full=True),
                )
            )
        labels = ("plain mutagen.File", "ours, tag reading", "plain mutagen + decode",
                  "ours, decode checks")  # fmt: skip
        for i, label in enumerate(labels):
            runs = [r[i] for r in rows]
            line = "; ".join(f"{n / w:,.0f} files/s ({c:.2f} s CPU)" for w, c in runs)
            if i % 2:
                ratios = [r[i - 1][0] / r[i][0] for r in rows]
                line += "  ratios " + " ".join(f"{x:.2f}x" for x in ratios)
            print(f"{label:<23}{line}")
        plain_full = min(r[2][0] for r in rows)
        with open_mirror(manifest) as m:
            for label in ("first run", "second run"):
                t0 = time.perf_counter()
                res = check(m)
                dt = time.perf_counter() - t0
                print(
                    f"check, {label:<10}  {args.files / dt:,.0f} files/s ({dt:.2f} s; checked"
                    f" {res['checked']}, unchanged {res['unchanged']},"
                    f" quarantined {res['quarantined']})"
                )
                if label == "first run":
                    print(f"  against plain mutagen + decode: {plain_full / dt:.2f}x")
            print("verdicts:", dict(sorted(res["verdicts"].items())))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
