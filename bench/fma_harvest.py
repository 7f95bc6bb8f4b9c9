"""Benchmark: FMA harvest of a full-size raw_tracks.csv (106,574 rows by default).

Builds fma_metadata.zip in the dataset's layout (bzip2 member under fma_metadata/),
harvests it into a fresh catalogue (audio from an audio_base_url, so no audio is
needed), then harvests again (nothing changed). Prints rows/s and peak memory: the
CSV is streamed from the zip, so memory stays far below the file's size.

    .venv/bin/python bench/fma_harvest.py [--rows N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ccmirror.harvest import harvest  # noqa: E402
from ccmirror.mirror import open_mirror  # noqa: E402
from fmahelpers import (  # noqa: E402
    BY_4,
    BY_NC_SA_3,
    CC0,
    FMA_LIMITED,
    track_row,
    write_metadata_zip,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=106_574)
    args = ap.parse_args()
    licences = [BY_NC_SA_3, BY_4, CC0, FMA_LIMITED]
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        t0 = time.perf_counter()
        rows = (
            track_row(
                i,
                licence=licences[i % len(licences)],
                track_information=f'About track {i}, "quoted"\nsecond line',
            )
            for i in range(2, args.rows + 2)
        )
        meta = write_metadata_zip(tmpdir / "fma_metadata.zip", rows)
        build = time.perf_counter() - t0
        manifest = tmpdir / "fma.toml"
        manifest.write_text(
            f'[mirror]\nname = "bench"\ndata_dir = "{tmpdir / "data"}"\n\n'
            f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\n'
            'audio_base_url = "http://127.0.0.1:9/"\n'
        )
        with open_mirror(manifest) as m:
            t0, c0 = time.perf_counter(), time.process_time()
            first = harvest(m)
            t1, c1 = time.perf_counter(), time.process_time()
            second = harvest(m)
            t2, c2 = time.perf_counter(), time.process_time()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = meta.stat().st_size / 2**20
    print(f"fma_metadata.zip: {args.rows} rows, {size:.1f} MiB (built in {build:.1f} s)")
    print(
        f"first harvest:  {t1 - t0:6.1f} s  {args.rows / (t1 - t0):8.0f} rows/s"
        f" (CPU {c1 - c0:.1f} s)  new={first['new']} refused={first['refused_items']}"
    )
    print(
        f"second harvest: {t2 - t1:6.1f} s  {args.rows / (t2 - t1):8.0f} rows/s"
        f" (CPU {c2 - c1:.1f} s)  unchanged={second['unchanged']} updated={second['updated']}"
    )
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
