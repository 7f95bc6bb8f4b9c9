"""The Free Music Archive source (`kind = "fma"`): the FMA dataset as a catalogue.

An item is a track: `source_id` is the zero-padded track id (`000002`), the same name
the dataset's audio archives and the store use (`store/fma/000002/000002.mp3`).
Popularity is `track_listens`. The declared licence goes through the harvest gate
(`ccmirror.licence.judge_declared`); refused tracks stay in the catalogue with the
gate's reason and are never fetched. Harvest is incremental and batched: each item keeps
a compact fingerprint (`items.fingerprint`) of the dataset row, the audio found for it and
the licence policy; a batch of rows is looked up in one indexed query and a row whose
fingerprint is unchanged is neither planned nor written. Changes go in one transaction
per batch, new rows with executemany. Before fetch a file's size is estimated from the
row's bit rate x duration (`files.est_size`); a zip member's size is exact.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.licence import Declared, judge_declared
from ccmirror.manifest import FMASource, LicenceConfig
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.recording import json_list, parse_genres, set_recording
from ccmirror.sources.fma.audio import Audio, AudioIndex
from ccmirror.sources.fma.metadata import (
    ReadStats,
    Track,
    local_metadata,
    open_raw_tracks,
    read_albums,
)
from ccmirror.sources.fma.metadata import read_tracks as read_tracks
from ccmirror.sources.values import iso_date

log = logging.getLogger("ccmirror.sources.fma")

SOURCE = "fma"
BATCH = 5000  # rows per lookup and per transaction
# Bumped when what a plan makes of a row changes: every track is planned again once.
FINGERPRINT_VERSION = 1
# Item columns the harvest owns, in the order used for writes and fingerprints.
ITEM_COLUMNS = (
    "title",
    "creator",
    "album",
    "date",
    "source_url",
    "licence_url",
    "licence_title",
    "declared_licence_id",
    "popularity",
    "extra",
    "status",
    "reason",
)


def source_id(track_id: int) -> str:
    """The catalogue id of a track: its id zero-padded to six digits, as in the dataset."""
    return f"{track_id:06d}"


@dataclass
class Planned:
    """What the catalogue should hold for one track."""

    source_id: str
    item: dict[str, Any]
    audio: Audio | None
    est_size: int | None = None  # bytes from bit rate x duration, when the size is unknown
    raw: str = ""  # `raw_fingerprint` of the row that made it

    def fingerprint(self) -> str:
        """What `items.fingerprint` records: the row's fingerprint, then the plan's."""
        values = [self.item[c] for c in ITEM_COLUMNS]
        values[ITEM_COLUMNS.index("popularity")] = float(self.item["popularity"] or 0)
        a = self.audio
        audio = (a.name, a.url, a.size, a.sha1, a.format) if a else None
        text = json.dumps([values, audio, self.est_size], default=str)
        return f"{self.raw}:{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"


def raw_fingerprint(
    t: Track, audio: Audio | None, missing: str | None, salt: str, album: Any = None
) -> str:
    """16 hex digits over everything a plan depends on: the row, its album's row, the
    audio found, the licence policy (`salt`). Equal fingerprints: the same plan."""
    h = hashlib.blake2b(salt.encode(), digest_size=8)
    h.update("\x1f".join(t.row.values()).encode("utf-8", "surrogatepass"))
    h.update(repr((audio, missing, album)).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def estimate_size(bit_rate: str, duration: str) -> int | None:
    """Bytes of a track of `bit_rate` bit/s lasting `duration` ('02:48'), if both known."""
    seconds = _duration(duration)
    rate = _int(bit_rate)
    if not seconds or not rate:
        return None
    return rate * seconds // 8


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
    stats = ReadStats()
    # The IA source's keys (found ... refused), then FMA's own.
    result: dict[str, Any] = {
        "found": 0,
        "new": 0,
        "updated": 0,
        "unchanged": 0,
        "dark": 0,
        "empty": 0,
        "missing": 0,
        "files": 0,
        "failed": 0,
        "refused_items": 0,
        "refused": {},
        "bytes": 0,
    }
    gate = _Gate(mirror.manifest.licence)
    albums = read_albums(path)
    reporter.start("fma", None, "tracks")
    try:
        with open_raw_tracks(path) as (name, text):
            tracks: Iterable[Track] = read_tracks(name, text, stats)
            if source.max_items:
                # The most listened tracks first, as an operator with a quota expects.
                tracks = heapq.nlargest(
                    source.max_items, tracks, key=lambda t: (t.listens, -t.track_id)
                )
            salt = repr((mirror.manifest.licence, FINGERPRINT_VERSION))
            for batch in _batches(tracks):
                _write(mirror, batch, audio, gate, albums, salt, result)
                reporter.advance(len(batch))
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
    return result


class _Gate:
    """judge_declared, memoised: the dataset holds a few dozen distinct licences."""

    def __init__(self, config: LicenceConfig) -> None:
        self.config = config
        self.cache: dict[tuple[str, str], Declared] = {}

    def __call__(self, url: str, title: str) -> Declared:
        key = (url, title)
        if key not in self.cache:
            self.cache[key] = judge_declared(url or None, title or None, self.config)
        return self.cache[key]


def _plan(
    t: Track,
    found: Audio | None,
    missing: str | None,
    gate: _Gate,
    raw: str,
    albums: dict[str, dict[str, str]] | None = None,
) -> Planned:
    url, title = t.get("license_url"), t.text("license_title") or ""
    declared = gate(url, title)
    if not declared.allowed:
        status, reason = "refused", declared.reason or "licence not allowed"
    elif found is None:
        status, reason = "empty", missing
    else:
        status, reason = "ok", None
    extra = {
        "track_id": t.track_id,
        "favorites": t.favorites,
        "interest": t.interest,
        "artist_id": _int(t.get("artist_id")),
        "artist_url": t.get("artist_url") or None,
        "album_id": _int(t.get("album_id")),
        "album_url": t.get("album_url") or None,
        "copyright_c": t.text("track_copyright_c"),
        "copyright_p": t.text("track_copyright_p"),
        "composer": t.text("track_composer"),
        "publisher": t.text("track_publisher"),
        "track_number": _int(t.get("track_number")),
        "duration": _duration(t.get("track_duration")),
        "date_created": iso_date(t.get("track_date_created"), with_time=True),
        "date_recorded": iso_date(t.get("track_date_recorded"), with_time=True),
        "track_file": t.get("track_file") or None,
        "lyricist": t.get("track_lyricist") or None,
        "genres": parse_genres(t.get("track_genres")),
        **_album_facts((albums or {}).get(t.get("album_id").strip())),
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    created = extra.get("date_created")
    recorded = extra.get("date_recorded")
    item = {
        "title": t.text("track_title"),
        "creator": t.text("artist_name"),
        "album": t.text("album_title"),
        "date": (recorded or created or "")[:10] or None,
        "source_url": t.get("track_url") or None,
        "licence_url": url or None,
        "licence_title": title or None,
        "declared_licence_id": declared.licence_id,
        "popularity": float(t.listens),
        "extra": json.dumps(extra, sort_keys=True, ensure_ascii=False),
        "status": status,
        "reason": reason,
    }
    est = None
    if found is not None and found.size is None:
        est = estimate_size(t.get("track_bit_rate"), t.get("track_duration"))
    return Planned(source_id(t.track_id), item, found, est, raw)


def _album_facts(row: dict[str, str] | None) -> dict[str, Any]:
    if not row:
        return {}
    return {
        "release_date": iso_date(row.get("album_date_released"), with_time=True),
        "producer": row.get("album_producer") or None,
        "engineer": row.get("album_engineer") or None,
    }


def _recording(p: Planned) -> dict[str, Any]:
    """The file's per-recording columns from the track's `extra` (the harvest's truth)."""
    extra = json.loads(p.item["extra"])
    number = extra.get("track_number")
    return {
        "artists": json_list([p.item["creator"]]),
        "track": str(number) if number is not None else None,
        "genres": extra.get("genres"),
        "composer": extra.get("composer"),
        "lyricist": extra.get("lyricist"),
        "producer": extra.get("producer"),
        "engineer": extra.get("engineer"),
        "publisher": extra.get("publisher"),
        "release_date": iso_date(extra.get("release_date")),
    }


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _duration(text: str) -> int | None:
    """'02:48' or '1:02:48' -> seconds."""
    parts = text.split(":")
    if not text or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def _batches(tracks: Iterable[Track]) -> Iterator[list[Track]]:
    batch: list[Track] = []
    for p in tracks:
        batch.append(p)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Known:
    item_id: int
    fingerprint: str | None
    status: str
    reason: str | None
    size: int | None = None  # of its file row (counts "bytes" for an unchanged track)
    stored: Audio | None = None  # the file row, when its bytes are already in the store


def _known(db: sqlite3.Connection, ids: list[str]) -> dict[str, _Known]:
    """What the catalogue holds for these source ids: one indexed query per batch."""
    known: dict[str, _Known] = {}
    for chunk in range(0, len(ids), 900):  # under SQLite's parameter limit
        part = ids[chunk : chunk + 900]
        for r in db.execute(
            "SELECT i.id, i.source_id, i.fingerprint, i.status, i.reason, f.name, f.url,"
            " f.size, f.sha1, f.format, f.status AS fstatus FROM items AS i"
            " LEFT JOIN files AS f ON f.id = (SELECT min(id) FROM files WHERE item_id = i.id)"
            f" WHERE i.source = ? AND i.source_id IN ({','.join('?' * len(part))})",
            (SOURCE, *part),
        ):
            stored = Audio(*tuple(r)[5:10]) if r["fstatus"] == "fetched" else None
            known[r["source_id"]] = _Known(
                r["id"], r["fingerprint"], r["status"], r["reason"], r["size"], stored
            )
    return known


def _write(
    mirror: Mirror,
    batch: list[Track],
    audio: AudioIndex,
    gate: _Gate,
    albums: dict[str, dict[str, str]],
    salt: str,
    result: dict[str, Any],
) -> None:
    db = mirror.db
    now = utcnow()
    known = _known(db, [source_id(t.track_id) for t in batch])
    new: list[Planned] = []
    changes: list[tuple[Planned, _Known]] = []
    refresh: list[tuple[str, int]] = []
    for t in batch:
        found, missing = audio.lookup(t.track_id, t.get("track_file"))
        album = albums.get(t.get("album_id")) if albums else None
        raw = raw_fingerprint(t, found, missing, salt, album)
        old = known.get(source_id(t.track_id))
        if old is not None and old.fingerprint and old.fingerprint.startswith(raw + ":"):
            _count_known(old, result)
            result["unchanged"] += 1
            continue
        p = _plan(t, found, missing, gate, raw, albums)
        if old is not None and old.status == "withdrawn":
            # A takedown outlives every later harvest.
            p.item["status"], p.item["reason"] = old.status, old.reason
        if p.item["status"] == "empty" and old is not None and old.stored is not None:
            # The audio source lost a file we already hold (an unmounted disk, a partial
            # tree): the verified copy in the store still counts.
            p.item["status"], p.item["reason"], p.audio = "ok", None, old.stored
        _count(p, result)
        if old is None:
            new.append(p)
        elif old.fingerprint and old.fingerprint.endswith(p.fingerprint()[len(raw) :]):
            # Another row (or policy) that makes the same plan: only the fingerprint moves.
            refresh.append((p.fingerprint(), old.item_id))
            result["unchanged"] += 1
        else:
            changes.append((p, old))
    if not new and not changes and not refresh:
        return
    with transaction(db):
        db.executemany("UPDATE items SET fingerprint = ? WHERE id = ?", refresh)
        if new:
            result["new"] += len(new)
            result["files"] += _insert_new(db, new, now)
        for p, old in changes:
            _update_item(db, old.item_id, p, now)
            result["updated"] += 1
            result["files"] += _sync_file(db, old.item_id, p)
            if p.audio is not None:
                _record_recording(db, old.item_id, p)


def _count_known(old: _Known, result: dict[str, Any]) -> None:
    """`_count` for an unchanged track, from what the catalogue says."""
    result["found"] += 1
    if old.status == "empty":
        result["empty"] += 1
    elif old.status == "refused":
        reason = old.reason or "refused"
        result["refused"][reason] = result["refused"].get(reason, 0) + 1
        result["refused_items"] += 1
    elif old.status == "ok":
        result["bytes"] += old.size or 0


def _insert_new(db: sqlite3.Connection, new: list[Planned], now: str) -> int:
    """Insert new items and their files with executemany; returns files waiting to fetch."""
    cols = ("source", "source_id", *ITEM_COLUMNS, "fingerprint", "first_seen", "harvested_at")
    db.executemany(
        f"INSERT INTO items ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [
            (SOURCE, p.source_id, *(p.item[c] for c in ITEM_COLUMNS), p.fingerprint(), now, now)
            for p in new
        ],
    )
    ids = {k: v.item_id for k, v in _known(db, [p.source_id for p in new]).items()}
    rows = []
    for p in new:
        a = p.audio
        if a is None:
            continue
        ok = p.item["status"] == "ok"
        why = None if ok else f"item {p.item['status']}: {p.item['reason']}"
        rows.append(
            (ids[p.source_id], a.name, a.size, p.est_size, a.sha1, a.format, a.url,
             "pending" if ok else "refused", why)
        )  # fmt: skip
    db.executemany(
        "INSERT INTO files (item_id, name, size, est_size, sha1, format, origin, url, status,"
        " reason) VALUES (?, ?, ?, ?, ?, ?, 'original', ?, ?, ?)",
        rows,
    )
    for p in new:
        if p.audio is not None:
            _record_recording(db, ids[p.source_id], p)
    return sum(1 for r in rows if r[7] == "pending")


