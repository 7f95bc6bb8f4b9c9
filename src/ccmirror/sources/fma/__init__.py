"""The Free Music Archive source (`kind = "fma"`): the FMA dataset as a catalogue.

An item is a track: `source_id` is the zero-padded track id (`000002`), the same name
the dataset's audio archives and the store use (`store/fma/000002/000002.mp3`).
Popularity is `track_listens`. The declared licence goes through the harvest gate
(`ccmirror.licence.judge_declared`); refused tracks stay in the catalogue with the
gate's reason and are never fetched. Harvest is incremental and batched: each item keeps
a compact fingerprint (`items.fingerprint`) of the dataset row, the audio found for it and
the licence policy. A batch of rows is staged and compared in SQL (catalogue.fma_load);
an unchanged row is neither planned nor written. Changes go in one transaction per
batch. Before fetch a file's size is estimated from the row's bit rate x duration
(`files.est_size`); a zip member's size is exact.

Reading: `rows` (CSV -> tracks), planning: `plan` (a track -> its catalogue rows).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ccmirror.catalogue import fma_load, harvest_inputs, transaction, utcnow
from ccmirror.manifest import FMASource, LicenceConfig
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.sources.fma import first, inputs
from ccmirror.sources.fma.audio import Audio, AudioIndex
from ccmirror.sources.fma.counts import count_planned, count_status
from ccmirror.sources.fma.metadata import local_metadata, open_raw_tracks, read_albums
from ccmirror.sources.fma.plan import (
    ITEM_COLUMNS,
    Planned,
    Planner,
    album_facts,
    estimate_size,
    fingerprint_shown,
    source_id,
)
from ccmirror.sources.fma.rows import Columns, ReadStats, Track, read_tracks
from ccmirror.sources.registry import harvest_counts

__all__ = ["estimate_size", "harvest_source", "read_tracks", "source_id"]

log = logging.getLogger("ccmirror.sources.fma")

SOURCE = "fma"
BATCH = 10_000  # rows per staging, lookup and transaction
AGAIN_BATCH = 2_000  # rows per range compare when the source holds items already
# Bumped when what a plan makes of a row changes: every track is planned again once.
FINGERPRINT_VERSION = 2


def harvest_source(
    mirror: Mirror,
    source: FMASource,
    *,
    workers: int = 8,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Read the dataset's raw_tracks.csv and record every track and its audio file.

    `workers` is accepted for the common signature; the harvest is one streaming pass
    (the catalogue writes bound it, not the reading).
    """
    reporter = reporter or NullReporter()
    path = local_metadata(source.metadata, mirror.data_dir)
    audio = AudioIndex(source.audio_root, source.audio_base_url)
    log.info(
        "FMA: %d audio files indexed (%s), %d with checksums",
        len(audio.entries),
        audio.kind,
        audio.checksums,
    )
    key = inputs.input_key(mirror, source, path, audio, FINGERPRINT_VERSION)
    done = inputs.skipped(mirror, key)
    if done is not None:
        log.info("FMA: %s", done["skipped_pass"]["why"])
        return done
    harvest_inputs.forget(mirror.db, SOURCE)  # from here until the record: none
    stats = ReadStats()
    # Every harvester's keys (found ... refused), then FMA's own.
    result: dict[str, Any] = harvest_counts() | {"bytes": 0}
    albums = read_albums(path)
    salt = repr((mirror.manifest.licence, FINGERPRINT_VERSION, audio.kind, audio.base_url))
    reporter.start("fma", None, "tracks")
    try:
        refreshed = 0  # a first load refreshes no fingerprint
        with fma_load.bulk_session(mirror.db):
            fresh = fma_load.source_is_empty(mirror.db)
            if fresh and not source.max_items and first.worth_a_child(path):
                job = first.Job(path, mirror.manifest.licence, audio, albums, salt, BATCH)
                with first.Writer(mirror, result, reporter) as writer:
                    stats = first.run_child(_plan_batches, job, writer)
            else:
                refreshed = _harvest_here(
                    mirror, source, path, (audio, albums, salt), stats, result, fresh, reporter
                )
    finally:
        reporter.finish()
    result.update(
        rows=stats.rows,
        malformed=stats.malformed,
        duplicates=stats.duplicates,
        malformed_rows=stats.examples,
        audio=audio.kind,
        checksums=audio.checksums,
    )
    log.info(
        "FMA: %d tracks (%d new, %d updated, %d unchanged), %d refused, %d without audio,"
        " %d malformed rows skipped",
        result["found"],
        result["new"],
        result["updated"],
        result["unchanged"],
        result["refused_items"],
        result["empty"],
        stats.malformed,
    )
    if result["updated"] == 0 and refreshed == 0:
        harvest_inputs.record(mirror.db, SOURCE, key, inputs.steady(result))
    return result


