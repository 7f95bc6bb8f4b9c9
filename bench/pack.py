"""Benchmark: `ccmirror pack` over >= 1 GiB of real audio against `mktorrent -t 2`.

Real WAV and FLAC files are written once with ccmirror.sample.audio into a cache folder
(default /tmp/ccmirror-bench-audio, or $CCMIRROR_BENCH_CACHE) together with their
md5/sha1/sha256, as a fetch would have recorded them. Each run builds a fresh mirror
whose store hard-links the cache, warms the page cache, then alternates:

  ours      ccmirror.packs.pack(seal_partial=True): payload tree + v1 torrent (threaded hashing)
  mktorrent mktorrent -t 2 over the very same payload folder, same piece size
  lt        libtorrent's single-threaded set_piece_hashes over the same files (reference)

and prints the best time of each, MB/s and the ratio ours/mktorrent (target >= 0.8x).

    .venv/bin/python bench/pack.py [--gib 1.0] [--repeat 3] [--keep] [--no-lt]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libtorrent as lt

from ccmirror.catalogue import transaction, utcnow
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.sample.audio import write_audio

SECONDS = 60.0  # one WAV minute is about 11.5 MB


def build_cache(cache: Path, gib: float) -> list[dict]:
    index = cache / "index.json"
    entries: list[dict] = json.loads(index.read_text()) if index.exists() else []
    total = sum(e["size"] for e in entries)
    target = int(gib * 1024**3)
    n = len(entries)
    if total < target:
        print(f"writing {(target - total) / 1e6:.0f} MB of audio into {cache} (once)", flush=True)
    while total < target:
        kind = "flac" if n % 8 == 7 else "wav"
        rel = f"album-{n // 10:03d}/track-{n:04d}.{kind}"
        path = write_audio(
            cache / rel, seconds=SECONDS, seed=n, tags={"title": f"Track {n}", "artist": "Bench"}
        )
        hs = {a: hashlib.new(a) for a in ("md5", "sha1", "sha256")}
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                for h in hs.values():
                    h.update(chunk)
        e = {"rel": rel, "size": path.stat().st_size} | {a: h.hexdigest() for a, h in hs.items()}
        entries.append(e)
        total += e["size"]
        n += 1
        index.write_text(json.dumps(entries))
    return entries


def make_mirror(work: Path, cache: Path, entries: list[dict]):
    manifest = work / "bench.toml"
    manifest.write_text(
        f'[mirror]\nname = "bench"\ndata_dir = "{work / "data"}"\n\n'
        '[[source]]\nkind = "ia"\nquery = "x"\nendpoint = "http://127.0.0.1:9"\n\n'
        '[tiers]\nshares = [1.0]\n\n[torrents]\npack_size = "1TiB"\ntrackers = ["http://127.0.0.1:6969/announce"]\n'
    )
    m = open_mirror(manifest)
    now = utcnow()
    with transaction(m.db):
        items: dict[str, int] = {}
        for e in entries:
            album, name = e["rel"].split("/")
            if album not in items:
                items[album] = m.db.execute(
                    "INSERT INTO items (source, source_id, title, creator, source_url,"
                    " licence_url, declared_licence_id, popularity, first_seen, harvested_at)"
                    " VALUES ('ia', ?, ?, 'Bench', ?, ?, 'CC-BY-4.0', ?, ?, ?)",
                    (
                        album,
                        f"Album {album}",
                        f"https://archive.org/details/{album}",
                        "https://creativecommons.org/licenses/by/4.0/",
                        1000 - len(items),
                        now,
                        now,
                    ),
                ).lastrowid
            rel = m.store_relpath("ia", album, name)
            dst = m.abspath(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(cache / e["rel"], dst)
            except OSError:
                shutil.copyfile(cache / e["rel"], dst)
            m.db.execute(
                "INSERT INTO files (item_id, name, size, md5, sha1, sha256, status, store_path,"
                " verdict, licence_id, licence_url) VALUES (?,?,?,?,?,?,'fetched',?,'verified',"
                " 'CC-BY-4.0', 'https://creativecommons.org/licenses/by/4.0/')",
                (items[album], name, e["size"], e["md5"], e["sha1"], e["sha256"], rel),
            )
    return m


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


def run_ours(work: Path, cache: Path, entries: list[dict]) -> tuple[float, dict, Path]:
    if (work / "data").exists():
        shutil.rmtree(work / "data")
    m = make_mirror(work, cache, entries)
    t0 = time.perf_counter()
    r = pack(m, seal_partial=True)
    dt = time.perf_counter() - t0
    p = m.db.execute("SELECT * FROM packs WHERE status = 'sealed'").fetchone()
    m.close()
    if len(r["sealed"]) != 1:
        sys.exit(f"expected one sealed pack, got {r['sealed']}")
    return dt, dict(p), work / "data" / "packs" / p["name"]


def run_mktorrent(payload: Path, piece: int, out: Path) -> float:
    out.unlink(missing_ok=True)
    exp = piece.bit_length() - 1
    t0 = time.perf_counter()
    subprocess.run(
        ["mktorrent", "-t", "2", "-l", str(exp), "-a", "http://127.0.0.1:6969/announce",
         "-o", str(out), str(payload)],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - t0


def run_lt(payload: Path, piece: int) -> float:
    files = sorted(
        (p.relative_to(payload.parent).as_posix(), p.stat().st_size)
        for p in payload.rglob("*")
        if p.is_file()
    )
    ct = lt.create_torrent([lt.create_file_entry(f, s) for f, s in files], piece, 64)
    t0 = time.perf_counter()
    lt.set_piece_hashes(ct, str(payload.parent))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="audio to pack (default 1 GiB)")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-lt", action="store_true", help="skip the set_piece_hashes reference")
    args = ap.parse_args()
    if not shutil.which("mktorrent"):
        sys.exit("mktorrent is not installed (apt-get install mktorrent)")
    cache = Path(os.environ.get("CCMIRROR_BENCH_CACHE", "/tmp/ccmirror-bench-audio"))
    cache.mkdir(parents=True, exist_ok=True)
    entries = build_cache(cache, args.gib)
    size = sum(e["size"] for e in entries)
    work = Path(tempfile.mkdtemp(prefix="ccmirror-bench-", dir=cache.parent))
    print(
        f"payload: {len(entries)} files, {size / 2**30:.2f} GiB; {os.cpu_count()} cores;"
        f" load average {os.getloadavg()[0]:.1f} (other work on the machine skews both)"
    )
    warm([cache / e["rel"] for e in entries])
    ours, mk, ref = [], [], []
    try:
        for i in range(args.repeat):
            dt, p, payload = run_ours(work, cache, entries)
            ours.append(dt)
            print(f"run {i + 1}: ccmirror pack  {dt:6.2f} s  {size / dt / 1e6:7.1f} MB/s"
                  f"  (piece {p['piece_size'] // 1024} KiB, btih {p['info_hash_v1']})", flush=True)  # fmt: skip
            dt = run_mktorrent(payload, p["piece_size"], work / "mk.torrent")
            mk.append(dt)
            ours_info = lt.bdecode((work / "data" / p["torrent_path"]).read_bytes())[b"info"]
            mk_info = lt.bdecode((work / "mk.torrent").read_bytes())[b"info"]
            same = ours_info[b"pieces"] == mk_info[b"pieces"]
            print(f"run {i + 1}: piece hashes identical to mktorrent's: {same}")
            print(
                f"run {i + 1}: mktorrent -t 2 {dt:6.2f} s  {size / dt / 1e6:7.1f} MB/s", flush=True
            )
        if not args.no_lt:
            dt = run_lt(payload, p["piece_size"])
            ref.append(dt)
            print(
                f"libtorrent set_piece_hashes (1 thread) {dt:6.2f} s  {size / dt / 1e6:7.1f} MB/s"
            )
        best_ours, best_mk = min(ours), min(mk)
        print(
            f"\nbest: ccmirror pack {best_ours:.2f} s ({size / best_ours / 1e6:.0f} MB/s),"
            f" mktorrent -t 2 {best_mk:.2f} s ({size / best_mk / 1e6:.0f} MB/s);"
            f" speed ratio ours/mktorrent = {best_mk / best_ours:.2f}x (target >= 0.8x)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