def _count(p: Planned, result: dict[str, Any]) -> None:
    result["found"] += 1
    status = p.item["status"]
    if status == "empty":
        result["empty"] += 1
    elif status == "refused":
        reason = p.item["reason"] or "refused"
        result["refused"][reason] = result["refused"].get(reason, 0) + 1
        result["refused_items"] += 1
    if p.audio is not None and status == "ok":
        result["bytes"] += p.audio.size or 0


def _insert_item(db: sqlite3.Connection, p: Planned, now: str) -> int:
    cols = ("source", "source_id", *ITEM_COLUMNS, "first_seen", "harvested_at")
    values = (SOURCE, p.source_id, *(p.item[c] for c in ITEM_COLUMNS), now, now)
    cur = db.execute(
        f"INSERT INTO items ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values
    )
    return int(cur.lastrowid or 0)


def _update_item(db: sqlite3.Connection, item_id: int, p: Planned, now: str) -> None:
    sets = ", ".join(f"{c} = ?" for c in ITEM_COLUMNS)
    db.execute(
        f"UPDATE items SET {sets}, fingerprint = ?, harvested_at = ? WHERE id = ?",
        (*(p.item[c] for c in ITEM_COLUMNS), p.fingerprint(), now, item_id),
    )


def _record_recording(db: sqlite3.Connection, item_id: int, p: Planned) -> None:
    row = db.execute(
        "SELECT id FROM files WHERE item_id = ? AND name = ?", (item_id, p.audio.name)
    ).fetchone()
    if row is None:
        return
    set_recording(db, row["id"], _recording(p))
    duration = json.loads(p.item["extra"]).get("duration")
    if duration:
        db.execute("UPDATE files SET duration = ? WHERE id = ?", (float(duration), row["id"]))