def _harvest_here(
    mirror: Mirror,
    source: FMASource,
    path: Path,
    found: tuple[AudioIndex, dict[str, dict[str, str]], str],
    stats: ReadStats,
    result: dict[str, Any],
    fresh: bool,
    reporter: Reporter,
) -> int:
    """Read, plan and write every batch in this process; returns how many items only
    had their fingerprint refreshed."""
    audio, albums, salt = found
    with open_raw_tracks(path) as (name, text):
        columns: list[Columns] = []
        tracks: Iterable[Track] = read_tracks(name, text, stats, columns)
        if source.max_items:
            # The most listened tracks first, as an operator with a quota expects.
            tracks = heapq.nlargest(
                source.max_items, tracks, key=lambda t: (t.listens, -t.track_id)
            )
        run = None
        # A re-harvest in smaller batches: a batch's rows stay in the CPU's caches.
        for batch in _batches(tracks, BATCH if fresh else min(BATCH, AGAIN_BATCH)):
            if run is None:
                licence = mirror.manifest.licence
                run = _Run(mirror.db, licence, columns[0], audio, albums, salt, result, fresh)
            run.write(batch)
            reporter.advance(len(batch))
    return run.refreshed if run is not None else 0


def _plan_batches(job: first.Job, send: first.Send) -> ReadStats:
    """The child's work: every batch of a first load as (insert tuples, counts)."""
    stats = ReadStats()
    with open_raw_tracks(job.path) as (name, text):
        columns: list[Columns] = []
        run = None
        for batch in _batches(read_tracks(name, text, stats, columns), job.batch):
            if run is None:
                run = _Run(None, job.licence, columns[0], job.audio, job.albums, job.salt, {}, True)
            run.result = harvest_counts() | {"bytes": 0}
            rows = run.new_rows(batch, run.raws(batch))
            send((rows, run.result))
    return stats


def _batches(tracks: Iterable[Track], size: int) -> Iterator[list[Track]]:
    it = iter(tracks)
    while batch := list(itertools.islice(it, size)):  # cut in C: no Python step a row
        yield batch


