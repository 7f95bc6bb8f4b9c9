"""Benchmark: pack, publish, sync --dry-run and compact on a catalogue of N fetched items.

bench/scale.py's FMA catalogue has no fetched audio, so packing and compact have nothing to
do there. This builds, per size (default 100,000 and 1,000,000), a catalogue of N items
(power-law popularity) with one fetched, verified file each: every store file is a hard
link to one real MP3 (a copy of it per 20,000 links) (`ccmirror.sample.audio`), its checksums recorded as a fetch would,
catalogue rows inserted through the library's connection (migrations, triggers; the search
index rows set aside the way the FMA bulk loader does). Then, each as its own `ccmirror`
process, it measures wall time, CPU (user + system) and peak RSS (os.wait4):

    sync --dry-run, pack (every file assigned, full packs sealed), publish, compact (a
    manifest whose last tier is compact, every original already decided: compact's own
    ranking, derivatives and release passes, no transcode)

and the growth ratio between consecutive sizes (memory: should stay near 1.0).

`--code DIR` runs the steps with another checkout's `src` first on the path (e.g. main
before this work, `git archive <commit> src | tar -x -C DIR`), beside this one in the same
run: `--code DIR --code .` prints both. `--keep DIR` builds each size under DIR/<rows> once
and reuses it; pack and publish change the catalogue, so each code's run works on a copy
of the built catalogue (cp --reflink=auto), the store shared by hard links (kept in
DIR/<rows>/run/ for the next run).

    nice -n 5 .venv/bin/python bench/stream.py --keep /work/wt/stream-data --rows 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ccmirror.catalogue import connect, transaction, utcnow
from ccmirror.sample.audio import write_audio

BATCH = 10_000
# compact is a stage of sync, not a command of its own: the library call, in its own process
COMPACT = (
    "import sys\nfrom ccmirror.compact.run import compact\nfrom ccmirror.mirror import open_mirror\n"
    "with open_mirror(sys.argv[1]) as m:\n    compact(m)\n"
)


def write_manifests(root: Path) -> tuple[Path, Path]:
    data = root / "data"
    head = (
        f'[mirror]\nname = "stream"\ndata_dir = "{data}"\n\n'
        '[[source]]\nkind = "ia"\nquery = "collection:bench"\nendpoint = "http://127.0.0.1:9"\n\n'
        '[torrents]\npack_size = "4MiB"\nformat = "v1"\n'
        'trackers = ["http://127.0.0.1:6969/announce"]\n\n'
    )
    plain = root / "stream.toml"
    plain.write_text(head + "[tiers]\nshares = [0.5, 0.9, 1.0]\n")
    compact = root / "compact.toml"
    compact.write_text(
        head + '[tiers]\nshares = [0.5, 0.9, 1.0]\nquality = ["original", "original", "compact"]\n'
    )
    return plain, compact


def build(root: Path, rows: int, seed: int = 12) -> None:
    """N items, one fetched verified MP3 each (hard links to one file), in batches."""
    data = root / "data"
    (data / "store" / "ia").mkdir(parents=True, exist_ok=True)
    one = write_audio(root / "one.mp3", "mp3", seconds=0.05, seed=1, tags={"title": "x"})
    blob = one.read_bytes()
    sums = (
        len(blob),
        hashlib.md5(blob).hexdigest(),
        hashlib.sha1(blob).hexdigest(),
        hashlib.sha256(blob).hexdigest(),
    )
    db = connect(data / "catalogue.sqlite")
    rnd = random.Random(seed)
    lic = "https://creativecommons.org/licenses/by/4.0/"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    db.execute("INSERT OR REPLACE INTO bulk_load (id) VALUES (1)")
    for start in range(0, rows, BATCH):
        items, files = [], []
        for n in range(start + 1, min(rows, start + BATCH) + 1):
            sid = f"bench-{n:08d}"
            pop = float(int(1e6 / (n**0.9) * rnd.uniform(0.5, 1.5)))
            items.append((n, "ia", sid, f"Title {n}", f"Artist {n % 997}", f"Album {n % 4999}",
                          "2020-01-01", f"https://archive.org/details/{sid}", lic, "CC-BY-4.0",
                          int(pop), pop, utcnow(), utcnow()))  # fmt: skip
            rel = f"store/ia/{sid}/{sid}.mp3"
            dst = data / rel
            dst.parent.mkdir(exist_ok=True)
            if not dst.exists():  # ext4: 65,000 links a file; store, its copy, packs
                src = root / f"one-{n // 20_000}.mp3"
                if not src.exists():
                    shutil.copyfile(one, src)
                    os.utime(src, (time.time() - 60,) * 2)
                os.link(src, dst)
            files.append((n, n, f"{sid}.mp3", *sums, "mp3", f"http://127.0.0.1:9/{sid}.mp3",
                          "fetched", rel, now, "declared", "CC-BY-4.0", lic, "bench", now,
                          f"Song {n}"))  # fmt: skip
        with transaction(db):
            db.executemany(
                "INSERT INTO items (id, source, source_id, title, creator, album, date,"
                " source_url, licence_url, declared_licence_id, downloads, popularity, status,"
                " first_seen, harvested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'ok',?,?)",
                items,
            )
            db.executemany(
                "INSERT INTO files (id, item_id, name, size, md5, sha1, sha256, format, url,"
                " status, store_path, fetched_at, verdict, licence_id, licence_url,"
                " verdict_reason, checked_at, title) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                files,
            )
    with transaction(db):
        db.execute("DELETE FROM bulk_load")
        # compact's decision made already: every original kept as it is (no transcode here)
        db.execute("UPDATE files SET compact = 'original', compact_reason = 'bench'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    (root / "built").write_text(f"{rows}\n")


# Each step runs under this small launcher, which reports its child's rusage: a child's
# peak RSS starts from its parent's at the fork (Linux keeps the high-water mark across
# exec), and this bench process has read catalogues and outputs by then.
LAUNCH = (
    "import json, os, subprocess, sys\n"
    "with open(sys.argv[2], 'wb') as out:\n"
    "    p = subprocess.Popen(sys.argv[3:], stdout=out)\n"
    "    _, st, ru = os.wait4(p.pid, 0)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump([ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(st)], f)\n"
)


def run(code: Path | None, args: list[str], out: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit code) of one `ccmirror` process (its stdout
    written to `out`)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code / "src")
    stats = out.with_suffix(".rusage")
    cmd = [sys.executable, *(args if args[0] == "-c" else ["-m", "ccmirror", *args])]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", LAUNCH, str(stats), str(out), *cmd], env=env,
                   check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    cpu, rss, rc = json.loads(stats.read_text())
    stats.unlink()
    return wall, cpu, rss / 1024, rc


def workdir(root: Path) -> tuple[Path, Path, Path]:
    """A copy of the built catalogue for one code's run (store shared by hard links, kept
    from an earlier run: linking a million files takes minutes)."""
    work = root / "run"  # one for every code: they run one after the other
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for p in data.iterdir():
        if p.name != "store":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    if not (data / "store").is_dir():
        subprocess.run(["cp", "-al", str(root / "data" / "store"), str(data / "store")],
                       check=True)  # fmt: skip
    subprocess.run(["cp", "--reflink=auto", str(root / "data" / "catalogue.sqlite"),
                    str(data / "catalogue.sqlite")], check=True)  # fmt: skip
    plain, compact = write_manifests(work)
    return work, plain, compact


def measure(
    root: Path, rows: int, codes: list[Path | None], only: str | None, skip: str | None = None
) -> dict:
    if not (root / "built").exists():
        t0 = time.perf_counter()
        build(root, rows)
        print(f"\n{rows:,} items built in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"\n{rows:,} items: kept in {root}", flush=True)
    write_manifests(root)
    out: dict = {}
    for code in codes:
        label = "this" if code is None else code.name
        work, plain, compact = workdir(root)
        steps = {
            "sync --dry-run": ["sync", str(plain), "--dry-run", "--json"],
            "pack": ["pack", str(plain), "--json"],
            "publish": ["publish", str(plain), "--json"],
            "compact": ["-c", COMPACT, str(compact)],
        }
        for name, args in steps.items():
            if (only and only not in name) or (skip and skip in name):
                continue
            wall, cpu, rss, rc = run(code, args, root / f"out-{label}-{name.split()[0]}.json")
            out[(label, name)] = (wall, cpu, rss)
            print(f"  {label:<10} {name:<15} {wall:8.1f} s (CPU {cpu:7.1f} s) {rss:7.0f} MiB"
                  f"  exit {rc}", flush=True)  # fmt: skip
        # In a child: this process stays small, and a child's peak RSS counts its parent's
        # at the fork (Linux keeps the high-water mark across exec).
        with open(root / f"out-{label}-outcome.txt", "wb") as f:
            subprocess.run([sys.executable, __file__, "--outcome", str(work / "data")],
                           stdout=f, check=True)  # fmt: skip
        shutil.rmtree(work / "data" / "packs", ignore_errors=True)  # its links count
    return out


def outcome(data: Path) -> str:
    """What pack and publish made, without the clock's marks (creation dates, and so the
    info-hashes, differ between two runs): packs, their files, their generated files."""
    import sqlite3

    db = sqlite3.connect(data / "catalogue.sqlite")
    lines = [
        repr(r)
        for r in db.execute(
            "SELECT name, tier, seq, status, num_files, data_size, popularity FROM packs"
            " WHERE is_metadata = 0 ORDER BY name"
        )
    ]
    digest = hashlib.sha256()
    for r in db.execute(
        "SELECT p.name, pf.file_id, pf.path FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " ORDER BY p.name, pf.path"
    ):
        digest.update(repr(r).encode())
    lines.append(f"pack_files {digest.hexdigest()}")
    for top in sorted((data / "packs").glob("*/MANIFEST.csv")):
        h = hashlib.sha256(top.read_bytes() + (top.parent / "ATTRIBUTION.md").read_bytes())
        lines.append(f"{top.parent.name} {h.hexdigest()}")
    db.close()
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--outcome"]:
        sys.stdout.write(outcome(Path(sys.argv[2])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="catalogue size (repeatable)")
    ap.add_argument("--skip", help="leave out the steps whose name holds this")
    ap.add_argument("--keep", type=Path, required=True, help="build catalogues under DIR/<rows>")
    ap.add_argument("--code", action="append", help="a checkout's root ('.': this one)")
    ap.add_argument("--only", help="run only the steps whose name holds this")
    a = ap.parse_args()
    sizes = a.rows or [100_000, 1_000_000]
    here = Path(__file__).resolve().parent.parent
    codes = [None if Path(c).resolve() == here else Path(c).resolve() for c in a.code or ["."]]
    results = {n: measure(a.keep / str(n), n, codes, a.only, a.skip) for n in sizes}
    for lo, hi in zip(sizes, sizes[1:], strict=False):
        print(f"\ngrowth {lo:,} -> {hi:,} ({hi / lo:.0f}x items): CPU ratio / item ratio,"
              " peak RSS ratio")  # fmt: skip
        for key, (_, cpu, rss) in results[hi].items():
            if key in results[lo]:
                _, cpu0, rss0 = results[lo][key]
                print(f"  {key[0]:<10} {key[1]:<15} CPU x{cpu / cpu0 / (hi / lo):.2f} of linear,"
                      f" RSS x{rss / rss0:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
