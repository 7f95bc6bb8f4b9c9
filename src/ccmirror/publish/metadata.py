"""The metadata dump: the whole catalogue as gzipped JSON lines and as a SQLite snapshot,
published as a torrent of its own (a `packs` row with is_metadata=1, tier 0).

The SQLite snapshot is taken first with the backup API and the JSON lines are read from
that snapshot, so both files describe the same instant. The JSON lines are reproducible
(sorted rows, sorted keys, gzip with mtime 0, no bookkeeping columns such as
items.harvested_at or the metadata torrents' own rows): an unchanged catalogue gives the
same bytes, and then no new torrent is made. A new metadata torrent makes older ones
obsolete.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.metadata import (
    catalogue_empty,
    current_metadata,
    dump_lines,
    metadata_sealed,
    next_metadata_seq,
    obsolete_metadata_names,
    pack_named,
)
from ccmirror.fsutil import atomic_write_bytes, fsync_dir, fsync_file
from ccmirror.mirror import Mirror

__all__ = ["current_metadata", "iter_lines", "metadata_name", "publish_metadata", "write_dump"]

log = logging.getLogger("ccmirror.publish")

DUMP_NAME = "catalogue.jsonl.gz"
SNAPSHOT_NAME = "catalogue.sqlite"
DUMP_FORMAT = 1


def metadata_name(mirror: Mirror, seq: int) -> str:
    return f"{mirror.name}-metadata-{seq:04d}"


def iter_lines(db: sqlite3.Connection, mirror_name: str) -> Iterator[bytes]:
    """The catalogue as JSON lines: `{"row": {...}, "table": ...}`, one row per line."""
    head = {"table": "_dump", "row": {"format": DUMP_FORMAT, "mirror": mirror_name}}
    yield (json.dumps(head, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    for line in dump_lines(db):
        yield line.encode("utf-8") + b"\n"


def write_dump(db: sqlite3.Connection, mirror_name: str, path: Path) -> tuple[str, int]:
    """Stream the JSON lines into a reproducible gzip file (mtime 0, no file name), fsynced;
    return the sha256 of the uncompressed lines and their count."""
    digest = hashlib.sha256()
    n = 0
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            for line in iter_lines(db, mirror_name):
                digest.update(line)
                gz.write(line)
                n += 1
        raw.flush()
        os.fsync(raw.fileno())
    return digest.hexdigest(), n


def snapshot(db: sqlite3.Connection, dest: Path) -> None:
    """A consistent copy of the catalogue via the backup API, as one self-contained file."""
    dest.unlink(missing_ok=True)
    target = sqlite3.connect(dest)
    try:
        db.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()
    fsync_file(dest)


def _previous_digest(mirror: Mirror, pack: sqlite3.Row | None) -> str | None:
    if pack is None:
        return None
    digest = hashlib.sha256()
    try:
        with gzip.open(mirror.packs_dir / pack["name"] / DUMP_NAME, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError):
        return None  # gone or damaged: publish a fresh one
    return digest.hexdigest()


def publish_metadata(mirror: Mirror) -> dict[str, Any]:
    """Make a new metadata torrent when the catalogue changed since the last one."""
    db = mirror.db
    previous = current_metadata(db)
    if previous is None and catalogue_empty(db):
        # A first harvest that found nothing (or never reached its source): nothing to share.
        return {"name": None, "created": False, "skipped": "the catalogue is empty"}
    seq = next_metadata_seq(db)
    name = metadata_name(mirror, seq)
    # Built outside packs/ (same filesystem) so an unchanged catalogue leaves packs/ untouched.
    work = mirror.data_dir / "tmp" / f"{name}.part"
    if work.exists():
        shutil.rmtree(work)  # left by a crash; nothing refers to it
    work.mkdir(parents=True)
    try:
        snapshot(db, work / SNAPSHOT_NAME)
        snap = sqlite3.connect(f"file:{work / SNAPSHOT_NAME}?mode=ro", uri=True)
        snap.row_factory = sqlite3.Row
        try:
            digest, rows = write_dump(snap, mirror.name, work / DUMP_NAME)
        finally:
            snap.close()
        if digest == _previous_digest(mirror, previous):
            shutil.rmtree(work)
            _rmdir_if_empty(work.parent)
            return _result(previous, created=False, digest=digest)
        final = mirror.packs_dir / name
        if final.exists():
            shutil.rmtree(final)  # an earlier crash between rename and catalogue row
        final.parent.mkdir(parents=True, exist_ok=True)
        work.rename(final)
        fsync_dir(mirror.packs_dir)
        _rmdir_if_empty(work.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    row = _seal(mirror, name, seq, final, previous)
    _prune(mirror, keep={name, previous["name"] if previous is not None else name})
    log.info("metadata torrent %s (%d rows)", name, rows)
    return _result(row, created=True, digest=digest)


def _seal(
    mirror: Mirror, name: str, seq: int, root: Path, previous: sqlite3.Row | None
) -> sqlite3.Row:
    import libtorrent as lt

    from ccmirror import __version__
    from ccmirror.packs.torrent import CURRENT_LAYOUT, content_files, make_torrent

    t = mirror.manifest.torrents
    created = int(time.time())
    comment = f"ccmirror catalogue dump of the {mirror.name} mirror"
    creator = f"ccmirror {__version__}"
    # BEP 19: a client asks base + name + "/" + path; the base needs its "/" (as packs).
    web_seeds = [w if w.endswith("/") else w + "/" for w in t.web_seeds]
    data = make_torrent(
        root.parent,  # the save path: the torrent's folder is root.parent / name
        name,
        fmt=t.format,
        piece_size=t.piece_size,
        trackers=list(t.trackers),
        web_seeds=web_seeds,
        comment=comment,
        creation_date=created,
        creator=creator,
        layout=CURRENT_LAYOUT,
    )
    info = lt.torrent_info(lt.bdecode(data))
    hashes = info.info_hashes()
    v1 = str(hashes.v1) if hashes.has_v1() else None
    v2 = str(hashes.v2) if hashes.has_v2() else None
    torrent_rel = f"torrents/{name}.torrent"
    atomic_write_bytes(mirror.data_dir / torrent_rel, data)
    size = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    now = utcnow()
    db = mirror.db
    sealed = {
        "name": name,
        "seq": seq,
        "created_at": now,
        "sealed_at": now,
        "creation_date": created,
        "format": t.format,
        "piece_size": info.piece_length(),
        "info_hash_v1": v1,
        "info_hash_v2": v2,
        "torrent_path": torrent_rel,
        "torrent_size": len(data),
        "num_files": content_files(data)[0],  # libtorrent's count includes pad files
        "data_size": size,
    }
    # Every input of the torrent, so a lost .torrent is rebuilt byte for byte.
    inputs = {
        "comment": comment,
        "trackers": json.dumps(list(t.trackers)),
        "web_seeds": json.dumps(web_seeds),
        "creator": creator,
        "torrent_layout": CURRENT_LAYOUT,
    }
    with transaction(db):
        metadata_sealed(db, sealed, inputs)
    if previous is not None:
        log.info("metadata torrent %s is superseded by %s", previous["name"], name)
    row = pack_named(db, name)
    if row is None:  # just written in this connection's transaction
        raise RuntimeError(f"metadata torrent {name} not recorded")
    return row


def _prune(mirror: Mirror, keep: set[str]) -> None:
    """Delete the payloads of older obsolete metadata torrents (a snapshot can be large and
    a cron mirror may make one a day). The one just superseded stays, so peers in the
    middle of a download can finish; .torrent files and catalogue rows stay recorded."""
    for name in obsolete_metadata_names(mirror.db):
        if name not in keep and (mirror.packs_dir / name).is_dir():
            shutil.rmtree(mirror.packs_dir / name)
            log.info("deleted the payload of obsolete metadata torrent %s", name)


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def _result(row: sqlite3.Row | None, *, created: bool, digest: str) -> dict[str, Any]:
    if row is None:
        return {"name": None, "created": False, "sha256": digest}
    return {
        "name": row["name"],
        "created": created,
        "btih": row["info_hash_v1"] or row["info_hash_v2"],
        "torrent_path": row["torrent_path"],
        "data_size": row["data_size"],
        "sha256": digest,
    }
