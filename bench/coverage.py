"""Benchmark: the share of listening 10%, 25% and 50% of the full size buys, with and
without compact tiers.

Two catalogues:

- the demo's sample archive, synced for real with compact tiers (its copies are real Opus
  transcodes, sizes measured);
- a synthetic catalogue of 100,000 recordings with real-world sizes: FMA tracks as MP3 at
  128-320 kbit/s, IA albums as FLAC (~900 kbit/s, with IA's VBR MP3 and Ogg Vorbis
  derivatives) or VBR MP3, playing times log-normal around 4 minutes, popularity heavy
  tailed (Pareto); compact sizes are the plan's estimates (derivative, else playing time x
  bitrate).

"Full size" is every recording in its original format. The baseline (all tiers original)
and the compact layouts are planned side by side on the same catalogue, by the same
`tiers.plan` that `sync` applies for a `[mirror] budget`.

    .venv/bin/python bench/coverage.py [--recordings N] [--bitrate 96k] [--skip-demo]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from ccmirror import catalogue
from ccmirror.catalogue import transaction
from ccmirror.manifest import CompactConfig, TiersConfig, load_manifest, parse_bitrate
from ccmirror.mirror import Mirror
from ccmirror.sizes import format_size
from ccmirror.tiers import plan

FRACTIONS = (0.10, 0.25, 0.50)
SHARES = (0.5, 0.9, 0.99, 1.0)
LAYOUTS = {
    "originals only": (),
    "compact from tier 3": ("original", "original", "compact", "compact"),
    "compact from tier 2": ("original", "compact", "compact", "compact"),
}
NOW = "2026-01-01T00:00:00Z"


def _mirror(mirror: Mirror, quality: tuple[str, ...], bitrate: int) -> Mirror:
    m = dataclasses.replace(
        mirror.manifest, tiers=TiersConfig(SHARES, quality), compact=CompactConfig(bitrate)
    )
    return Mirror(m, mirror.db)


def table(name: str, mirror: Mirror, bitrate: int) -> dict[str, dict[str, float]]:
    """Share of listening per budget fraction, per layout; printed as one block."""
    t0 = time.perf_counter()
    full = plan(_mirror(mirror, (), bitrate), 0, sealed_first=False)["total_original_bytes"]
    out: dict[str, dict[str, float]] = {}
    for layout, quality in LAYOUTS.items():
        m = _mirror(mirror, quality, bitrate)
        row = {}
        for f in FRACTIONS:
            r = plan(m, int(full * f), sealed_first=False)
            row[f"{int(f * 100)}%"] = r["popularity_share"]
        row["all"] = plan(m, full * 4, sealed_first=False)["total_bytes"] / full
        out[layout] = row
    secs = time.perf_counter() - t0
    print(f"\n{name}: full size {format_size(full)} ({secs:.1f} s for {len(LAYOUTS) * 4} plans)")
    print(
        f"  {'layout':22} " + "".join(f"{k:>16}" for k in ("10%", "25%", "50%")) + "   all fits in"
    )
    base = out["originals only"]
    for layout, row in out.items():
        cells = []
        for k in ("10%", "25%", "50%"):
            gain = (
                ""
                if layout == "originals only"
                else (f" (x{row[k] / base[k]:.2f})" if base[k] else " (-)")
            )
            cells.append(f"{100 * row[k]:.1f}%{gain}")
        print(
            f"  {layout:22} " + "".join(f"{c:>16}" for c in cells) + f"   {100 * row['all']:.0f}%"
        )
    return out


def demo_catalogue(folder: Path, bitrate: int) -> Mirror:
    """The demo's sample archive, synced with compact tiers from tier 2 (real copies)."""
    from ccmirror.demo import demo_manifest
    from ccmirror.sample.archive import IAServer
    from ccmirror.sample.demo_items import build_sample
    from ccmirror.sync import sync

    sample = build_sample(folder / "sample")
    server = IAServer()
    for item in sample:
        item.add_to(server)
    with server:
        text = demo_manifest(folder, server.url).replace(
            "shares = [0.5, 0.9, 0.99, 1.0]",
            'shares = [0.5, 0.9, 0.99, 1.0]\nquality = ["original", "compact"]'
            f'\n[compact]\nbitrate = "{bitrate // 1000}k"',
        )
        path = folder / "demo.toml"
        path.write_text(text, encoding="utf-8")
        manifest = load_manifest(path)
        manifest.data_dir.mkdir(parents=True, exist_ok=True)
        db = catalogue.connect(manifest.data_dir / "catalogue.sqlite")
        mirror = Mirror(manifest, db)
        result = sync(mirror)
    made = result["stages"]["compact"]
    print(
        f"demo sync: exit {result['exit_code']}, {made.get('copied', 0)} Opus copies made"
        f" ({made.get('copy_bytes', 0):,} bytes from {made.get('original_bytes', 0):,})"
    )
    return mirror


