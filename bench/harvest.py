"""Harvest speed: ccmirror's concurrent harvest vs a sequential `get_item` loop.

400 items on the loopback IA server with 50 ms latency per request. Both runs use the same
server in the same process: first `ccmirror.harvest.harvest(workers=16)` into a fresh
catalogue, then the `internetarchive` library's search plus `get_item` for every item, one
after the other. Prints both times, the ratio (target >= 10x) and the most requests the
server saw in flight during our harvest (must be <= 16).

    .venv/bin/python bench/harvest.py [--items 400] [--latency 0.05] [--workers 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # iahelpers: the shared IA archive builder

from ccmirror.harvest import harvest  # noqa: E402
from ccmirror.iaserver import IAServer  # noqa: E402
from ccmirror.mirror import open_mirror  # noqa: E402
from ccmirror.sources.ia import make_session  # noqa: E402
from iahelpers import make_ia_archive  # noqa: E402

QUERY = "collection:netlabels AND mediatype:audio"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()

    with IAServer(latency=0.0) as ia, tempfile.TemporaryDirectory() as tmp:
        make_ia_archive(ia, args.items, kinds=("mp3",), variety=4)
        ia.latency = args.latency
        manifest = Path(tmp) / "bench.toml"
        manifest.write_text(
            f'[mirror]\nname = "bench"\ndata_dir = "{tmp}/data"\n\n'
            f'[[source]]\nkind = "ia"\nquery = "{QUERY}"\nendpoint = "{ia.url}"\n'
        )

        with open_mirror(manifest) as mirror:
            ia.max_in_flight = 0
            t0 = time.perf_counter()
            result = harvest(mirror, workers=args.workers)
            ours = time.perf_counter() - t0
            ours_peak = ia.max_in_flight
        if result["new"] != args.items or result["failed"]:
            print(f"harvest incomplete: {result}", file=sys.stderr)
            return 1

        session = make_session(ia.url)
        ia.max_in_flight = 0
        t0 = time.perf_counter()
        n = 0
        for doc in session.search_items(QUERY, fields=["identifier"]):
            item = session.get_item(doc["identifier"])
            n += bool(item.files)
        sequential = time.perf_counter() - t0
        if n != args.items:
            print(f"sequential loop saw {n} items", file=sys.stderr)
            return 1

    ratio = sequential / ours
    print(f"items                 {args.items}")
    print(f"latency per request   {args.latency * 1000:.0f} ms")
    print(f"ccmirror harvest      {ours:.2f} s  (workers={args.workers})")
    print(f"sequential get_item   {sequential:.2f} s")
    print(f"speed-up              {ratio:.1f}x  (target >= 10x)")
    print(f"max in flight         {ours_peak}  (limit {args.workers})")
    if ours_peak > args.workers:
        print("FAIL: more requests in flight than workers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
