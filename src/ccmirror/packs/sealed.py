"""What a sealed pack's payload held of generated text: MANIFEST.csv and ATTRIBUTION.md as
they were sealed, kept under `<data_dir>/sealed/<pack>/` (gzip, mtime 0).

Both files come from catalogue rows that a later harvest may change (titles, creators,
popularity, per-recording metadata). A sealed pack never changes, so a payload rebuilt
after its folder was lost must write them again byte for byte: from this record, not from
the rows of today. Files, not catalogue rows: the record (~0.3 KB a packed file,
compressed) stays out of the catalogue and of the metadata dump made from it. A pack
sealed before records were kept gets one from its payload the first time `repair` sees the
payload in place (`keep_generated`); the info-hash check of a rebuild still catches a
record that does not match.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from pathlib import Path

from ccmirror.fsutil import atomic_write_bytes, safe_join

__all__ = [
    "GENERATED",
    "forget_generated",
    "has_record",
    "keep_generated",
    "recorded_generated",
    "sealed_dir",
]

# The payload's files that ccmirror writes itself (the rest are links to the store).
GENERATED = ("MANIFEST.csv", "ATTRIBUTION.md")


def sealed_dir(data_dir: Path, name: str) -> Path:
    """`<data_dir>/sealed/<pack>`: where the pack's generated files are recorded."""
    return safe_join(data_dir, f"sealed/{name}")


def keep_generated(data_dir: Path, payload: Path, name: str) -> bool:
    """Record the payload's generated files (atomically; an identical record is left
    untouched). Returns False when the payload lacks one (nothing is recorded then)."""
    try:
        found = {n: (payload / n).read_bytes() for n in GENERATED}
    except OSError:
        return False
    where = sealed_dir(data_dir, name)
    for n, data in found.items():
        atomic_write_bytes(where / f"{n}.gz", gzip.compress(data, mtime=0))
    return True


def recorded_generated(data_dir: Path, name: str) -> dict[str, bytes] | None:
    """The generated files as sealed (file name -> bytes), or None when not recorded."""
    where = sealed_dir(data_dir, name)
    try:
        return {n: gzip.decompress((where / f"{n}.gz").read_bytes()) for n in GENERATED}
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def has_record(data_dir: Path, name: str) -> bool:
    where = sealed_dir(data_dir, name)
    return all((where / f"{n}.gz").is_file() for n in GENERATED)


def forget_generated(data_dir: Path, name: str) -> None:
    """Drop a pack's record (a withdrawn item's pack is never rebuilt)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(sealed_dir(data_dir, name))
