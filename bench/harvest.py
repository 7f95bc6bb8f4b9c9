"""Harvest speed: ccmirror's concurrent harvest vs a sequential `get_item` loop.

400 items on the loopback IA server with 50 ms latency per request. The server runs in a
process of its own (as archive.org is not inside ours: its threads would otherwise share
our interpreter lock); both runs use the same server, side by side in the same run: first
`ccmirror.harvest.harvest(workers=16)` into a fresh catalogue, then the `internetarchive`
library's search plus `get_item` for every item, one after the other. Prints both times,
the ratio (target >= 14x) and the most requests the server saw in flight during our
harvest (must be <= 16).

    .venv/bin/python bench/harvest.py [--items 400] [--latency 0.05] [--workers 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # iahelpers: the shared IA archive builder

from ccmirror.harvest import harvest  # noqa: E402
from ccmirror.mirror import open_mirror  # noqa: E402
from ccmirror.sources.ia import make_session  # noqa: E402
from iafake import IAServer  # noqa: E402
from iahelpers import make_ia_archive  # noqa: E402

QUERY = "collection:netlabels AND mediatype:audio"


def serve(conn: Connection, items: int, latency: float) -> None:
    """The archive, in its own process, driven by commands over `conn`."""
    with IAServer(latency=0.0) as ia:
        make_ia_archive(ia, items, kinds=("mp3",), variety=4)
        ia.latency = latency
        conn.send(ia.url)
        while True:
            cmd, arg = conn.recv()
            if cmd == "reset":
                ia.max_in_flight = 0
                conn.send(None)
            elif cmd == "peak":
                conn.send(ia.max_in_flight)
            else:
                conn.send(None)
                return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()

    ours_end, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(theirs, args.items, args.latency), daemon=True
    )
    server.start()

    def ask(cmd: str, arg: object = None) -> object:
        ours_end.send((cmd, arg))
        return ours_end.recv()

    try:
        url = ours_end.recv()
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "bench.toml"
            manifest.write_text(
                f'[mirror]\nname = "bench"\ndata_dir = "{tmp}/data"\n\n'
                f'[[source]]\nkind = "ia"\nquery = "{QUERY}"\nendpoint = "{url}"\n'
            )
            with open_mirror(manifest) as mirror:
                ask("reset")
                t0 = time.perf_counter()
                result = harvest(mirror, workers=args.workers)
                ours = time.perf_counter() - t0
                ours_peak = ask("peak")
        if result["new"] != args.items or result["failed"]:
            print(f"harvest incomplete: {result}", file=sys.stderr)
            return 1

        session = make_session(str(url))
        t0 = time.perf_counter()
        n = 0
        for doc in session.search_items(QUERY, fields=["identifier"]):
            item = session.get_item(doc["identifier"])
            n += bool(item.files)
        sequential = time.perf_counter() - t0
        if n != args.items:
            print(f"sequential loop saw {n} items", file=sys.stderr)
            return 1
    finally:
        ask("stop")
        server.join(10)

    pace = result["sources"][0]["pace"]
    ratio = sequential / ours
    print(f"items                 {args.items}")
    print(f"latency per request   {args.latency * 1000:.0f} ms")
    print(f"ccmirror harvest      {ours:.2f} s  (workers={args.workers})")
    print(f"sequential get_item   {sequential:.2f} s")
    print(f"speed-up              {ratio:.1f}x  (target >= 14x)")
    print(f"max in flight         {ours_peak}  (limit 16)")
    print(
        f"pace                  {pace['throttled']} throttled, {pace['cuts']} cuts,"
        f" lowest {pace['lowest']}, highest {pace['highest']}"
    )
    if isinstance(ours_peak, int) and ours_peak > 16:
        print("FAIL: more than 16 requests in flight to one host", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
