"""Benchmark: `check` over N fetched real audio files (default 2,000 of 0.2 s each).

Builds a throwaway mirror (catalogue rows + real encoded files in store/, mixed formats and
tag conventions, a few conflicts and damaged files), runs `check` twice and prints files per
second: the first run reads every file, the second finds them all unchanged.

    .venv/bin/python bench/licence.py [--files 2000] [--seconds 0.2] [--keep DIR]

Target: the second run over 20,000 unchanged files (`--files 20000`) in under 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ccmirror.audio import write_audio
from ccmirror.catalogue.db import transaction, utcnow
from ccmirror.licence.check import check
from ccmirror.mirror import open_mirror

KINDS = ("mp3", "flac", "ogg", "opus", "wav")
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
        with open_mirror(manifest) as m:
            for label in ("first run", "second run"):
                t0 = time.perf_counter()
                res = check(m)
                dt = time.perf_counter() - t0
                print(
                    f"{label}: {args.files / dt:,.0f} files/s ({dt:.2f} s; checked"
                    f" {res['checked']}, unchanged {res['unchanged']},"
                    f" quarantined {res['quarantined']})"
                )
            print("verdicts:", dict(sorted(res["verdicts"].items())))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
