"""Packs (DESIGN §6): assign publishable files to tiered packs, seal them into torrents.

Sealing order, for crash safety: fix the torrent's inputs in the catalogue (creation
date, piece size, trackers...; the pack is still open), build the payload tree (renamed
into place when complete), write the .torrent atomically, and only then mark the pack
sealed. A crash anywhere leaves the pack open; the next run rebuilds it from the same
inputs and gets the same bytes. A sealed pack is never changed again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ccmirror import __version__
from ccmirror.budget import budget_selection, held_sql
from ccmirror.catalogue import transaction
from ccmirror.catalogue.assign import waiting_tiers
from ccmirror.catalogue.packs import (
    files_out_of_pack,
    fix_torrent_inputs,
    hashes_recorded,
    open_pack_ids,
    open_pack_totals,
    open_packs_listed,
    pack_by_id,
    pack_file_shares,
    pack_rows,
    pack_sealed,
)
from ccmirror.catalogue.states import files_back_to_pending
from ccmirror.catalogue.tiers import Ranking, ranking
from ccmirror.errors import CCMirrorError, UnsafeName
from ccmirror.fsutil import atomic_write_bytes
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror
from ccmirror.packs.assign import AssignPlan, plan_assign, run_assign
from ccmirror.packs.payload import build_payload, fill_hashes, hash_mismatch, manifest_columns
from ccmirror.packs.rebuild import repair_torrents
from ccmirror.packs.retire import retire_unpublishable
from ccmirror.packs.sealed import keep_generated
from ccmirror.packs.torrent import (
    CURRENT_LAYOUT,
    LAYOUT_LT2,
    info_hashes,
    make_torrent,
    payload_files,
    piece_length,
)
from ccmirror.progress import NullReporter, Reporter
from ccmirror.quarantine import quarantine

log = logging.getLogger("ccmirror.packs")

__all__ = ["PackPlan", "pack", "plan_pack", "seal_pack"]


def _pending_tiers(mirror: Mirror) -> set[int]:
    """Tiers that still have files waiting for fetch or check (under a budget, of the items
    its selection holds: the others wait for no one). In SQL: no object per item."""
    held = budget_selection(mirror)
    rk = held.ranking if held is not None else ranking(mirror.db, mirror.manifest.tiers.shares)
    return waiting_tiers(mirror.db, rk, held_sql(held) if held is not None else None)


@dataclass
class PackPlan:
    """What a pack run does: the files it assigns, the packs it seals (by name, in order)."""

    assign: AssignPlan
    seal: list[str] = field(default_factory=list)
    seal_files: dict[str, int] = field(default_factory=dict)  # pack -> files in it
    seal_bytes: dict[str, int] = field(default_factory=dict)


def plan_pack(
    mirror: Mirror,
    *,
    seal_partial: bool = False,
    seal_when_complete: bool = False,
    predicted: Iterable[sqlite3.Row] = (),
    pending: set[int] | None = None,
) -> PackPlan:
    """Decide, reading only, what `pack` assigns and seals. A dry run passes the files it
    expects to become publishable (`predicted`) and the tiers still waiting (`pending`)."""
    plan = PackPlan(plan_assign(mirror, predicted))
    packs = open_pack_totals(mirror.db)  # name -> [tier, seq, files, bytes]
    for slot in plan.assign.slots:
        if slot.files:
            entry = packs.setdefault(slot.name, [slot.tier, slot.seq, 0, 0])
            entry[2] += slot.files
            entry[3] += slot.added
    newest: dict[int, int] = {}
    for tier, seq, _n, _b in packs.values():
        newest[tier] = max(newest.get(tier, 0), seq)
    if seal_when_complete and pending is None:
        pending = _pending_tiers(mirror)
    for name, (tier, seq, n, size) in sorted(packs.items(), key=lambda x: (x[1][0], x[1][1])):
        if not n:
            continue
        full = newest[tier] != seq
        if full or seal_partial or (seal_when_complete and tier not in (pending or set())):
            plan.seal.append(name)
            plan.seal_files[name], plan.seal_bytes[name] = n, size
    return plan


def _file_shares(mirror: Mirror, pack_id: int, rk: Ranking | None) -> dict[int, float]:
    """File id -> its item's share of the mirror's listening spread evenly over the item's
    publishable files, for one pack's files (SQL: nothing read for items of other packs)."""
    rk = rk or ranking(mirror.db, mirror.manifest.tiers.shares)
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    share, params = rk.share_sql()
    return pack_file_shares(mirror.db, pack_id, share, params, allowed)


