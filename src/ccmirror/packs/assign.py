"""Which files go into which pack (catalogue only; no bytes are touched here).

A file is packed when it is in a pack that is not obsolete. New publishable files go to
the open pack of their item's tier, filling it up to `pack_size` (audio bytes); an item
that does not fit starts a new pack (an item larger than a pack is split across packs).
All open packs of a tier but the newest are full; `__init__` seals them.
"""

from __future__ import annotations

import heapq
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ccmirror.catalogue import transaction
from ccmirror.catalogue.assign import (
    assigned,
    candidates,
    entries_added,
    items_added,
    next_seq,
    open_pack_of_tier,
    pack_bytes,
    plan_tables,
    planned_entries,
    ranks_of,
)
from ccmirror.catalogue.tiers import Ranking, ranking
from ccmirror.errors import UnsafeName
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.packs")


def pack_name(mirror_name: str, tier: int, seq: int) -> str:
    return f"{mirror_name}-t{tier}-{seq:04d}"


def in_quality(quality: str, copy_of: int | None, compact: str | None) -> bool:
    """Whether a file belongs in a pack of a tier of this quality: a compact tier packs the
    copies and the originals it keeps as they are; an original tier, the originals."""
    if quality == "compact":
        return copy_of is not None or compact in ("kept", "original")
    return copy_of is None


def _candidates(mirror: Mirror, rk: Ranking) -> Iterator[sqlite3.Row]:
    """Publishable unpacked files in the store, in the order packs are filled (SQL:
    `catalogue.assign.candidates`)."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    return candidates(mirror.db, rk, allowed, mirror.manifest.torrents.artwork)


def _ranked_predicted(
    mirror: Mirror, rk: Ranking, predicted: Iterable[sqlite3.Row]
) -> list[tuple[tuple[Any, ...], sqlite3.Row]]:
    """A dry run's predicted files with the sort key of `_candidates`: (tier, -share, item
    id, name); the tier and share of only their own items are read."""
    rows = list(predicted)
    if not rows:
        return []
    rank = ranks_of(mirror.db, rk, (r["item_id"] for r in rows))
    out = []
    for r in rows:
        t, s = rank.get(r["item_id"], (None, 0.0))
        out.append(((t, -s, r["item_id"], r["name"]), r))
    out.sort(key=lambda kv: (kv[0][0] is None, kv[0][0] or 0, *kv[0][1:]))
    return out


@dataclass
class Slot:
    """One pack a plan fills: an open pack already in the catalogue, or a new one."""

    tier: int
    seq: int
    name: str
    pack_id: int | None  # None: the run creates it
    used: int = 0  # audio bytes in it (before and after the plan's files)
    files: int = 0  # files the plan adds
    added: int = 0  # bytes of the files the plan adds


@dataclass
class AssignPlan:
    """Which unpacked files go into which pack. Its places (slot, file id, path, size) and
    items (item id, tier) are kept in its connection's TEMP tables (`catalogue.assign`),
    not in lists: `entries()` reads them back in plan order; `files`, `bytes` and
    `item_count` are their totals. A connection holds its latest plan only."""

    slots: list[Slot] = field(default_factory=list)
    missing: int = 0
    files: int = 0
    bytes: int = 0
    item_count: int = 0
    db: sqlite3.Connection | None = None
    _pending: list[tuple[int, int, str, int]] = field(default_factory=list)
    _items: list[tuple[int, int]] = field(default_factory=list)

    def add(self, slot: int, file_id: int, path: str, size: int) -> None:
        self._pending.append((slot, file_id, path, size))
        self.files += 1
        self.bytes += size
        if len(self._pending) >= FLUSH:
            self.flush()

    def add_item(self, item_id: int, tier: int) -> None:
        self._items.append((item_id, tier))
        self.item_count += 1

    def flush(self) -> None:
        if self.db is not None:
            entries_added(self.db, self._pending)
            items_added(self.db, self._items)
        self._pending, self._items = [], []

    def entries(self) -> Iterator[tuple[int, int, str, int]]:
        """(slot, file id, path, size) of every place, in plan order."""
        self.flush()
        if self.db is not None:
            yield from planned_entries(self.db)


FLUSH = 1000  # places buffered before they go to the plan's TEMP table


class _Open:
    """The open pack of a tier being filled (read-only: new packs are slots of the plan)."""

    def __init__(self, db: sqlite3.Connection, plan: AssignPlan, mirror_name: str, tier: int):
        self.plan, self.mirror_name, self.tier = plan, mirror_name, tier
        r = open_pack_of_tier(db, tier)
        self.next_seq = next_seq(db, tier)
        self.slot: int | None = None
        if r:
            used = pack_bytes(db, r["id"])
            plan.slots.append(Slot(tier, r["seq"], r["name"], r["id"], used))
            self.slot = len(plan.slots) - 1

    @property
    def id(self) -> int | None:
        return self.slot

    @property
    def used(self) -> int:
        return self.plan.slots[self.slot].used if self.slot is not None else 0

    def new(self) -> None:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        self.plan.slots.append(
            Slot(self.tier, seq, pack_name(self.mirror_name, self.tier, seq), None)
        )
        self.slot = len(self.plan.slots) - 1

    def add(self, file_id: int, path: str, size: int) -> None:
        if self.slot is None:
            self.new()
        slot = self.plan.slots[self.slot]
        self.plan.add(self.slot, file_id, path, size)
        slot.used += size
        slot.added += size
        slot.files += 1


def _present(mirror: Mirror, r: sqlite3.Row) -> int | None:
    """The store file's size when it is the file the catalogue lists, else None (logged)."""
    try:
        size = os.stat(mirror.abspath(r["store_path"])).st_size
    except (OSError, UnsafeName) as e:  # gone, or a symlink planted to lead outside
        log.error("%s:%s %s: store file unreadable: %s", r["source"], r["source_id"], r["name"], e)
        return None
    if r["size"] is not None and r["size"] != size:
        log.error(
            "%s:%s %s: store file has %d bytes, catalogue says %d",
            r["source"],
            r["source_id"],
            r["name"],
            size,
            r["size"],
        )
        return None
    return size


