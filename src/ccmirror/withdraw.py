"""Takedowns: take an item out of the store, out of every pack and out of every future run.

Order matters for crash safety. The catalogue is changed first, in one transaction: the
item becomes 'withdrawn' (harvest, fetch and pack skip every item whose status is not
'ok'), its files 'refused', the packs that held it obsolete. Only then are bytes deleted,
so a crash leaves at worst files that a second `withdraw` (or the next `publish`, which
calls `purge_withdrawn`) deletes; it never leaves a withdrawn file that looks publishable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.errors import UnsafeName, UsageError
from ccmirror.fsutil import atomic_write_json, fsync_dir, safe_join
from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.withdraw")

SOURCES = ("ia", "fma")


def resolve_item(db: sqlite3.Connection, ident: str) -> sqlite3.Row:
    """`ia:<id>`, `fma:<id>`, or a bare id that names exactly one item."""
    ident = ident.strip()
    source, sep, rest = ident.partition(":")
    if sep and source in SOURCES and rest:
        rows = db.execute(
            "SELECT * FROM items WHERE source = ? AND source_id = ?", (source, rest)
        ).fetchall()
    else:
        rows = db.execute("SELECT * FROM items WHERE source_id = ?", (ident,)).fetchall()
    if not rows:
        raise UsageError(f"no item {ident!r} in the catalogue (try 'ccmirror search')")
    if len(rows) > 1:
        names = ", ".join(f"{r['source']}:{r['source_id']}" for r in rows)
        raise UsageError(f"{ident!r} is ambiguous: say which one ({names})")
    return rows[0]


def withdraw(mirror: Mirror, source_id: str, reason: str) -> dict[str, Any]:
    """Withdraw one item (a takedown request); safe to repeat."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("--reason must say why the item is withdrawn (it is published)")
    db = mirror.db
    item = resolve_item(db, source_id)
    ident = f"{item['source']}:{item['source_id']}"
    already = item["status"] == "withdrawn"
    with transaction(db):
        packs = [
            r["name"]
            for r in db.execute(
                "SELECT DISTINCT p.name FROM packs AS p JOIN pack_files AS pf ON pf.pack_id = p.id"
                " JOIN files AS f ON f.id = pf.file_id WHERE f.item_id = ? AND p.obsolete = 0"
                " ORDER BY p.name",
                (item["id"],),
            )
        ]
        db.executemany(
            "UPDATE packs SET obsolete = 1, obsolete_reason = ? WHERE name = ?",
            [(f"withdrawn: {ident}", name) for name in packs],
        )
        db.execute(
            "UPDATE items SET status = 'withdrawn', reason = ? WHERE id = ?",
            (f"withdrawn: {reason}", item["id"]),
        )
        db.execute(
            "UPDATE files SET status = 'refused', reason = ? WHERE item_id = ?",
            (f"withdrawn: {reason}", item["id"]),
        )
        if not already:
            db.execute(
                "INSERT INTO withdrawals (item_id, source, source_id, reason, withdrawn_at,"
                " previous_status, packs_obsoleted) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item["id"],
                    item["source"],
                    item["source_id"],
                    reason,
                    utcnow(),
                    item["status"],
                    json.dumps(packs),
                ),
            )
        elif packs:
            old = db.execute(
                "SELECT packs_obsoleted FROM withdrawals WHERE item_id = ?", (item["id"],)
            ).fetchone()
            merged = sorted(set(json.loads(old[0] if old else "[]")) | set(packs))
            db.execute(
                "UPDATE withdrawals SET packs_obsoleted = ? WHERE item_id = ?",
                (json.dumps(merged), item["id"]),
            )
    purged = purge_withdrawn(mirror)
    path = write_withdrawn_json(mirror)
    torrents_json = refresh_torrents_json(mirror)
    # The public page must not keep showing a withdrawn title until the next publish.
    from ccmirror.publish.run import write_index_html

    index, _ = write_index_html(mirror)
    log.info("withdrew %s: %d files deleted, packs obsolete: %s", ident, purged, packs)
    return {
        "id": ident,
        "title": item["title"],
        "reason": reason,
        "already_withdrawn": already,
        "packs_obsoleted": packs,
        "files_deleted": purged,
        "withdrawn_json": str(path.relative_to(mirror.data_dir)),
        "torrents_json": torrents_json,
        "index_html": str(index.relative_to(mirror.data_dir)),
    }


def purge_withdrawn(mirror: Mirror) -> int:
    """Delete every stored or packed copy of a withdrawn item's files; return how many."""
    db = mirror.db
    rows = db.execute(
        "SELECT f.id, f.item_id, f.store_path FROM files AS f JOIN items AS i ON i.id = f.item_id"
        " WHERE i.status = 'withdrawn'"
    ).fetchall()
    per_item: dict[int, int] = {}
    for f in rows:
        paths: list[Path | None] = []
        if f["store_path"]:
            paths.append(_inside(mirror.data_dir, f["store_path"]))
        for p in db.execute(
            "SELECT p.name, pf.path FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
            " WHERE pf.file_id = ?",
            (f["id"],),
        ):
            paths.append(_inside(mirror.packs_dir, f"{p['name']}/{p['path']}"))
        for path in paths:
            if path is not None and _unlink(path):
                per_item[f["item_id"]] = per_item.get(f["item_id"], 0) + 1
    if rows:
        with transaction(db):
            db.execute(
                "UPDATE files SET store_path = NULL WHERE store_path IS NOT NULL AND item_id IN"
                " (SELECT id FROM items WHERE status = 'withdrawn')"
            )
            db.executemany(
                "UPDATE withdrawals SET files_removed = files_removed + ? WHERE item_id = ?",
                [(n, item_id) for item_id, n in per_item.items()],
            )
    return sum(per_item.values())


def _inside(base: Path, rel: str) -> Path | None:
    try:
        return safe_join(base, rel)
    except UnsafeName:
        log.warning("not deleting %r: it is not a plain path under %s", rel, base)
        return None


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    # Leave no empty item folders behind in the store.
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True


def withdrawn_list(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{r['source']}:{r['source_id']}",
            "source": r["source"],
            "source_id": r["source_id"],
            "reason": r["reason"],
            "withdrawn_at": r["withdrawn_at"],
            "packs_obsoleted": json.loads(r["packs_obsoleted"]),
        }
        for r in db.execute("SELECT * FROM withdrawals ORDER BY withdrawn_at, id")
    ]


def write_withdrawn_json(mirror: Mirror) -> Path:
    """`public/withdrawn.json`: every takedown, so other mirrors can honour it too."""
    path = mirror.public_dir / "withdrawn.json"
    atomic_write_json(path, withdrawn_list(mirror.db))
    return path


def refresh_torrents_json(mirror: Mirror) -> str | None:
    """Rewrite torrents.json so the obsolete packs show as such; None before any pack."""
    from ccmirror.publish.torrents_json import write_torrents_json

    return str(write_torrents_json(mirror).relative_to(mirror.data_dir))