def seal_pack(
    mirror: Mirror,
    pack_id: int,
    *,
    reporter: Reporter | None = None,
    workers: int | None = None,
    rk: Ranking | None = None,
) -> dict[str, Any]:
    """Build the payload and torrent of one open pack and seal it. `rk` (the ranking)
    saves re-ranking when sealing many packs."""
    db = mirror.db
    reporter = reporter or NullReporter()
    workers = workers or os.cpu_count() or 1
    p = pack_by_id(db, pack_id)
    if p is None or p["status"] != "open":
        raise CCMirrorError(f"pack {pack_id} is not open")
    if p["creation_date"] is None:
        # Fix every torrent input now: a rebuild after a crash gives the same bytes.
        with transaction(db):
            fix_torrent_inputs(db, pack_id, _torrent_inputs(mirror, p))
        p = pack_by_id(db, pack_id)
    rows, missing = _present_rows(mirror, pack_id)
    nothing = {"name": p["name"], "files": 0, "bytes": 0, "missing": missing, "sealed": False}
    if not rows:
        return nothing
    rows, changed, built = _build(mirror, p, rows, workers, reporter)
    missing += changed
    if built is None:
        return nothing | {"missing": missing}
    links, torrent = built
    # MANIFEST.csv and ATTRIBUTION.md as sealed, for a rebuild after the payload is lost.
    keep_generated(mirror.data_dir, mirror.packs_dir / p["name"], p["name"])
    total = sum(r["size"] for r in rows)
    v1, v2 = info_hashes(torrent)
    rel = f"torrents/{p['name']}.torrent"
    atomic_write_bytes(mirror.data_dir / rel, torrent)
    # Counted on disk: hybrid/v2 torrents also list pad files, which are not content.
    on_disk = payload_files(mirror.packs_dir, p["name"])
    shares = _file_shares(mirror, pack_id, rk)
    popularity = sum(shares.get(r["file_id"], 0.0) for r in rows)
    with transaction(db):
        pack_sealed(
            db,
            pack_id,
            {
                "info_hash_v1": v1,
                "info_hash_v2": v2,
                "torrent_path": rel,
                "torrent_size": len(torrent),
                "num_files": len(on_disk),
                "data_size": sum(size for _, size in on_disk),
                "piece_size": piece_length(torrent),
                "popularity": round(popularity, 9),
            },
        )
    log.info("sealed %s: %d files, %d bytes, btih %s", p["name"], len(rows), total, v1)
    return {
        "name": p["name"],
        "files": len(rows),
        "bytes": total,
        "btih": v1,
        "btmh": v2,
        "missing": missing,
        "sealed": True,
        **links,
    }


def _torrent_inputs(mirror: Mirror, p: sqlite3.Row) -> dict[str, Any]:
    """What an open pack's torrent is made from, fixed once (`fix_torrent_inputs`)."""
    tc = mirror.manifest.torrents
    return {
        "creation_date": int(time.time()),
        "format": tc.format,
        "piece_size": tc.piece_size,
        "creator": f"ccmirror {__version__}",
        "comment": f"ccmirror mirror {mirror.name}, tier {p['tier']}",
        "trackers": json.dumps(list(tc.trackers)),
        # BEP 19: a client asks base + name + "/" + path; the base needs its "/".
        "web_seeds": json.dumps([w if w.endswith("/") else w + "/" for w in tc.web_seeds]),
        "torrent_layout": CURRENT_LAYOUT,
        "manifest_columns": json.dumps(
            manifest_columns([dict(r) for r in pack_rows(mirror.db, p["id"])])
        ),
    }


def _build(
    mirror: Mirror,
    p: sqlite3.Row,
    rows: list[dict[str, Any]],
    workers: int,
    reporter: Reporter,
) -> tuple[list[dict[str, Any]], int, tuple[dict[str, Any], bytes] | None]:
    """Hash the pack's files, build its payload tree and torrent: (the rows kept, how many
    files left the pack, (the payload's links, the torrent) or None when none is left)."""
    db = mirror.db
    total = sum(r["size"] for r in rows)
    to_hash = sum(r["size"] for r in rows if not (r["md5"] and r["sha1"] and r["sha256"]))
    reporter.start(p["name"], total + to_hash, "bytes")
    try:
        hashes = fill_hashes(mirror.data_dir, rows, workers, reporter.advance)
        rows, changed = _unchanged_rows(mirror, p["id"], rows, hashes)
        if not rows:
            return rows, changed, None
        with transaction(db):
            hashes_recorded(
                db,
                (
                    (r["file_id"], algo, hexd)
                    for r in rows
                    for algo, hexd in hashes.get(r["file_id"], {}).items()
                    if not r[algo]
                ),
            )
        for r in rows:
            r.update(hashes.get(r["file_id"], {}))
        columns = json.loads(p["manifest_columns"]) if p["manifest_columns"] else None
        links = build_payload(
            mirror.data_dir, mirror.packs_dir, p["name"], mirror.name, rows, columns
        )
        torrent = make_torrent(
            mirror.packs_dir,
            p["name"],
            fmt=p["format"],
            piece_size=p["piece_size"],
            trackers=json.loads(p["trackers"] or "[]"),
            web_seeds=json.loads(p["web_seeds"] or "[]"),
            comment=p["comment"],
            creation_date=p["creation_date"],
            creator=p["creator"],
            workers=workers,
            progress=reporter.advance,
            # Inputs fixed before layouts were recorded were fixed for libtorrent's own.
            layout=p["torrent_layout"] or LAYOUT_LT2,
        )
    finally:
        reporter.finish()
    return rows, changed, (links, torrent)


