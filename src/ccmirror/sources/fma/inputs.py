"""The whole-input skip of an FMA re-harvest (make-style).

A harvest's outcome depends on its inputs and on the catalogue. The inputs are keyed
here: the metadata's content (`metadata.identity`: raw_tracks.csv's and raw_albums.csv's
CRC-32 and sizes from the zip's directory, or a digest of a bare CSV), the audio index
(its kind, base URL and every entry: name, URL, size, sha1), the licence policy, the
`[[source]]` table, the planner's and this module's versions, ccmirror's version and the
catalogue's migrations. The catalogue side is 0065's triggers: any write to the source's
items or first files since forgets the record (`catalogue.harvest_inputs`).

When the key equals the one recorded by the last complete harvest, every row would be
found unchanged and counted as that harvest counted: its counts are reported with
`skipped_pass` saying so, and no row is read. A record is written only at the end of a
harvest whose row pass completed with the catalogue in its steady state (every row new
or unchanged: what the next pass would count is what this one counted); a harvest that
updated rows leaves none, so the next one reads every row again and records.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ccmirror import __version__
from ccmirror.catalogue import harvest_inputs
from ccmirror.manifest import FMASource
from ccmirror.mirror import Mirror
from ccmirror.sources.fma.audio import AudioIndex
from ccmirror.sources.fma.metadata import identity

# Bumped when what the key holds, or what a skip may assume, changes.
SKIP_VERSION = 1
SOURCE = "fma"


def input_key(
    mirror: Mirror, source: FMASource, path: Path, audio: AudioIndex, planner_version: int
) -> str:
    """A digest of everything a harvest of `source` reads besides the catalogue."""
    entries = repr(sorted(audio.entries.items())).encode("utf-8", "surrogatepass")
    parts = (
        SKIP_VERSION,
        planner_version,
        __version__,
        repr(source),
        repr(mirror.manifest.licence),
        identity(path),
        audio.kind,
        audio.base_url,
        audio.checksums,
        hashlib.blake2b(entries).hexdigest(),
        harvest_inputs.schema_names(mirror.db),
    )
    return hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def skipped(mirror: Mirror, key: str) -> dict[str, Any] | None:
    """The counts of the last complete harvest with this key, marked as a skipped pass;
    None when there is none (or the catalogue was written to since)."""
    found = harvest_inputs.recorded(mirror.db, SOURCE, key)
    if found is None:
        return None
    result, at = found
    why = (
        "metadata, audio, licence policy and catalogue unchanged since the complete"
        f" harvest of {at}: no row read, its counts reported (harvest --full reads them)"
    )
    return result | {"skipped_pass": {"since": at, "why": why}}


def steady(result: dict[str, Any]) -> dict[str, Any]:
    """What a pass over the same inputs would report after `result`'s pass, in which
    every row was new or unchanged: nothing new, every row found unchanged."""
    return result | {"new": 0, "files": 0, "updated": 0, "unchanged": result["found"]}
