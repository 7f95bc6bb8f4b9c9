"""`compact`: the lawful compact copies of the recordings in compact tiers.

For each original of an item in a compact tier (one never sealed in a pack: those stay as
they are), in this order:

- the source's own lossy derivative (IA's Ogg Vorbis / VBR MP3, with IA's checksums) when
  it is smaller: `prepare` (run before every fetch) records it as the file to fetch, and the
  original is not fetched at all;
- a licence that does not permit format shifting, or a format no decoder here reads:
  the original is kept;
- a lossy original at or under the bitrate: kept as it is;
- otherwise a local Opus transcode of the verified, checked original, written beside it
  in the store (`.part`, decoded back in full, as long as the original, fsynced, renamed)
  and recorded as a fetched file of its own (`copy_of`).

New copies are judged by `check` (their tags carry the original's evidence); an original
whose copy got a publishable verdict with the same licence leaves the store (its row and
checksums stay). An original that does not decode is `unreadable` and gets no copy.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.compact import (
    CompactItems,
    copy_candidates,
    copy_recorded,
    derivative_candidates,
    derivative_chosen,
    derivative_given_up,
    derivatives_to_give_up,
    item_file_names,
    original_decided,
    original_unreadable,
    releasable,
    tiers_pinned,
    unjudged_copies,
)
from ccmirror.catalogue.states import file_left_store
from ccmirror.catalogue.tiers import Ranking, ranking
from ccmirror.compact.comments import copy_comments
from ccmirror.compact.encoder import Encoder, find_encoder, transcode
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import fsync_dir, hash_file, promote
from ccmirror.licence import publishable_verdicts
from ccmirror.licence.check import check
from ccmirror.licence.decode import WORKERS, call
from ccmirror.licence.policy import NO_FORMAT_SHIFT, permits_format_shift
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter

__all__ = [
    "compact",
    "compact_items",
    "compact_todo",
    "need_encoder",
    "plan_derivatives",
    "plan_release",
    "prepare",
]

log = logging.getLogger("ccmirror.compact")

# mutagen's names of the formats soundfile decodes, and which of them are lossy.
DECODABLE = {"FLAC", "WAVE", "AIFF", "MP3", "OggVorbis", "OggOpus"}
LOSSY = {"MP3", "OggVorbis", "OggOpus", "MP4", "ASF"}
R_CRASHED = "the decoder crashed on this file"
R_ARTWORK = "cover art: an image, packed as it is"
MAX_LISTED = 50


def need_encoder(manifest: Manifest) -> Encoder | None:
    """The encoder when the manifest has a compact tier (EncoderMissing, exit 2, if this
    machine has none); None when it has no compact tier."""
    return find_encoder() if manifest.tiers.compact_tiers else None


def compact_items(db: sqlite3.Connection, manifest: Manifest) -> CompactItems:
    """Item id -> tier, for the ok items whose tier is compact (SQL probes over the
    ranking: `catalogue.compact.CompactItems`)."""
    tiers = manifest.tiers
    if not tiers.compact_tiers:
        return CompactItems(db, Ranking(tiers.shares, [], 0), ())
    return CompactItems(db, ranking(db, tiers.shares), tiers.quality)


def _pin(db: sqlite3.Connection, tiers: CompactItems, item_ids: set[int]) -> None:
    """An item given a compact copy keeps its tier, as a packed one does: its original may
    have left the store, so it must not drift into a tier of originals."""
    tiers_pinned(db, tiers, item_ids)


# A derivative whose download failed this many runs in a row (or whose bytes check refused)
# is given up: the original is fetched and transcoded instead.
DERIVATIVE_GIVE_UP = 2


def _abandon_derivatives(db: sqlite3.Connection) -> int:
    """Derivatives that never arrive, or that check refused, make way for the original."""
    rows = derivatives_to_give_up(db, DERIVATIVE_GIVE_UP)
    with transaction(db):
        for r in rows:
            why = r["reason"] if r["status"] != "fetched" else f"verdict {r['verdict']}"
            derivative_given_up(db, r, why)
    return len(rows)


def plan_derivatives(db: sqlite3.Connection, items: CompactItems) -> dict[int, sqlite3.Row]:
    """Original id -> the smallest of its derivatives that `prepare` would choose (of the
    items `items`); reads only."""
    best: dict[int, sqlite3.Row] = {}
    for r in derivative_candidates(db):
        if r["item_id"] in items:
            best.setdefault(r["id"], r)  # the smallest derivative of each original
    return best


def prepare(mirror: Mirror, items: CompactItems | None = None) -> dict[str, int]:
    """Choose the source's derivative over the original where it is smaller: a copy row
    to fetch (verified by IA's checksums), the original marked not to be fetched. A
    derivative given up (see `_abandon_derivatives`) is not chosen again."""
    db = mirror.db
    items = compact_items(db, mirror.manifest) if items is None else items
    if not items:
        return {"derivatives": 0}
    _abandon_derivatives(db)
    best = plan_derivatives(db, items)
    chosen = 0
    with transaction(db):
        for r in best.values():
            # False: the item already has a file of that name.
            chosen += derivative_chosen(db, r)
        _pin(db, items, {r["item_id"] for r in best.values()})
    return {"derivatives": chosen}


def _copy_name(taken: set[str], name: str) -> str:
    """`dir/track.flac` -> `dir/track.opus`, or `dir/track.flac.opus` when the item has (or
    is about to have) a file of that name; the choice is added to `taken`."""
    p = PurePosixPath(name)
    plain = str(p.with_suffix(".opus")) if p.suffix else f"{name}.opus"
    chosen = plain if plain not in taken and plain != name else f"{name}.opus"
    taken.add(chosen)
    return chosen


def _decide(path: Path, bitrate: int, licence_id: str | None) -> tuple[str | None, str]:
    """('original' | 'kept' | None to transcode, why)."""
    if not permits_format_shift(licence_id):
        return "original", NO_FORMAT_SHIFT
    try:
        import mutagen

        f = mutagen.File(path)
    except Exception as e:  # check read it already: this is rare
        return "original", f"tags unreadable ({type(e).__name__}): kept as it is"
    kind = type(f).__name__ if f is not None else "unknown"
    if kind in LOSSY:
        rate = int(getattr(f.info, "bitrate", 0) or 0)
        length = float(getattr(f.info, "length", 0) or 0)
        if not rate and length:
            rate = int(path.stat().st_size * 8 / length)
        if rate and rate <= bitrate:
            return "kept", f"{kind} at {rate // 1000} kbit/s: already at or under the bitrate"
    if kind not in DECODABLE:
        return "original", f"no decoder here for {kind}: kept as it is"
    return None, kind


class _Run:
    def __init__(self, mirror: Mirror, encoder: Encoder) -> None:
        self.mirror, self.encoder = mirror, encoder
        self.bitrate = mirror.manifest.compact.bitrate
        self.counts: Counter[str] = Counter()
        self.failures: list[dict[str, str]] = []

    def fail(self, r: dict[str, Any], reason: str) -> None:
        self.counts["failed"] += 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append({"source_id": r["source_id"], "name": r["name"], "reason": reason})
        log.warning("compact: %s/%s: %s", r["source_id"], r["name"], reason)

    def one(self, r: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Decide and, when it must, transcode (on a worker thread; no catalogue writes)."""
        if r.get("kind") == "artwork":
            return r, ("original", R_ARTWORK)
        try:
            src = self.mirror.abspath(r["store_path"])
            name = r["copy"]
            rel = self.mirror.store_relpath(r["source"], r["source_id"], name)
            dest = self.mirror.abspath(rel)
        except UnsafeName as e:
            return r, ("original", f"no room for a copy's name ({e.message}): kept as it is")
        decision, why = _decide(src, self.bitrate, r["licence"])
        if decision is not None:
            return r, (decision, why)
        part = dest.with_name(dest.name + ".part")
        note = (
            f"Format-shifted copy of {PurePosixPath(r['name']).name} ({why}) to Opus at"
            f" {self.bitrate // 1000} kbit/s; otherwise unmodified."
        )
        comments = copy_comments(src, r["evidence"], r["isrc"], r["mbid"], note)
        job = partial(
            transcode, part=str(part), opusenc=self.encoder.path, bitrate=self.bitrate,
            comments=comments,
        )  # fmt: skip
        out = call(job, src, R_CRASHED)
        if isinstance(out, str):
            return r, ("error", out)
        hashes = hash_file(part, ("md5", "sha1", "sha256"))
        size = part.stat().st_size
        promote(part, dest)
        return r, ("copied", {"rel": rel, "name": name, "size": size, "hashes": hashes,
                              "kind": why, **out})  # fmt: skip

    def record(self, r: dict[str, Any], outcome: tuple[str, Any]) -> None:
        what, detail = outcome
        db = self.mirror.db
        if what == "error":
            if (
                detail.startswith(("audio does not decode", "no audio frames"))
                or detail == R_CRASHED
            ):
                # As `check` would say of it: unreadable, never packed, no copy.
                with transaction(db):
                    original_unreadable(db, r["id"], detail)
                self.counts["unreadable"] += 1
            self.fail(r, detail)
            return
        if what != "copied":
            with transaction(db):
                original_decided(db, r["id"], what, detail)
            self.counts[what] += 1
            return
        copy = detail | {"fetched_at": utcnow(), "encoder": self.encoder.settings(self.bitrate)}
        with transaction(db):
            copy_recorded(db, r, copy)
        self.counts["copied"] += 1
        self.counts["copy_bytes"] += detail["size"]
        self.counts["original_bytes"] += r["size"] or 0


def compact_todo(mirror: Mirror, items: CompactItems) -> list[dict[str, Any]]:
    """The originals a compact run decides (item id -> tier `items`), each with its copy's
    name; reads only."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    rows = copy_candidates(mirror.db, allowed)
    out, taken = [], {}
    for r in rows:
        if r["item_id"] not in items:
            continue
        if r["item_id"] not in taken:
            taken[r["item_id"]] = item_file_names(mirror.db, r["item_id"])
        out.append(dict(r) | {"copy": _copy_name(taken[r["item_id"]], r["name"])})
    return out


def plan_release(mirror: Mirror) -> tuple[list[sqlite3.Row], int]:
    """The originals `release` removes (copy in place, judged publishable under the same
    licence), and how many are kept for a licence that differs; reads only."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    rows, mismatched = [], 0
    for r in releasable(mirror.db, allowed):
        if r["licence"] != r["copy_licence"]:
            log.warning(
                "compact: %s/%s: the copy's licence %s is not the original's %s; original kept",
                r["source_id"], r["name"], r["copy_licence"], r["licence"],
            )  # fmt: skip
            mismatched += 1
            continue
        rows.append(r)
    return rows, mismatched


def release(mirror: Mirror) -> dict[str, int]:
    """Originals whose copy is in place, verified and judged publishable under the same
    licence leave the store (and any open pack); their rows and checksums stay."""
    db = mirror.db
    rows, mismatched = plan_release(mirror)
    released = freed = 0
    for r in rows:
        try:
            path = mirror.abspath(r["store_path"])
            size = path.stat().st_size if path.is_file() else 0
            path.unlink(missing_ok=True)
            fsync_dir(path.parent)
        except (OSError, UnsafeName) as e:
            log.warning("compact: cannot remove %s: %s", r["store_path"], e)
            continue
        file_left_store(db, r["id"])
        released += 1
        freed += size
    return {"released": released, "freed_bytes": freed, "licence_mismatch": mismatched}


def compact(
    mirror: Mirror, *, reporter: Reporter | None = None, workers: int = WORKERS
) -> dict[str, Any]:
    """Make the compact tiers' copies, judge them, release their originals; counts.

    Keys: copied, kept, original, derivatives, unreadable, failed (transcodes that failed:
    retried next run; exit 1), released, freed_bytes, copy_bytes, original_bytes (of the
    originals transcoded in this run), encoder, bitrate, failures.
    """
    reporter = reporter or NullReporter()
    encoder = need_encoder(mirror.manifest)
    result: dict[str, Any] = {"compact_tiers": list(mirror.manifest.tiers.compact_tiers)}
    if encoder is None:
        return result | {"copied": 0, "failed": 0, "released": 0}
    items = compact_items(mirror.db, mirror.manifest)
    run = _Run(mirror, encoder)
    run.counts.update(prepare(mirror, items))
    todo = compact_todo(mirror, items)
    if todo:
        reporter.start("compact", len(todo), "files")
        try:
            with ThreadPoolExecutor(max(1, workers), thread_name_prefix="compact") as pool:
                for start in range(0, len(todo), 64):  # bounded: never a future per row
                    for r, outcome in pool.map(run.one, todo[start : start + 64]):
                        run.record(r, outcome)
                        reporter.advance()
                with transaction(mirror.db):
                    _pin(mirror.db, items, {r["item_id"] for r in todo})
        finally:
            reporter.finish()
    judged = check(mirror) if run.counts["copied"] or unjudged_copies(mirror.db) else None
    released = release(mirror)
    keys = ("copied", "kept", "original", "derivatives", "unreadable", "failed")
    result |= {k: run.counts[k] for k in keys}
    result |= released
    result |= {k: run.counts[k] for k in ("copy_bytes", "original_bytes")}
    result["checked_copies"] = judged["checked"] if judged else 0
    result["encoder"] = encoder.settings(run.bitrate)
    result["bitrate"] = run.bitrate
    result["failures"] = run.failures
    return result