class _Run:
    """One harvest's batches: fingerprints, staging, planning and writes."""

    def __init__(
        self,
        db: sqlite3.Connection | None,
        licence: LicenceConfig,
        columns: Columns,
        audio: AudioIndex,
        albums: dict[str, dict[str, str]],
        salt: str,
        result: dict[str, Any],
        fresh: bool = False,
    ) -> None:
        self.db = db
        # The source held no item when the harvest began: every row is new (ids are
        # read once), so batches skip the staging and compare and go straight in.
        self.fresh = fresh
        self.audio = audio
        self.result = result
        self.planner = Planner(columns, licence, {k: album_facts(v) for k, v in albums.items()})
        self.album_keys = {k: repr(sorted(v.items())) for k, v in albums.items()}
        self.key = hashlib.blake2b(salt.encode(), digest_size=32).digest()
        self.i_album = columns["album_id"]
        self.i_file = columns["track_file"]
        self.refreshed = 0  # items whose fingerprint alone moved

    def raw(self, t: Track) -> str:
        """16 hex digits over everything a plan depends on: the row, its album's row, the
        audio found, the licence policy and audio source (the key). Equal fingerprints:
        the same plan."""
        entry = self.audio.entries.get(t.track_id) if self.audio.entries else None
        album = self.album_keys.get(t.fields[self.i_album].strip()) if self.album_keys else None
        text = "\x1f".join(t.fields)
        if entry is not None or album is not None:
            text += f"\x1e{entry!r}\x1e{album}"
        data = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=8, key=self.key).hexdigest()

    def raws(self, batch: list[Track]) -> list[str]:
        """`raw` of each track; in one comprehension when no row has an audio entry or
        an album row to add (audio from a URL, no raw_albums.csv): the same digests."""
        if self.audio.entries or self.album_keys:
            return [self.raw(t) for t in batch]
        key, blake2b = self.key, hashlib.blake2b
        return [
            blake2b(
                "\x1f".join(t.fields).encode("utf-8", "surrogatepass"), digest_size=8, key=key
            ).hexdigest()
            for t in batch
        ]

    def write(self, batch: list[Track]) -> None:
        db, result = self.db, self.result
        raws = self.raws(batch)
        if self.fresh:
            with transaction(db):
                self._insert(batch, raws)
            return
        if self._unchanged_range(batch, raws):
            return
        with transaction(db):
            fma_load.stage(
                db, [(n, f"{t.track_id:06d}", raws[n] + ":") for n, t in enumerate(batch)]
            )
            same = 0
            for status, reason, count, size in fma_load.unchanged(db):
                count_status(result, status, reason, count, size)
                same += count
            result["unchanged"] += same
            if same < len(batch):  # else no second join: the common case of a re-harvest
                self._apply(batch, raws, fma_load.changed(db))

    def _unchanged_range(self, batch: list[Track], raws: list[str]) -> bool:
        """The common case of a re-harvest, read-only: rows come in track id order, so a
        batch is one range of `items (source, source_id)`; when the range's stored row
        fingerprints are exactly the batch's (fma_load.range_prefixes), every row is
        unchanged and the range's counts are the batch's. Otherwise (a new or changed row,
        an item the file no longer lists, rows out of order): False, and the batch takes
        the staged path, which sorts out which rows differ."""
        lo, hi = f"{batch[0].track_id:06d}", f"{batch[-1].track_id:06d}"
        if lo > hi:
            return False
        if fma_load.range_prefixes(self.db, lo, hi) != ":".join(raws) + ":":
            return False
        for status, reason, count, size in fma_load.range_counts(self.db, lo, hi):
            count_status(self.result, status, reason, count, size)
        self.result["unchanged"] += len(batch)
        return True

    def _apply(self, batch: list[Track], raws: list[str], todo: list[fma_load.Known]) -> None:
        db, result, now = self.db, self.result, utcnow()
        new: list[Planned] = []
        changes: list[tuple[Planned, int]] = []
        refresh: list[tuple[str, int]] = []
        for old in todo:
            t = batch[old.n]
            found, missing = self.audio.lookup(t.track_id, t.fields[self.i_file].strip())
            p = self.planner.plan(t, found, missing, raws[old.n])
            if old.status == "withdrawn":
                # A takedown outlives every later harvest.
                p.item["status"], p.item["reason"] = old.status, old.reason
            if p.item["status"] == "empty" and old.file is not None:
                # The audio source lost a file we already hold (an unmounted disk, a
                # partial tree): the verified copy in the store still counts.
                p.item["status"], p.item["reason"] = "ok", None
                p.audio = Audio(*old.file)
            count_planned(p, result)
            if old.item_id is None:
                new.append(p)
                continue
            fingerprint = p.fingerprint()
            if old.fingerprint and old.fingerprint.endswith(fingerprint[len(p.raw) :]):
                # Another row (or policy) that makes the same plan: only the fingerprint moves.
                refresh.append((fingerprint, old.item_id))
                result["unchanged"] += 1
            else:
                changes.append((p, old.item_id))
        fma_load.refresh(db, refresh)
        self.refreshed += len(refresh)
        if new:
            result["new"] += len(new)
            fma_load.insert_new(db, [_rows(p) for p in new], now)
            result["files"] += sum(1 for p in new if p.audio and p.item["status"] == "ok")
        for p, item_id in changes:
            fma_load.update_item(db, item_id, _values(p), p.fingerprint(), now)
            result["updated"] += 1
            a = p.audio
            audio = (a.name, a.url, a.size, a.sha1, a.format) if a else None
            result["files"] += fma_load.sync_file(
                db, item_id, audio, p.est_size, p.item["status"], p.item["reason"]
            )
            if a is not None:
                fma_load.set_recording(db, item_id, a.name, p.recording, p.duration)

    def _insert(self, batch: list[Track], raws: list[str]) -> None:
        fma_load.insert_new(self.db, self.new_rows(batch, raws), utcnow())

    def new_rows(self, batch: list[Track], raws: list[str]) -> list[Any]:
        """A batch of rows all new, planned straight into `insert_new`'s tuples and
        counted as `count_planned` counts a `Planned` (the values `_apply` and `_rows` make)."""
        lookup, values, i_file, result = (
            self.audio.lookup,
            self.planner.values,
            self.i_file,
            self.result,
        )
        pending = fma_load.file_state("ok", None)
        rows: list[Any] = []
        append = rows.append
        ok = files = size = 0
        for t, raw in zip(batch, raws, strict=True):
            found, missing = lookup(t.track_id, t.fields[i_file].strip())
            if found is None:
                item, est, recording, seconds, shown = values(t, None, missing, False)
                if item[_STATUS] == "ok":
                    ok += 1
                else:
                    count_status(result, item[_STATUS], item[_STATUS + 1], 1, 0)
                audio = file = None
            else:
                name, url, fsize, sha1, fmt = audio = tuple(found)
                item, est, recording, seconds, shown = values(t, found, None, fsize is not None)
                status = item[_STATUS]
                if status == "ok":
                    ok += 1
                    files += 1
                    size += fsize or 0
                    state = pending
                else:
                    count_status(result, status, item[_STATUS + 1], 1, 0)
                    state = fma_load.file_state(status, item[_STATUS + 1])
                file = (name, fsize, est, sha1, fmt, url, *state, *recording, seconds)
            append(((f"{t.track_id:06d}", *item, fingerprint_shown(raw, shown, audio, est)), file))
        count_status(result, "ok", None, ok, size)
        result["new"] += len(rows)
        result["files"] += files
        return rows


_STATUS = ITEM_COLUMNS.index("status")


def _values(p: Planned) -> tuple[Any, ...]:
    return tuple(p.item[c] for c in ITEM_COLUMNS)


def _rows(p: Planned) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """The item row and file row `fma_load.insert_new` takes."""
    item = (p.source_id, *_values(p), p.fingerprint())
    a = p.audio
    if a is None:
        return item, None
    state = fma_load.file_state(p.item["status"], p.item["reason"])
    file = (a.name, a.size, p.est_size, a.sha1, a.format, a.url, *state)
    return item, (*file, *p.recording, p.duration)
