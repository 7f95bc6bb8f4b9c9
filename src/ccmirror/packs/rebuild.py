"""Lost or damaged .torrent files of sealed torrents (packs and the metadata torrent),
rebuilt from the inputs the catalogue recorded when they were sealed.

A sealed torrent never changes: the rebuilt bytes must carry the recorded info-hash(es),
or nothing is written. A pack whose payload folder is gone too gets its payload back
from the store first (the store holds the verified originals); the metadata torrent's
payload (a SQLite snapshot) cannot be made again byte for byte, so a metadata torrent
without its payload is left to `publish`, which makes a new one.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror import __version__
from ccmirror.catalogue.packs import live_sealed_packs, pack_rows
from ccmirror.errors import CCMirrorError
from ccmirror.fsutil import atomic_write_bytes
from ccmirror.mirror import Mirror
from ccmirror.packs.payload import build_payload
from ccmirror.packs.sealed import has_record, keep_generated, recorded_generated
from ccmirror.packs.torrent import LAYOUT_LT2, info_hashes, make_torrent

log = logging.getLogger("ccmirror.packs")

__all__ = ["rebuild_torrent", "repair_torrents", "torrent_path", "torrent_problem"]


def torrent_path(mirror: Mirror, row: sqlite3.Row) -> Path:
    return mirror.data_dir / (row["torrent_path"] or f"torrents/{row['name']}.torrent")


def torrent_problem(mirror: Mirror, row: sqlite3.Row) -> str | None:
    """Why the sealed row's .torrent cannot be used as published; None when it can."""
    path = torrent_path(mirror, row)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    try:
        v1, v2 = info_hashes(data)
    except RuntimeError:
        return "damaged (not a torrent file)"
    if (v1, v2) != (row["info_hash_v1"], row["info_hash_v2"]):
        return f"damaged (info-hash {v1 or v2}, not {row['info_hash_v1'] or row['info_hash_v2']})"
    if row["torrent_size"] is not None and len(data) != row["torrent_size"]:
        return f"changed ({len(data)} bytes, {row['torrent_size']} published)"
    return None


def _inputs(mirror: Mirror, row: sqlite3.Row) -> dict[str, Any]:
    trackers = row["trackers"]
    web_seeds = row["web_seeds"]
    return {
        "fmt": row["format"] or "v1",
        "piece_size": row["piece_size"],
        "trackers": json.loads(trackers) if trackers else list(mirror.manifest.torrents.trackers),
        "web_seeds": json.loads(web_seeds) if web_seeds is not None else [],
        "comment": row["comment"],
        "creation_date": row["creation_date"],
        # Older metadata rows did not record their creator: it was this default then.
        "creator": row["creator"] or f"ccmirror {__version__}",
        "layout": row["torrent_layout"] or LAYOUT_LT2,
    }


def _columns(row: sqlite3.Row) -> list[str] | None:
    recorded = row["manifest_columns"]
    return json.loads(recorded) if recorded else None


def rebuild_torrent(mirror: Mirror, row: sqlite3.Row) -> Path:
    """Write the sealed row's .torrent again (and a pack's payload when it is gone);
    raise CCMirrorError when the result would not carry the recorded info-hash."""
    payload = mirror.packs_dir / row["name"]
    if payload.is_dir():
        torrent = _checked(mirror, row)
    elif row["is_metadata"]:
        raise CCMirrorError(
            f"its payload {payload} is gone; 'ccmirror publish' makes a new metadata torrent"
        )
    else:
        torrent = _from_store(mirror, row)
    path = torrent_path(mirror, row)
    atomic_write_bytes(path, torrent)
    return path


def _from_store(mirror: Mirror, row: sqlite3.Row) -> bytes:
    """The payload made again from the store, then its torrent. MANIFEST.csv and
    ATTRIBUTION.md as sealed (`packs.sealed`: a harvest may have changed the rows they
    were made from); without a record, or when the record does not give the sealed
    info-hash (written by hand, or the pack was re-sealed behind its back), made from the
    catalogue: the info-hash check catches rows edited since sealing."""
    payload = mirror.packs_dir / row["name"]
    rows = [dict(r) for r in pack_rows(mirror.db, row["id"])]
    recorded = recorded_generated(mirror.data_dir, row["name"])
    tries = [recorded, None] if recorded is not None else [None]
    for n, generated in enumerate(tries, start=1):
        build_payload(
            mirror.data_dir, mirror.packs_dir, row["name"], mirror.name, rows, _columns(row),
            generated,
        )  # fmt: skip
        try:
            return _checked(mirror, row)
        except CCMirrorError:
            # do not leave a payload that does not match the published torrent
            shutil.rmtree(payload, ignore_errors=True)
            if n == len(tries):
                raise
    raise CCMirrorError(f"{row['name']}: nothing to rebuild from")  # not reached


def _checked(mirror: Mirror, row: sqlite3.Row) -> bytes:
    """The payload's torrent, made from the recorded inputs; CCMirrorError unless it has
    the sealed info-hash."""
    torrent = make_torrent(mirror.packs_dir, row["name"], **_inputs(mirror, row))
    v1, v2 = info_hashes(torrent)
    if (v1, v2) != (row["info_hash_v1"], row["info_hash_v2"]):
        raise CCMirrorError(
            f"the rebuilt torrent has info-hash {v1 or v2}, not the sealed"
            f" {row['info_hash_v1'] or row['info_hash_v2']}: its files or catalogue rows changed"
        )
    return torrent


def _record_once(mirror: Mirror, row: sqlite3.Row) -> None:
    """A pack sealed before its generated files were recorded: record them now, from its
    payload in place beside a sound .torrent (`packs.sealed`)."""
    if row["is_metadata"] or has_record(mirror.data_dir, row["name"]):
        return
    keep_generated(mirror.data_dir, mirror.packs_dir / row["name"], row["name"])


def repair_torrents(mirror: Mirror) -> dict[str, Any]:
    """Check every live sealed torrent (packs and metadata) and rebuild the ones whose
    .torrent is missing or damaged, or whose pack payload is gone.

    Returns {"repaired": [names], "failed": [{"name", "error"}], "left_to_publish": [names]}.
    """
    repaired: list[str] = []
    failed: list[dict[str, str]] = []
    left: list[str] = []
    for row in live_sealed_packs(mirror.db):
        payload_gone = not (mirror.packs_dir / row["name"]).is_dir()
        problem = torrent_problem(mirror, row)
        if problem is None and not (payload_gone and not row["is_metadata"]):
            _record_once(mirror, row)
            continue
        if row["is_metadata"] and payload_gone:
            log.warning(
                "metadata torrent %s: its payload is gone; 'ccmirror publish' makes a new one",
                row["name"],
            )
            left.append(row["name"])
            continue
        what = f".torrent {problem}" if problem else "payload gone"
        try:
            rebuild_torrent(mirror, row)
        except (CCMirrorError, OSError, RuntimeError) as e:
            log.error("%s (%s) cannot be rebuilt: %s", row["name"], what, e)
            failed.append({"name": row["name"], "error": str(e)})
            continue
        log.warning("rebuilt %s (%s): same info-hash", row["name"], what)
        repaired.append(row["name"])
    return {"repaired": repaired, "failed": failed, "left_to_publish": left}