def _present_rows(mirror: Mirror, pack_id: int) -> tuple[list[dict[str, Any]], int]:
    """The open pack's files; any whose store file vanished or changed size since it was
    assigned is dropped from the pack (and tried again by a later run)."""
    rows, gone = [], []
    for r in pack_rows(mirror.db, pack_id):
        try:
            size = os.stat(mirror.abspath(r["store_path"])).st_size
        except (OSError, UnsafeName):  # gone, or a symlink planted to lead outside
            size = None
        if size is None or (r["size"] is not None and size != r["size"]):
            log.error(
                "%s: store file %s is missing or changed; left out", r["path"], r["store_path"]
            )
            gone.append(r["file_id"])
            continue
        rows.append(dict(r) | {"size": size})
    if gone:
        with transaction(mirror.db):
            files_out_of_pack(mirror.db, pack_id, gone)
    return rows, len(gone)


def _unchanged_rows(
    mirror: Mirror, pack_id: int, rows: list[dict[str, Any]], hashes: dict[int, dict[str, str]]
) -> tuple[list[dict[str, Any]], int]:
    """The rows whose store bytes still match the catalogue's checksums. The others
    (edited or replaced behind ccmirror's back, same size) leave the pack; their bytes go
    to quarantine (kept for the operator) and the file is pending again, so the next fetch
    downloads the source's bytes and the next check judges them afresh."""
    keep, bad = [], []
    for r in rows:
        why = hash_mismatch(r, hashes.get(r["file_id"], {}))
        if why is None:
            keep.append(r)
            continue
        why = f"store file changed since it was fetched: {why}"
        log.error("%s: %s; left out, to be fetched again", r["path"], why)
        try:
            quarantine(
                mirror.data_dir,
                r["source"],
                r["source_id"],
                r["name"],
                mirror.abspath(r["store_path"]),
                {"reason": why, "stage": "pack", "store_path": r["store_path"]},
            )
        except (CCMirrorError, OSError) as e:
            # The bytes stay where they are (a fetch would overwrite them): left out of
            # the pack again on the next run, with this error, until the operator acts.
            log.error("cannot quarantine %s: %s", r["store_path"], e)
            bad.append((None, r["file_id"]))
            continue
        bad.append((why, r["file_id"]))
    if bad:
        with transaction(mirror.db):
            files_out_of_pack(mirror.db, pack_id, [fid for _, fid in bad])
            files_back_to_pending(mirror.db, [(why, fid) for why, fid in bad if why is not None])
    return keep, len(bad)


def pack(
    mirror: Mirror,
    *,
    seal_partial: bool = False,
    seal_when_complete: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Assign publishable unpacked files to packs; seal full packs (and partial ones when
    asked, or when nothing of their tier is pending and `seal_when_complete`); refresh
    public/torrents.json."""
    from ccmirror.publish.torrents_json import write_torrents_json

    reporter = reporter or NullReporter()
    retired = retire_unpublishable(mirror)
    plan = plan_pack(mirror, seal_partial=seal_partial, seal_when_complete=seal_when_complete)
    assigned = run_assign(mirror, plan.assign)
    repair = repair_torrents(mirror)
    sealed, missing = [], 0
    ids = open_pack_ids(mirror.db)
    rk = ranking(mirror.db, mirror.manifest.tiers.shares) if plan.seal else None
    for name in plan.seal:
        done = seal_pack(mirror, ids[name], reporter=reporter, rk=rk)
        missing += done.pop("missing")
        if done.pop("sealed"):
            sealed.append(done)
    write_torrents_json(mirror)
    return {
        "assigned_files": assigned["assigned_files"],
        "assigned_items": assigned["assigned_items"],
        "sealed": sealed,
        "open": open_packs_listed(mirror.db),
        "repaired": repair["repaired"],
        "obsoleted": retired["obsoleted"],
        "failed": assigned["missing"] + missing + len(repair["failed"]),
        "publishable_verdicts": list(
            publishable_verdicts(mirror.manifest.licence.require_embedded)
        ),
    }
