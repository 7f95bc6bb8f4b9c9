"""Benchmark: a catalogue of N FMA tracks, built through the real harvest path.

For each N (default 250,000 and 1,000,000; add 10,000,000 on request) this writes
fma_metadata.zip with raw_tracks.csv in the dataset's 39-column layout (synthetic values:
power-law listens, real-world bit rates and durations; audio from an audio_base_url, so
nothing is fetched), then runs every step of issue 12's table as its own `ccmirror`
process and prints wall time and that process's peak RSS (os.wait4):

    first harvest, harvest again (nothing changed), harvest again with one row changed
    (the zip rewritten with one track's listens moved: the whole-input skip cannot apply,
    every row goes through the per-row compare), tiers, plan --budget 2TB, status, search

then the growth ratio of each figure between consecutive sizes (time ratio / row ratio:
1.0 means linear; the memory ratio should stay near 1.0: flat in catalogue size).

The harvest rows are printed beside a floor measured in the same run, on the same zip:
`csv.reader` over the decompressed member doing nothing, and the same loop plus a plain
executemany of three columns into a bare table (one transaction per 10,000 rows): what
any harvest of this file must pay. The ratio says how far the real path is above it.

Each query step is run beside its baseline, in the same run on the same catalogue: a bare
process with only the sqlite3 module doing the least SQL that step's figures need (tiers
and plan: one window over the items by popularity with their files' bytes; status: items
and files grouped by status; search: the FTS5 MATCH with a LIMIT), and `ccmirror
--version` (the command line's start-up alone). The ratio says what ccmirror costs over
SQLite itself. `--keep DIR` builds each size's catalogue under DIR/<rows> once and reuses
it (no metadata written, no harvest) on later runs.

    nice .venv/bin/python bench/scale.py                    # 250k and 1M
    nice .venv/bin/python bench/scale.py --rows 10000000    # one size
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fmahelpers import BY_4, BY_NC_SA_3, CC0, COLUMNS, FMA_LIMITED, track_row  # noqa: E402

TARGETS = {  # issue 12: (seconds, MiB) at 1M and at 10M; None: no target
    "floor: csv.reader": ("baseline", ""),
    "floor: + executemany": ("baseline", ""),
    "first harvest": ("rows/s >= 50k", "<= 512 MiB at 10M"),
    "harvest again": ("rows/s >= 100k", "<= 512 MiB at 10M"),
    "harvest again, one row changed": ("rows/s >= 100k", "<= 512 MiB at 10M"),
    "tiers": ("<= 5 s (1M), 30 s (10M)", "<= 256 MiB (1M), 512 (10M)"),
    "plan --budget 2TB": ("<= 5 s (1M), 30 s (10M)", "<= 256 MiB (1M), 512 (10M)"),
    "status": ("<= 3 s (1M), 20 s (10M)", ""),
    "search": ("<= 0.2 s (1M), 0.5 s (10M)", ""),
}
# The least SQL each query step's figures need, run by a bare sqlite3 process.
RANK_WINDOW = (
    "SELECT count(*), max(cum) FROM (SELECT sum(coalesce(f.size, f.est_size, 0)) OVER"
    " (PARTITION BY i.source ORDER BY i.popularity DESC, i.id ROWS UNBOUNDED PRECEDING) AS cum"
    " FROM items AS i JOIN files AS f ON f.item_id = i.id WHERE i.status = 'ok')"
)
BASELINES = {
    "tiers": [RANK_WINDOW],
    "plan --budget 2TB": [RANK_WINDOW],
    "status": [
        "SELECT status, count(*) FROM items GROUP BY status",
        "SELECT status, count(*), sum(size) FROM files GROUP BY status",
    ],
    "search": [
        'SELECT rowid FROM items_fts WHERE items_fts MATCH \'"Track"* "4242"*\''
        " ORDER BY rank LIMIT 20"
    ],
}
BARE = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True)\n"
    "for sql in sys.argv[2:]:\n"
    "    db.execute(sql).fetchall()\n"
    "print('{}')\n"
)
LICENCES = [BY_NC_SA_3, BY_4, CC0, FMA_LIMITED]
BIT_RATES = ["320000", "256000", "192000", "128000", "0"]  # 0: unknown (no estimate)


def write_metadata(path: Path, rows: int, seed: int = 12) -> None:
    """fma_metadata.zip with raw_tracks.csv streamed into it (deflate, level 1: the
    dataset ships bzip2, whose decompression would dominate what is measured here)."""
    rnd = random.Random(seed)
    zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    with zf, zf.open("fma_metadata/raw_tracks.csv", "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        w = csv.writer(text, lineterminator="\r\n")
        w.writerow(COLUMNS)
        for i in range(2, rows + 2):
            seconds = rnd.randint(30, 900)
            row = track_row(
                i,
                licence=LICENCES[i % len(LICENCES)],
                track_listens=int(rnd.paretovariate(1.1) * 20),
                track_bit_rate=BIT_RATES[i % len(BIT_RATES)],
                track_duration=f"{seconds // 60:02d}:{seconds % 60:02d}",
                track_information=f'About track {i}, "quoted"',
            )
            w.writerow([row[c] for c in COLUMNS])
        text.flush()
        text.detach()


def change_one_row(path: Path, track_id: int) -> None:
    """Rewrite the zip with one track's listens one higher, every other byte the same:
    the input is no longer the last harvest's (no whole-input skip), and the per-row
    path finds the one row that differs."""
    part = path.with_name(path.name + ".part")
    member = "fma_metadata/raw_tracks.csv"
    with zipfile.ZipFile(path) as src, src.open(member) as raw:
        out = zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        with out, out.open(member, "w", force_zip64=True) as dst:
            header = raw.readline()
            dst.write(header)
            listens = next(csv.reader([header.decode()])).index("track_listens")
            prefix = f"{track_id},".encode()
            for line in raw:
                if line.startswith(prefix):
                    fields = next(csv.reader([line.decode()]))
                    fields[listens] = str(int(fields[listens]) + 1)
                    text = io.StringIO()
                    csv.writer(text, lineterminator="\r\n").writerow(fields)
                    line = text.getvalue().encode()
                dst.write(line)
    os.replace(part, path)


def run(args: list[str], bare: bool = False) -> tuple[float, float, str, float]:
    """(seconds, peak RSS MiB, stdout, CPU seconds) of one `ccmirror` process (os.wait4:
    its own rusage, not the maximum over every child so far; `bare`: `args` are a
    baseline's catalogue and SQL, run by a process without ccmirror). On a shared box
    the CPU seconds say what a quiet one would take."""
    cmd = ["-c", BARE, *args] if bare else ["-m", "ccmirror", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, *cmd], stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if code not in (0, 1) or not text.startswith("{"):
            raise SystemExit(f"ccmirror {' '.join(args)} failed ({code}): {err.read()[-2000:]}")
        return elapsed, usage.ru_maxrss / 1024, text, usage.ru_utime + usage.ru_stime


FLOOR_SCRIPT = """
import csv, io, json, os, resource, sqlite3, sys, time, zipfile
meta, db_path, mode = sys.argv[1:4]
t0, c0 = time.perf_counter(), time.process_time()
db = sqlite3.connect(db_path, isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = NORMAL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, title TEXT, listens TEXT)")
n, batch = 0, []
with zipfile.ZipFile(meta) as zf, zf.open("fma_metadata/raw_tracks.csv") as raw:
    reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    header = next(reader)
    i, j, k = header.index("track_id"), header.index("track_title"), header.index("track_listens")
    for row in reader:
        n += 1
        if mode == "write":
            batch.append((int(row[i]), row[j], row[k]))
            if len(batch) == 10000:
                db.execute("BEGIN")
                db.executemany("INSERT INTO t VALUES (?, ?, ?)", batch)
                db.execute("COMMIT")
                batch = []
if batch:
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", batch)
    db.execute("COMMIT")
print(json.dumps({"rows": n}))
"""


def floor(meta: Path, tmp: Path, mode: str) -> tuple[float, float, float]:
    """(seconds, peak RSS MiB, CPU seconds) of the floor loop (`read` or `write`)."""
    db = tmp / f"floor-{mode}.sqlite"
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            [sys.executable, "-c", FLOOR_SCRIPT, str(meta), str(db), mode], stdout=out
        )
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"floor {mode} failed")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def measure(
    rows: int, tmp: Path, only: str | None = None
) -> dict[str, tuple[float, float, str, float]]:
    meta = tmp / "fma_metadata.zip"
    built = (tmp / "data" / "catalogue.sqlite").exists()  # kept from an earlier run (--keep)
    if built:
        print(f"\n{rows:,} rows: the catalogue kept in {tmp}", flush=True)
    else:
        t0 = time.perf_counter()
        write_metadata(meta, rows)
        print(f"\n{rows:,} rows: fma_metadata.zip {meta.stat().st_size / 2**20:.0f} MiB"
              f" (written in {time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    manifest = tmp / "fma.toml"
    manifest.write_text(
        f'[mirror]\nname = "scale"\ndata_dir = "{tmp / "data"}"\n\n'
        f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\n'
        'audio_base_url = "http://127.0.0.1:9/"\n'
    )
    m = str(manifest)
    out = {}
    floors = (("read", "floor: csv.reader"), ("write", "floor: + executemany"))
    for mode, name in floors if not built and (not only or "harvest" in only) else ():
        secs, rss, cpu = floor(meta, tmp, mode)
        out[name] = (secs, rss, f"{rows / secs:,.0f} rows/s", cpu)
        print(f"  {name:<31} {secs:8.1f} s (CPU {cpu:6.1f} s)  {rss:6.0f} MiB  {out[name][2]}",
              flush=True)  # fmt: skip
    steps = {
        "first harvest": ["harvest", m, "--json"],
        "harvest again": ["harvest", m, "--json"],
        "harvest again, one row changed": ["harvest", m, "--json"],
        "tiers": ["tiers", m, "--json"],
        "plan --budget 2TB": ["plan", m, "--budget", "2TB", "--json"],
        "status": ["status", m, "--json"],
        "search": ["search", m, "Track 4242", "--json"],
    }
    if built:
        del steps["first harvest"], steps["harvest again"]
        del steps["harvest again, one row changed"]
    if not only or any(only in name for name in BASELINES):
        _startup(out)
    for name, args in steps.items():
        if only and only not in name:
            continue
        if name == "harvest again, one row changed":
            change_one_row(meta, rows // 2)
        secs, rss, text, cpu = run(args)
        detail = _detail(name, text, rows, secs)
        if "harvest" in name:
            base, read = out["floor: + executemany"], out["floor: csv.reader"]
            detail += f"; {rows / cpu:,.0f} rows/s CPU (csv.reader {rows / read[3]:,.0f})"
            detail += f"; x{secs / base[0]:.1f} the floor's time (CPU x{cpu / base[3]:.1f})"
        out[name] = (secs, rss, detail, cpu)
        print(f"  {name:<31} {secs:8.1f} s (CPU {cpu:6.1f} s)  {rss:6.0f} MiB  {out[name][2]}",
              flush=True)  # fmt: skip
        if name in BASELINES:
            _baseline(out, name, tmp / "data" / "catalogue.sqlite")
    return out


def _startup(out: dict[str, tuple[float, float, str, float]]) -> None:
    """`ccmirror --version`: what every command pays before its work (imports, click)."""
    with tempfile.TemporaryFile("w+") as devnull:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "ccmirror", "--version"], stdout=devnull)
        _, _, usage = os.wait4(p.pid, 0)
    secs, cpu = time.perf_counter() - t0, usage.ru_utime + usage.ru_stime
    out["start-up"] = (secs, usage.ru_maxrss / 1024, "ccmirror --version", cpu)
    print(f"  {'start-up':<31} {secs:8.1f} s (CPU {cpu:6.1f} s)"
          f"  {out['start-up'][1]:6.0f} MiB  ccmirror --version", flush=True)  # fmt: skip


def _baseline(out: dict[str, tuple[float, float, str, float]], step: str, db: Path) -> None:
    """The bare sqlite3 process of `step` (BASELINES), with ccmirror's ratio to it."""
    secs, rss, _, cpu = run([str(db), *BASELINES[step]], bare=True)
    real = out[step]
    detail = f"bare sqlite3; ccmirror x{real[0] / secs:.1f} its time (CPU x{real[3] / cpu:.1f})"
    out[f"baseline: {step}"] = (secs, rss, detail, cpu)
    print(f"    {'baseline':<29} {secs:8.1f} s (CPU {cpu:6.1f} s)  {rss:6.0f} MiB  {detail}",
          flush=True)  # fmt: skip


def _detail(name: str, text: str, rows: int, secs: float) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return ""
    if "harvest" in name:
        skipped = [s["skipped_pass"] for s in doc.get("sources", []) if s.get("skipped_pass")]
        return (
            f"{rows / secs:,.0f} rows/s; new {doc.get('new')}, updated {doc.get('updated')},"
            f" unchanged {doc.get('unchanged')}" + ("; row pass skipped" if skipped else "")
        )
    if name == "plan --budget 2TB":
        return (
            f"bytes {doc['bytes']:,} (estimated {doc.get('estimated_bytes', 0):,}),"
            f" total_bytes {doc['total_bytes']:,}, cut tier {doc['cut_tier']}"
        )
    if name == "tiers":
        return f"{len(doc['tiers'])} tiers, estimated bytes {doc.get('estimated_bytes', 0):,}"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="catalogue size (repeatable)")
    ap.add_argument("--only", help="run only the steps whose name holds this (e.g. harvest)")
    ap.add_argument(
        "--keep",
        type=Path,
        help="build each size's catalogue under KEEP/<rows> and keep it; a catalogue kept"
        " there is reused (no metadata written, no harvest)",
    )
    args = ap.parse_args()
    sizes = args.rows or [250_000, 1_000_000]
    results = {}
    for n in sizes:
        if args.keep:
            (args.keep / str(n)).mkdir(parents=True, exist_ok=True)
            results[n] = measure(n, args.keep / str(n), args.only)
            continue
        with tempfile.TemporaryDirectory(prefix="ccmirror-scale-") as tmp:
            results[n] = measure(n, Path(tmp), args.only)
    print(
        "\n| step | " + " | ".join(f"{n:,}" for n in sizes) + " | target (time) | target (memory) |"
    )
    print("|---|" + "---|" * (len(sizes) + 2))
    steps = [s for s in TARGETS if all(s in results[n] for n in sizes)]
    rows = ["start-up"] + [x for s in steps for x in (s, f"baseline: {s}")]
    for step in [s for s in rows if all(s in results[n] for n in sizes)]:
        cells = [
            f"{results[n][step][0]:.1f} s (CPU {results[n][step][3]:.1f} s),"
            f" {results[n][step][1]:.0f} MiB"
            for n in sizes
        ]
        print(
            f"| {step} | " + " | ".join(cells) + f" | {' | '.join(TARGETS.get(step, ('', '')))} |"
        )
    for a, b in zip(sizes, sizes[1:], strict=False):
        print(f"\ngrowth {a:,} -> {b:,} ({b / a:.0f}x rows): time ratio / rows ratio, memory ratio")
        for step in steps:
            ta, ma = results[a][step][:2]
            tb, mb = results[b][step][:2]
            print(f"  {step:<31} time x{tb / ta:6.2f} ({tb / ta / (b / a):.2f} of linear)"
                  f"  memory x{mb / ma:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
