"""Benchmark: a second `ccmirror sync` over an unchanged mirror of 20,000 files (target <= 5 s).

Builds a loopback IA archive of tiny real WAV files (distinct PCM per file, written with
the stdlib `wave` module: cheap to make, every one a valid RIFF/WAVE that mutagen reads),
runs the real `ccmirror sync` CLI once to a steady state, then times a second run: the
wall-clock of the whole command, as cron sees it, and each stage's own seconds.

    .venv/bin/python bench/noop_sync.py                  # 20,000 files, 10 per item
    .venv/bin/python bench/noop_sync.py --files 2000      # a quick look

Prints one line per figure; `--json` prints them as one JSON document.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from ccmirror.sample.archive import IAServer

TARGET_SECONDS = 5.0
CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def tiny_wav(n: int, frames: int = 64) -> bytes:
    """A real mono 8 kHz 16-bit WAV whose samples depend on `n` (so every file differs)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        samples = [((n * 7919 + i * 104729) % 20000) - 10000 for i in range(frames)]
        w.writeframes(struct.pack(f"<{frames}h", *samples))
    return buf.getvalue()


def build_archive(server: IAServer, files: int, per_item: int) -> int:
    items = (files + per_item - 1) // per_item
    n = 0
    for i in range(items):
        count = min(per_item, files - n)
        server.add_item(
            f"bench-{i:06d}",
            {
                "title": f"Bench item {i}",
                "creator": f"Artist {i % 97}",
                "collection": ["netlabels"],
                "licenseurl": CC_BY,
            },
            {f"track-{j:02d}.wav": tiny_wav(n + j) for j in range(count)},
            # A steep popularity curve, so there are several tiers.
            downloads=int(1_000_000 / (i + 1)),
        )
        n += count
    return items


def run_sync(manifest: Path) -> tuple[float, dict]:
    env = dict(os.environ)
    env.pop("CCMIRROR_DATA_DIR", None)
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "ccmirror", "sync", str(manifest), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"sync exited {r.returncode}")
    return wall, json.loads(r.stdout)


def counts(data_dir: Path) -> tuple[int, ...]:
    conn = sqlite3.connect(f"file:{data_dir / 'catalogue.sqlite'}?mode=ro", uri=True)
    try:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("items", "files", "packs", "pack_files")
        )
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--per-item", type=int, default=10)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="noop-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        server = IAServer()
        t0 = time.monotonic()
        items = build_archive(server, args.files, args.per_item)
        build = time.monotonic() - t0
        with server:
            manifest = work / "bench.toml"
            manifest.write_text(
                f"""[mirror]
name = "bench"
data_dir = "{work / "data"}"

[[source]]
kind = "ia"
query = "collection:netlabels"
endpoint = "{server.url}"

[torrents]
pack_size = "4MiB"
trackers = ["udp://127.0.0.1:6969/announce"]
""",
                encoding="utf-8",
            )
            first_wall, first = run_sync(manifest)
            before = counts(work / "data")
            state1 = (work / "data" / "sync-state.json").read_text()
            second_wall, second = run_sync(manifest)
            after = counts(work / "data")
            state2 = (work / "data" / "sync-state.json").read_text()
            if args.keep:  # for a closer look at what each run did
                (work / "first.json").write_text(json.dumps(first, indent=2))
                (work / "second.json").write_text(json.dumps(second, indent=2))
        figures = {
            "files": args.files,
            "items": items,
            "build_seconds": round(build, 2),
            "first_sync_seconds": round(first_wall, 2),
            "second_sync_seconds": round(second_wall, 2),
            "second_sync_stage_seconds": {k: v.get("seconds") for k, v in second["stages"].items()},
            "target_seconds": TARGET_SECONDS,
            "met": second_wall <= TARGET_SECONDS,
            "unchanged": before == after,
            # A no-op run skips publish: nothing it publishes changed since the last run.
            "second_sync_republished": state1 != state2,
            "rows_items_files_packs_packfiles": list(after),
        }
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print(f"mirror: {args.files} files in {items} items (built in {build:.1f}s)")
            print(f"first sync:  {first_wall:.2f}s")
            stages = ", ".join(
                f"{k} {v:.2f}s" for k, v in figures["second_sync_stage_seconds"].items()
            )
            print(f"second sync: {second_wall:.2f}s wall ({stages})")
            print(
                f"target <= {TARGET_SECONDS:.0f}s: {'met' if figures['met'] else 'MISSED'};"
                f" catalogue {'unchanged' if before == after else 'CHANGED'};"
                f" publish {'ran again' if state1 != state2 else 'skipped'}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
