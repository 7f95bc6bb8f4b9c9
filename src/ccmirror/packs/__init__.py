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
from ccmirror.budget import budget_selection
from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.states import files_back_to_pending
from ccmirror.errors import CCMirrorError, UnsafeName
from ccmirror.fsutil import atomic_write_bytes
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror
from ccmirror.packs.assign import AssignPlan, plan_assign, retire_unpublishable, run_assign
from ccmirror.packs.payload import (
    build_payload,
    fill_hashes,
    hash_mismatch,
    manifest_columns,
    pack_rows,
)
from ccmirror.packs.rebuild import repair_torrents
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
from ccmirror.tiers import rank_items

log = logging.getLogger("ccmirror.packs")

__all__ = ["PackPlan", "pack", "plan_pack", "seal_pack"]


def _pending_tiers(mirror: Mirror) -> set[int]:
    """Tiers that still have files waiting for fetch or check (under a budget, of the items
    its selection holds: the others wait for no one)."""
    ranking = {it.id: it.tier for it in rank_items(mirror.db, mirror.manifest.tiers.shares)}
    held = budget_selection(mirror)
    if held is not None:
        ranking = {i: t for i, t in ranking.items() if i in held.chosen}
    out = set()
    for r in mirror.db.execute(
        "SELECT DISTINCT f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.compact IS NOT 'derivative' AND (f.status = 'pending'"
        " OR (f.status = 'fetched' AND f.verdict IS NULL))"
    ):
        if r[0] in ranking:
            out.add(ranking[r[0]])
    return out


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
    packs: dict[str, list[int]] = {}  # name -> [tier, seq, files, bytes]
    for r in mirror.db.execute(
        "SELECT p.name, p.tier, p.seq, count(pf.file_id), coalesce(sum(f.size), 0)"
        " FROM packs p LEFT JOIN pack_files pf ON pf.pack_id = p.id"
        " LEFT JOIN files f ON f.id = pf.file_id"
        " WHERE p.status = 'open' AND p.is_metadata = 0 AND p.obsolete = 0 GROUP BY p.id"
    ):
        packs[r[0]] = [r[1], r[2], r[3], r[4]]
    for slot in plan.assign.slots:
        if slot.files:
            entry = packs.setdefault(slot.name, [slot.tier, slot.seq, 0, 0])
            entry[2] += slot.files
    for n, _fid, _path, size in plan.assign.entries:
        packs[plan.assign.slots[n].name][3] += size
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


def _share_basis(mirror: Mirror) -> dict[int, float]:
    """Each item's share of the mirror's listening, spread evenly over its files."""
    ranking = rank_items(mirror.db, mirror.manifest.tiers.shares)
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    marks = ",".join("?" * len(allowed))
    counts = dict(
        mirror.db.execute(
            "SELECT item_id, count(*) FROM files WHERE status = 'fetched'"
            f" AND store_path IS NOT NULL AND verdict IN ({marks}) GROUP BY item_id",
            allowed,
        ).fetchall()
    )
    return {it.id: it.share / max(1, counts.get(it.id, 1)) for it in ranking}