def plan_assign(mirror: Mirror, predicted: Iterable[sqlite3.Row] = ()) -> AssignPlan:
    """Decide, without writing, which pack of its item's tier every publishable, unpacked
    file goes to. `predicted` (a dry run): files not yet fetched or judged that are
    expected to be publishable, at their catalogue size."""
    db = mirror.db
    cap = mirror.manifest.torrents.pack_size
    rk = ranking(db, mirror.manifest.tiers.shares)
    tiers = mirror.manifest.tiers
    plan = AssignPlan(db=db)
    plan_tables(db)
    stored = (
        ((r["tier"], -r["share"], r["item_id"], r["name"]), r, True)
        for r in _candidates(mirror, rk)
    )
    guessed = ((key, r, False) for key, r in _ranked_predicted(mirror, rk, predicted))
    opened: dict[int, _Open] = {}
    item: tuple[int, int] | None = None  # (item id, tier) whose files are being gathered
    entries: list[tuple[int, str, int]] = []
    for (tier, _, item_id, _), r, in_store in heapq.merge(stored, guessed, key=_merge_key):
        if item is not None and item[0] != item_id:
            _place(db, plan, opened, mirror.name, cap, item, entries)
            entries = []
        item = (item_id, tier)
        if tier is not None and not in_quality(tiers.quality_of(tier), r["copy_of"], r["compact"]):
            continue  # an original waiting for its compact copy, or a copy in an original tier
        size = _present(mirror, r) if in_store else r["size"]
        if size is None:
            plan.missing += in_store
            continue
        entries.append((r["id"], f"{r['source']}/{r['source_id']}/{r['name']}", size))
    if item is not None:
        _place(db, plan, opened, mirror.name, cap, item, entries)
    plan.flush()
    return plan


def _merge_key(x: tuple[tuple[Any, ...], sqlite3.Row, bool]) -> tuple[Any, ...]:
    tier, share, item_id, name = x[0]
    return (tier is None, tier or 0, share, item_id, name)


def _place(
    db: sqlite3.Connection,
    plan: AssignPlan,
    opened: dict[int, _Open],
    mirror_name: str,
    cap: int,
    item: tuple[int, int],
    entries: list[tuple[int, str, int]],
) -> None:
    """Put one item's files into the open pack of its tier (a new one when they would
    not fit and fit a pack of their own; an item larger than a pack is split)."""
    if not entries:
        return
    item_id, tier = item
    op = opened.get(tier) or opened.setdefault(tier, _Open(db, plan, mirror_name, tier))
    item_bytes = sum(s for _, _, s in entries)
    if op.id is not None and op.used and op.used + item_bytes > cap and item_bytes <= cap:
        op.new()  # keep the item in one pack: start the next one
    for file_id, path, size in entries:
        if op.used and op.used + size > cap:
            op.new()
        op.add(file_id, path, size)
    plan.add_item(item_id, tier)


def run_assign(mirror: Mirror, plan: AssignPlan) -> dict[str, Any]:
    """Record `plan` in one transaction: its new packs, its files' places (set-based, from
    the plan's TEMP tables)."""
    plan.flush()
    slots = [(n, s.pack_id, s.name, s.tier, s.seq) for n, s in enumerate(plan.slots) if s.files]
    if plan.files:
        with transaction(mirror.db):
            assigned(mirror.db, slots)
    return {
        "assigned_files": plan.files,
        "assigned_items": plan.item_count,
        "missing": plan.missing,
    }


def assign(mirror: Mirror) -> dict[str, Any]:
    """Put every publishable, unpacked file into a pack of its item's tier."""
    return run_assign(mirror, plan_assign(mirror))
