"""Takedowns: take an item out of the store, out of every pack and out of every future run.

Order matters for crash safety. The catalogue is changed first, in one transaction: the
item becomes 'withdrawn' (harvest, fetch and pack skip every item whose status is not
'ok'), its files 'refused', the packs that held it obsolete. Only then are bytes deleted,
so a crash leaves at worst files that a second `withdraw` (or the next `publish`, which
calls `purge_withdrawn`) deletes; it never leaves a withdrawn file that looks publishable.
public/ is publish's: withdraw asks it to render the takedown at once.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from ccmirror.catalogue.states import item_withdrawn
from ccmirror.catalogue.withdrawals import items_named
from ccmirror.errors import UsageError
from ccmirror.mirror import Mirror
from ccmirror.publish.run import refresh_after_withdrawal
from ccmirror.purge import purge_withdrawn
from ccmirror.sources.registry import kind_names

log = logging.getLogger("ccmirror.withdraw")


def resolve_item(db: sqlite3.Connection, ident: str) -> sqlite3.Row:
    """`ia:<id>`, `fma:<id>`, or a bare id that names exactly one item."""
    ident = ident.strip()
    source, sep, rest = ident.partition(":")
    if sep and source in kind_names() and rest:
        rows = items_named(db, source, rest)
    else:
        rows = items_named(db, None, ident)
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
    packs = item_withdrawn(db, item, reason)
    purged = purge_withdrawn(mirror)
    # The public page must not keep showing a withdrawn title until the next publish:
    # publish renders withdrawn.json, torrents.json and the pages now.
    shown = refresh_after_withdrawal(mirror)
    log.info("withdrew %s: %d files deleted, packs obsolete: %s", ident, purged, packs)
    return {
        "id": ident,
        "title": item["title"],
        "reason": reason,
        "already_withdrawn": already,
        "packs_obsoleted": packs,
        "files_deleted": purged,
        **shown,
    }