def _sync_file(db: sqlite3.Connection, item_id: int, p: Planned) -> int:
    """Make the item's file row match the plan without losing fetched or packed bytes.

    Returns 1 when the file is new or changed and waits to be fetched, else 0.
    """
    a = p.audio
    # Rows for a file the dataset no longer names: drop them unless they hold bytes.
    db.execute(
        "DELETE FROM files WHERE item_id = ? AND name IS NOT ? AND status != 'fetched'"
        " AND id NOT IN (SELECT file_id FROM pack_files)",
        (item_id, a.name if a else None),
    )
    if a is None:
        return 0
    status = p.item["status"]
    want, why = (
        ("pending", None) if status == "ok" else ("refused", f"item {status}: {p.item['reason']}")
    )
    row = db.execute(
        "SELECT id, size, sha1, status FROM files WHERE item_id = ? AND name = ?",
        (item_id, a.name),
    ).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO files (item_id, name, size, est_size, sha1, format, origin, url,"
            " status, reason) VALUES (?, ?, ?, ?, ?, ?, 'original', ?, ?, ?)",
            (item_id, a.name, a.size, p.est_size, a.sha1, a.format, a.url, want, why),
        )
        return int(want == "pending")
    changed = (a.size is not None and a.size != row["size"]) or (
        a.sha1 is not None and a.sha1 != row["sha1"]
    )
    if (row["status"] == "fetched" and not changed) or status == "withdrawn":
        db.execute(
            "UPDATE files SET url = ?, size = ?, est_size = ?, sha1 = ?, format = ? WHERE id = ?",
            (a.url, a.size or row["size"], p.est_size, a.sha1, a.format, row["id"]),
        )
        return 0
    if row["status"] == "failed" and want == "pending" and not changed:
        want, why = "failed", None  # keep the fetcher's reason; it retries failed files
        db.execute(
            "UPDATE files SET url = ?, size = ?, est_size = ?, sha1 = ?, format = ? WHERE id = ?",
            (a.url, a.size or row["size"], p.est_size, a.sha1, a.format, row["id"]),
        )
        return 0
    # New bytes, or a pending/refused row: fetch (and check) again from scratch.
    db.execute(
        "UPDATE files SET url = ?, size = ?, sha1 = ?, format = ?, status = ?, reason = ?,"
        " attempts = 0, fetched_at = NULL, verdict = NULL, verdict_reason = NULL,"
        " checked_at = NULL WHERE id = ?",
        (a.url, a.size, a.sha1, a.format, want, why, row["id"]),
    )
    return int(want == "pending")