def seal_pack(
    mirror: Mirror,
    pack_id: int,
    *,
    reporter: Reporter | None = None,
    workers: int | None = None,
    basis: dict[int, float] | None = None,
) -> dict[str, Any]:
    """Build the payload and torrent of one open pack and seal it. `basis` (item id ->
    share per file, from `_share_basis`) saves re-ranking when sealing many packs."""
    db, tc = mirror.db, mirror.manifest.torrents
    reporter = reporter or NullReporter()
    workers = workers or os.cpu_count() or 1
    p = db.execute("SELECT * FROM packs WHERE id = ?", (pack_id,)).fetchone()
    if p is None or p["status"] != "open":
        raise CCMirrorError(f"pack {pack_id} is not open")
    if p["creation_date"] is None:
        # Fix every torrent input now: a rebuild after a crash gives the same bytes.
        with transaction(db):
            db.execute(
                "UPDATE packs SET creation_date = ?, format = ?, piece_size = ?, creator = ?,"
                " comment = ?, trackers = ?, web_seeds = ?, torrent_layout = ?,"
                " manifest_columns = ? WHERE id = ?",
                (
                    int(time.time()),
                    tc.format,
                    tc.piece_size,
                    f"ccmirror {__version__}",
                    f"ccmirror mirror {mirror.name}, tier {p['tier']}",
                    json.dumps(list(tc.trackers)),
                    # BEP 19: a client asks base + name + "/" + path; the base needs its "/".
                    json.dumps([w if w.endswith("/") else w + "/" for w in tc.web_seeds]),
                    CURRENT_LAYOUT,
                    json.dumps(manifest_columns([dict(r) for r in pack_rows(db, pack_id)])),
                    pack_id,
                ),
            )
        p = db.execute("SELECT * FROM packs WHERE id = ?", (pack_id,)).fetchone()
    rows, missing = _present_rows(mirror, pack_id)
    if not rows:
        return {"name": p["name"], "files": 0, "bytes": 0, "missing": missing, "sealed": False}
    total = sum(r["size"] for r in rows)
    to_hash = sum(r["size"] for r in rows if not (r["md5"] and r["sha1"] and r["sha256"]))
    reporter.start(p["name"], total + to_hash, "bytes")
    try:
        hashes = fill_hashes(mirror.data_dir, rows, workers, reporter.advance)
        rows, changed = _unchanged_rows(mirror, pack_id, rows, hashes)
        missing += changed
        if not rows:
            return {"name": p["name"], "files": 0, "bytes": 0, "missing": missing, "sealed": False}
        total = sum(r["size"] for r in rows)
        with transaction(db):
            for r in rows:
                for algo, hexd in hashes.get(r["file_id"], {}).items():
                    if not r[algo]:
                        db.execute(
                            f"UPDATE files SET {algo} = ? WHERE id = ?", (hexd, r["file_id"])
                        )
        for r in rows:
            r.update(hashes.get(r["file_id"], {}))
        columns = json.loads(p["manifest_columns"]) if p["manifest_columns"] else None
        links = build_payload(
            mirror.data_dir, mirror.packs_dir, p["name"], mirror.name, rows, columns
        )
        trackers = json.loads(p["trackers"] or "[]")
        torrent = make_torrent(
            mirror.packs_dir,
            p["name"],
            fmt=p["format"],
            piece_size=p["piece_size"],
            trackers=trackers,
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
    v1, v2 = info_hashes(torrent)
    rel = f"torrents/{p['name']}.torrent"
    atomic_write_bytes(mirror.data_dir / rel, torrent)
    # Counted on disk: hybrid/v2 torrents also list pad files, which are not content.
    on_disk = payload_files(mirror.packs_dir, p["name"])
    basis = basis if basis is not None else _share_basis(mirror)
    item_of = dict(
        db.execute(
            "SELECT f.id, f.item_id FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " WHERE pf.pack_id = ?",
            (pack_id,),
        ).fetchall()
    )
    popularity = sum(basis.get(item_of[r["file_id"]], 0.0) for r in rows)
    with transaction(db):
        db.execute(
            "UPDATE packs SET status = 'sealed', sealed_at = ?, info_hash_v1 = ?,"
            " info_hash_v2 = ?, torrent_path = ?, torrent_size = ?, num_files = ?,"
            " data_size = ?, piece_size = ?, popularity = ? WHERE id = ? AND status = 'open'",
            (
                utcnow(),
                v1,
                v2,
                rel,
                len(torrent),
                len(on_disk),
                sum(size for _, size in on_disk),
                piece_length(torrent),
                round(popularity, 9),
                pack_id,
            ),
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
            mirror.db.executemany(
                "DELETE FROM pack_files WHERE pack_id = ? AND file_id = ?",
                [(pack_id, fid) for fid in gone],
            )
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
            mirror.db.executemany(
                "DELETE FROM pack_files WHERE pack_id = ? AND file_id = ?",
                [(pack_id, fid) for _, fid in bad],
            )
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
    ids = {
        r["name"]: r["id"]
        for r in mirror.db.execute(
            "SELECT id, name FROM packs WHERE status = 'open' AND is_metadata = 0 AND obsolete = 0"
        )
    }
    basis = _share_basis(mirror) if plan.seal else {}
    for name in plan.seal:
        done = seal_pack(mirror, ids[name], reporter=reporter, basis=basis)
        missing += done.pop("missing")
        if done.pop("sealed"):
            sealed.append(done)
    write_torrents_json(mirror)
    open_packs = mirror.db.execute(
        "SELECT name, (SELECT count(*) FROM pack_files pf WHERE pf.pack_id = p.id) AS files"
        " FROM packs p WHERE status = 'open' AND obsolete = 0 AND is_metadata = 0 ORDER BY name"
    ).fetchall()
    return {
        "assigned_files": assigned["assigned_files"],
        "assigned_items": assigned["assigned_items"],
        "sealed": sealed,
        "open": [dict(r) for r in open_packs],
        "repaired": repair["repaired"],
        "obsoleted": retired["obsoleted"],
        "failed": assigned["missing"] + missing + len(repair["failed"]),
        "publishable_verdicts": list(
            publishable_verdicts(mirror.manifest.licence.require_embedded)
        ),
    }