def _lognormal(rng: random.Random, median: float, sigma: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, median * math.exp(rng.gauss(0, sigma))))


def synthetic_catalogue(path: Path, recordings: int, seed: int = 1) -> Mirror:
    """`recordings` recordings: 60% FMA tracks, 40% tracks of IA albums."""
    rng = random.Random(seed)
    db = catalogue.connect(path / "catalogue.sqlite")
    items, files, derivs = [], [], []
    item_id = file_id = 0
    fma = int(recordings * 0.6)
    for n in range(fma):
        item_id += 1
        file_id += 1
        secs = _lognormal(rng, 240, 0.5, 30, 3600)
        rate = rng.choices((320_000, 256_000, 192_000, 128_000), (50, 20, 15, 15))[0]
        listens = int(rng.paretovariate(1.1) * 50)
        extra = json.dumps({"duration": int(secs)})
        items.append((item_id, "fma", f"{n:06d}", float(listens), extra))
        files.append((file_id, item_id, f"{n:06d}.mp3", int(secs * rate / 8), "MP3", None))
    left = recordings - fma
    album = 0
    while left > 0:
        item_id += 1
        album += 1
        tracks = min(left, rng.randint(1, 20))
        left -= tracks
        downloads = int(rng.paretovariate(1.2) * 100)
        items.append((item_id, "ia", f"album-{album:05d}", float(downloads), "{}"))
        flac = rng.random() < 0.7
        for k in range(tracks):
            file_id += 1
            secs = _lognormal(rng, 240, 0.5, 30, 3600)
            if flac:
                rate = _lognormal(rng, 850_000, 0.2, 400_000, 1_400_000)
                files.append(
                    (file_id, item_id, f"{k:02d}.flac", int(secs * rate / 8), "Flac", secs)
                )
                for name, fmt, drate in (
                    (f"{k:02d}.mp3", "VBR MP3", 190_000),
                    (f"{k:02d}.ogg", "Ogg Vorbis", 160_000),
                ):
                    derivs.append(
                        (file_id, name, fmt, int(secs * drate / 8), "0" * 32, f"http://x/{name}")
                    )
            else:
                rate = _lognormal(rng, 200_000, 0.2, 96_000, 320_000)
                files.append(
                    (file_id, item_id, f"{k:02d}.mp3", int(secs * rate / 8), "VBR MP3", secs)
                )
    with transaction(db):
        db.executemany(
            "INSERT INTO items (id, source, source_id, popularity, extra, status, first_seen,"
            f" harvested_at) VALUES (?, ?, ?, ?, ?, 'ok', '{NOW}', '{NOW}')",
            items,
        )
        db.executemany(
            "INSERT INTO files (id, item_id, name, size, format, duration, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
            files,
        )
        db.executemany(
            "INSERT INTO derivatives (file_id, name, format, size, md5, url)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            derivs,
        )
    manifest_path = path / "synthetic.toml"
    manifest_path.write_text(
        f'[mirror]\nname = "synthetic"\ndata_dir = "{path}"\n\n'
        '[[source]]\nkind = "ia"\nquery = "x"\n',
        encoding="utf-8",
    )
    return Mirror(load_manifest(manifest_path), db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=100_000)
    ap.add_argument("--bitrate", default="96k")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    bitrate = parse_bitrate(args.bitrate)
    print(f"Share of listening a budget buys (Opus copies at {bitrate // 1000} kbit/s);")
    print("(xN: the gain over keeping originals only, same budget; 'all fits in': the whole")
    print("catalogue's size in that layout, as a share of the originals.)")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_demo:
            demo = demo_catalogue(Path(tmp) / "demo", bitrate)
            table("demo sample archive (measured copies)", demo, bitrate)
            demo.close()
        t0 = time.perf_counter()
        synth = synthetic_catalogue(Path(tmp), args.recordings)
        print(
            f"\nsynthetic catalogue: {args.recordings:,} recordings built in"
            f" {time.perf_counter() - t0:.1f} s"
        )
        table(f"synthetic, {args.recordings:,} recordings (estimated copies)", synth, bitrate)
        synth.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
