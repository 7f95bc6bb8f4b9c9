"""Benchmark: how long `ccmirror seed` takes until every pack seeds, first start vs restart.

The first start has no resume data, so libtorrent hashes every pack; the seeder is then
stopped (resume data saved) and started again, which should seed at once without hashing.
Packs are random bytes (the seeder does not care what the payload is), laid out and
recorded in the catalogue as sealed packs, v1 torrents.

    .venv/bin/python bench/seed_restart.py                    # 16 packs of 32 MiB
    .venv/bin/python bench/seed_restart.py --packs 4 --size-mib 8

Prints one line per figure; `--json` prints them as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import libtorrent as lt

from ccmirror import catalogue
from ccmirror.mirror import open_mirror
from ccmirror.seed import SeedOptions, seed


def make_packs(data_dir: Path, packs: int, size: int) -> None:
    conn = catalogue.connect(data_dir / "catalogue.sqlite")
    (data_dir / "torrents").mkdir(parents=True)
    for n in range(1, packs + 1):
        name = f"bench-t1-{n:04d}"
        root = data_dir / "packs" / name / "ia" / f"item{n}"
        root.mkdir(parents=True)
        for k in range(4):
            (root / f"track{k}.bin").write_bytes(os.urandom(size // 4))
        ct = lt.create_torrent(
            lt.list_files(str(data_dir / "packs" / name)), 0, lt.create_torrent.v1_only
        )
        lt.set_piece_hashes(ct, str(data_dir / "packs"))
        data = lt.bencode(ct.generate())
        (data_dir / "torrents" / f"{name}.torrent").write_bytes(data)
        ih = str(lt.torrent_info(lt.bdecode(data)).info_hashes().v1)
        with catalogue.transaction(conn):
            conn.execute(
                "INSERT INTO packs (name, tier, seq, status, created_at, info_hash_v1,"
                " torrent_path) VALUES (?, 1, ?, 'sealed', ?, ?, ?)",
                (name, n, catalogue.utcnow(), ih, f"torrents/{name}.torrent"),
            )
    conn.close()


def time_to_seeding(manifest: Path, packs: int) -> dict:
    """Seconds from start until every pack seeds; whether libtorrent hashed any payload."""
    t0 = time.monotonic()
    done: list[float] = []
    last: list[dict] = []

    def on_status(s: dict) -> None:
        last[:] = [s]
        if not done and s["states"].get("seeding") == packs:
            done.append(time.monotonic() - t0)

    options = SeedOptions(
        interfaces=("127.0.0.1",), port=0, dht=False, status_interval=0.05, duration=600
    )
    with open_mirror(manifest, readonly=True) as mirror:
        seed(mirror, options=options, should_stop=lambda: bool(done), on_status=on_status)
    hashed = sum(p["checked_files"] for p in last[0]["packs"])
    return {"seconds": round(done[0], 3) if done else None, "packs_hashed": hashed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packs", type=int, default=16)
    ap.add_argument("--size-mib", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ccmirror-bench-seed-"))
    try:
        data_dir = tmp / "data"
        manifest = tmp / "mirror.toml"
        manifest.write_text(
            f'[mirror]\nname = "bench"\ndata_dir = "{data_dir}"\n\n[[source]]\nkind = "ia"\n'
            'query = "collection:bench"\nendpoint = "http://127.0.0.1:9"\n',
            encoding="utf-8",
        )
        make_packs(data_dir, args.packs, args.size_mib * 1024**2)
        first = time_to_seeding(manifest, args.packs)
        restart = time_to_seeding(manifest, args.packs)
        figures = {
            "packs": args.packs,
            "payload_mib": args.packs * args.size_mib,
            "first_start_seconds": first["seconds"],
            "first_start_packs_hashed": first["packs_hashed"],
            "restart_seconds": restart["seconds"],
            "restart_packs_hashed": restart["packs_hashed"],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for k, v in figures.items():
            print(f"{k:26} {v}")


if __name__ == "__main__":
    main()
