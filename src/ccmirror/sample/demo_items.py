"""The sample archive `ccmirror demo` serves: a dozen IA-style items of real encoded audio.

Data only: `build_sample(folder)` writes the audio and returns the items (IA metadata and
files) for `ccmirror.sample.archive.IAServer.add_item`. The sample is made to show every part of
the job on a few megabytes:

- several formats (FLAC, Ogg Vorbis, Opus, MP3, WAV), tagged the way real uploads are;
- a popularity spread (downloads) wide enough for several tiers;
- licence problems: a file whose tags contradict the item's licence (conflict), a truncated
  file mutagen cannot read (unreadable), an NC licence (fine by default), a Sampling 1.0 item
  (refused), an item in the 78rpm collection (always excluded), and a hostile file name
  that would escape its item folder (refused, never "cleaned").

Ogg encoders stamp random stream serials, so audio is written once per folder and reused
(a `.complete` marker records which sample version is there): re-running the demo serves
the same bytes, and a second sync has nothing new to do.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccmirror.sample.archive import FORMATS
from ccmirror.sample.audio import KINDS, write_audio

SAMPLE_VERSION = 1
MARKER = ".complete"

BY = "https://creativecommons.org/licenses/by/4.0/"
BY_SA = "https://creativecommons.org/licenses/by-sa/4.0/"
BY_NC_SA = "http://creativecommons.org/licenses/by-nc-sa/3.0/"
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"
PDM = "https://creativecommons.org/publicdomain/mark/1.0/"
SAMPLING = "http://creativecommons.org/licenses/sampling/1.0/"

# IA's own names for these formats (the `format` of a file in /metadata), by audio kind.
IA_FORMATS = {kind: FORMATS[ext] for kind, (_, _, ext) in KINDS.items()}


@dataclass
class SampleFile:
    name: str  # the file's name inside its item, as the source gives it
    path: Path  # where the bytes are on disk
    format: str  # IA format name
    size: int = 0
    md5: str = ""
    sha1: str = ""


@dataclass
class SampleItem:
    identifier: str
    metadata: dict[str, Any]  # IA item metadata (title, creator, licenseurl, collection, ...)
    files: list[SampleFile] = field(default_factory=list)
    note: str = ""  # what the item shows a newcomer
    expect: str = "packed"  # packed | conflict | unreadable | refused | excluded | unsafe-name
    downloads: int = 0

    def add_to(self, server: Any) -> None:
        """Serve this item from an `ccmirror.sample.archive.IAServer`."""
        files = {f.name: {"path": f.path, "format": f.format} for f in self.files}
        server.add_item(self.identifier, self.metadata, files, downloads=self.downloads)


@dataclass(frozen=True)
class _Track:
    name: str
    kind: str
    seconds: float = 1.0
    tags: dict[str, str] | None = None  # None: tagged with the item's licence
    truncate: int | None = None  # keep only the first N bytes (an unreadable file)


@dataclass(frozen=True)
class _Spec:
    identifier: str
    title: str
    creator: str
    licence: str | None
    downloads: int
    tracks: tuple[_Track, ...]
    collections: tuple[str, ...] = ("netlabels", "opensource_audio")
    note: str = ""
    expect: str = "packed"


def _t(name: str, kind: str, **kw: Any) -> _Track:
    return _Track(name, kind, **kw)


# Downloads fall off steeply, as on the real archive: a few items take most listening.
SPECS: tuple[_Spec, ...] = (
    _Spec(
        "demo-harbour-lights",
        "Harbour Lights",
        "The Lanterns",
        BY,
        52000,
        (_t("01 - Harbour Lights.flac", "flac"), _t("02 - Low Tide.mp3", "mp3")),
        note="most popular; FLAC + MP3 tagged with CC BY 4.0 (verified)",
    ),
    _Spec(
        "demo-night-walk",
        "Night Walk",
        "Mira Okafor",
        BY_SA,
        21000,
        (_t("night walk.ogg", "ogg", seconds=2.0), _t("night walk (reprise).ogg", "ogg")),
        note="Ogg Vorbis, CC BY-SA 4.0",
    ),
    _Spec(
        "demo-field-recordings",
        "Field Recordings from the Allotment",
        "Jon Weller",
        CC0,
        9000,
        (_t("blackbird.opus", "opus"), _t("rain on the shed.opus", "opus")),
        note="Opus, CC0",
    ),
    _Spec(
        "demo-cellar-sessions",
        "Cellar Sessions",
        "Quiet Engine",
        BY_NC_SA,
        6000,
        (_t("cellar-1.mp3", "mp3"), _t("cellar-2.mp3", "mp3")),
        note="CC BY-NC-SA 3.0: non-commercial is fine to share by default",
    ),
    _Spec(
        "demo-mixed-tape",
        "Mixed Tape",
        "Various",
        BY,
        4000,
        (
            _t("side-a.mp3", "mp3"),
            _t(
                "side-b.mp3",
                "mp3",
                tags={"title": "Side B", "copyright": "(c) 2019 Big Label. All rights reserved"},
            ),
        ),
        note="one file's tags say 'All rights reserved' against the item's CC BY (conflict)",
        expect="conflict",
    ),
    _Spec(
        "demo-broken-upload",
        "Broken Upload",
        "Half Finished",
        BY,
        2500,
        (_t("complete.wav", "wav"), _t("truncated.flac", "flac", truncate=64)),
        note="one FLAC was cut off after 64 bytes: mutagen cannot read it (unreadable)",
        expect="unreadable",
    ),
    _Spec(
        "demo-hostile-names",
        "Hostile Names",
        "Edge Case",
        BY,
        1800,
        (_t("fine.ogg", "ogg"), _t("../../../escape.ogg", "ogg")),
        note="a file named '../../../escape.ogg' is refused, never 'cleaned' into a path",
        expect="unsafe-name",
    ),
    _Spec(
        "demo-public-domain-piano",
        "Public Domain Piano Rolls",
        "Player Piano Society",
        PDM,
        1200,
        (_t("roll-101.flac", "flac"),),
        note="Public Domain Mark",
    ),
    _Spec(
        "demo-loop-kit",
        "Loop Kit",
        "Sampler Collective",
        SAMPLING,
        900,
        (_t("loop-1.wav", "wav"),),
        note="CC Sampling 1.0 does not allow verbatim sharing: refused at harvest",
        expect="refused",
    ),
    _Spec(
        "demo-78rpm-transfer",
        "Shellac Transfer",
        "Unknown Orchestra",
        PDM,
        700,
        (_t("side-1.mp3", "mp3"),),
        collections=("78rpm",),
        note="in the 78rpm collection, which is always excluded (rights disputed)",
        expect="excluded",
    ),
    _Spec(
        "demo-small-hours",
        "Small Hours",
        "Attic Radio",
        BY_SA,
        300,
        (_t("small hours.ogg", "ogg"),),
        note="a long-tail item",
    ),
    _Spec(
        "demo-garden-birds",
        "Garden Birds at Dawn",
        "Jon Weller",
        CC0,
        120,
        (_t("dawn.opus", "opus"),),
        note="a long-tail item",
    ),
    _Spec(
        "demo-last-train",
        "Last Train",
        "The Lanterns",
        BY,
        40,
        (_t("last train.mp3", "mp3"),),
        note="the least popular item",
    ),
)


def _store_name(identifier: str, index: int, name: str) -> str:
    """Where a sample file lives on disk: hostile names never become paths here either."""
    suffix = Path(name.replace("\\", "/")).suffix
    return f"{identifier}/{index:02d}{suffix}"


def _hashes(path: Path) -> tuple[int, str, str]:
    data = path.read_bytes()
    return len(data), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()


def build_sample(folder: Path) -> list[SampleItem]:
    """Write (or reuse) the sample audio under `folder`; return the items, most popular first."""
    folder = Path(folder)
    marker = folder / MARKER
    reuse = _marker_ok(marker)
    if not reuse and folder.exists():
        shutil.rmtree(folder)
    items: list[SampleItem] = []
    for n, spec in enumerate(SPECS):
        metadata: dict[str, Any] = {
            "identifier": spec.identifier,
            "mediatype": "audio",
            "title": spec.title,
            "creator": spec.creator,
            "date": f"20{10 + n % 12:02d}-0{1 + n % 9}-1{n % 10}",
            "collection": list(spec.collections),
            "description": f"ccmirror demo sample: {spec.note}",
        }
        if spec.licence:
            metadata["licenseurl"] = spec.licence
        item = SampleItem(
            spec.identifier, metadata, note=spec.note, expect=spec.expect, downloads=spec.downloads
        )
        for i, track in enumerate(spec.tracks):
            path = folder / _store_name(spec.identifier, i, track.name)
            if not reuse:
                _write_track(path, track, spec, seed=n * 10 + i)
            size, md5, sha1 = _hashes(path)
            item.files.append(SampleFile(track.name, path, IA_FORMATS[track.kind], size, md5, sha1))
        items.append(item)
    if not reuse:
        marker.write_text(json.dumps({"version": SAMPLE_VERSION}) + "\n", encoding="utf-8")
    return items


def _marker_ok(marker: Path) -> bool:
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("version") == SAMPLE_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def _write_track(path: Path, track: _Track, spec: _Spec, seed: int) -> None:
    tags = track.tags
    if tags is None:
        tags = {
            "title": Path(track.name).stem,
            "artist": spec.creator,
            "album": spec.title,
        }
        if spec.licence:
            tags["license"] = spec.licence
            tags["copyright"] = f"Licensed to the public under {spec.licence}"
    write_audio(path, track.kind, seconds=track.seconds, seed=seed, tags=tags)
    if track.truncate is not None:
        data = path.read_bytes()[: track.truncate]
        path.write_bytes(data)


def sample_summary(items: list[SampleItem]) -> list[dict[str, Any]]:
    """One row per sample item, for the demo's output."""
    return [
        {
            "identifier": it.identifier,
            "downloads": it.downloads,
            "files": len(it.files),
            "expect": it.expect,
            "note": it.note,
        }
        for it in items
    ]
