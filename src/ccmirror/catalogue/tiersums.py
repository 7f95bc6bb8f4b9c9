"""Per-tier sums without a sort: the ranking cut into its contiguous runs.

A tier of a source is a run of that source's ranking (popularity descending, ties by id)
between two boundaries (`catalogue.tiers.Ranking`), so the items of one tier that no pack
pinned are one range of the `items_rank_ok` index. Summing each range with its own query
reads every row once, like one `GROUP BY tier` would, but with no per-row tier expression
and no sorter over the whole catalogue (the GROUP BY's temporary B-tree was most of the
cost of tiers, plan and status at 1M items). Items pinned to a tier by a pack
(`items.tier`) are one more part, grouped by that column.

Every aggregate handed to `part_sums` must be additive (count, sum): a (source, tier)'s
figures are the sums over its parts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ccmirror.catalogue.runitems import run_items
from ccmirror.catalogue.tiers import (
    FILE_BYTES,
    FILE_EST,
    FILE_UNSIZED,
    Ranking,
    verdict_filter,
)


@dataclass(frozen=True)
class Part:
    """Unpinned items of one source and tier (`tier` set) in one plain range of
    items_rank_ok, or every pinned item (None), read from items_pinned (0070)."""

    source: str | None
    tier: int | None
    cond: str
    params: tuple[Any, ...]
    index: str = "items_rank_ok"


def _ranges(
    a: str, start: tuple[float, int] | None, end: tuple[float, int] | None
) -> list[tuple[str, list[Any]]]:
    """The items ranked from `start` (included) to `end` (excluded), boundaries being
    (popularity, id) of an item (None: the ranking's start or end), as plain ranges of
    the index (popularity descending, then id): no OR for SQLite to test on every entry."""
    if start is not None and end is not None and start[0] == end[0]:
        return [
            (f"{a}.popularity = ? AND {a}.id >= ? AND {a}.id < ?", [start[0], start[1], end[1]])
        ]
    out: list[tuple[str, list[Any]]] = []
    if start is not None:
        out.append((f"{a}.popularity = ? AND {a}.id >= ?", [start[0], start[1]]))
    middle, mp = [], []
    if start is not None:
        middle.append(f"{a}.popularity < ?")
        mp.append(start[0])
    if end is not None:
        middle.append(f"{a}.popularity > ?")
        mp.append(end[0])
    out.append((" AND ".join(middle) or "1", mp))
    if end is not None:
        out.append((f"{a}.popularity = ? AND {a}.id < ?", [end[0], end[1]]))
    return out


def _run(
    a: str, start: tuple[float, int] | None, end: tuple[float, int] | None
) -> tuple[str, list[Any]]:
    """The same items as one index range with the boundaries tested on every entry: a
    float sum over it adds in the one order the old per-tier sums did (shares)."""
    cond: list[str] = []
    params: list[Any] = []
    if start is not None:
        p, x = start
        cond.append(f"{a}.popularity <= ? AND ({a}.popularity < ? OR ({a}.popularity = ?"
                    f" AND {a}.id >= ?))")  # fmt: skip
        params += [p, p, p, x]
    if end is not None:
        p, x = end
        cond.append(f"{a}.popularity >= ? AND ({a}.popularity > ? OR ({a}.popularity = ?"
                    f" AND {a}.id < ?))")  # fmt: skip
        params += [p, p, p, x]
    return " AND ".join(cond) or "1", params


def parts(rk: Ranking, a: str = "i", split: bool = False) -> list[Part]:
    """The ranking's runs (what `Ranking.tier_sql` decides), then the pinned items.
    `split`: each run as up to three plain index ranges (for sums of integers, which do
    not depend on the order they add in); else one range per run."""
    out: list[Part] = []
    for s in rk.sources:
        bounds: list[tuple[float, int] | None] = [None, *s.boundaries, None]
        for k in range(len(s.boundaries) + 1):
            tier = k + 1 if k < len(s.boundaries) else s.rest
            ranges = _ranges(a, bounds[k], bounds[k + 1]) if split else [
                _run(a, bounds[k], bounds[k + 1])
            ]  # fmt: skip
            for cond, params in ranges:
                out.append(Part(s.source, tier, f"{a}.source = ? AND {a}.tier IS NULL AND {cond}",
                                (s.source, *params)))  # fmt: skip
    out.append(Part(None, None, f"{a}.tier IS NOT NULL", (), "items_pinned"))
    return out


Select = Callable[[str], tuple[str, Sequence[Any]]]


def part_sums(
    db: sqlite3.Connection,
    rk: Ranking,
    select: Select,
    body: str,
    params: Sequence[Any] = (),
    group: str = "",
    a: str = "i",
    split: bool = False,
    pinned_only: bool = False,
    tier: int | None = None,
) -> dict[tuple[Any, ...], list[Any]]:
    """(source, tier[, group value]) -> [rows, *aggregates]: `SELECT count(*), <select>
    <body> AND <part>` for every part (or `<part>` where `body` says `{part}`, before
    any parameter of its own; `{index}` in `body`: the index the part reads). `select(tier)` gets the part's tier as SQL (a
    number, or `i.tier` for the pinned part) and returns the aggregates and their
    parameters; `body` is `FROM ... WHERE ...` over items aliased `a`; `group`: one more
    grouping column (few values, e.g. a verdict); `split`: see `parts` (only for sums
    of integers); `pinned_only`: the pinned part alone; `tier`: the runs of that tier
    alone (no pinned part). NULL sums count as 0."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    chosen = parts(rk, a, split)
    if pinned_only or tier is not None:
        chosen = chosen[-1:] if pinned_only else [p for p in chosen[:-1] if p.tier == tier]
    for part in chosen:
        tier = str(part.tier) if part.tier is not None else f"{a}.tier"
        sel, sp = select(tier)
        keys = [] if part.source is not None else [f"{a}.source", f"{a}.tier"]
        if group:
            keys.append(group)
        head = "".join(f"{k}, " for k in keys)
        tail = f" GROUP BY {', '.join(keys)}" if keys else ""
        text = body.replace("{index}", part.index)
        if "{part}" in text:  # the part's parameters come before the body's own
            where, bound = text.replace("{part}", part.cond), [*sp, *part.params, *params]
        else:
            where, bound = f"{text} AND {part.cond}", [*sp, *params, *part.params]
        for row in db.execute(f"SELECT {head}count(*), {sel} {where}{tail}", bound):
            values = list(row)
            if part.source is not None:
                key, vals = (part.source, part.tier, *values[: len(keys)]), values[len(keys) :]
            else:
                key, vals = tuple(values[: len(keys)]), values[len(keys) :]
            if not vals[0]:
                continue  # an empty run (two shares met at the same item)
            cur = out.get(key)
            vals = [0 if v is None else v for v in vals]
            out[key] = vals if cur is None else [x + y for x, y in zip(cur, vals, strict=True)]
    return out


# Items of a ranked source, read from the ranking's index alone.
ITEMS = "FROM items AS i INDEXED BY {index} WHERE i.status = 'ok'"
# Their files, from files_item_sums (0055: every column read), looked up in item id order:
# a run's items sorted by id first (cheap: index entries) make the lookups sequential,
# a third cheaper than in the ranking's order.
ITEM_FILES = (
    "FROM (SELECT i.id, i.source, i.tier FROM items AS i INDEXED BY {index}"
    " WHERE i.status = 'ok' AND {part} ORDER BY i.id) AS i"
    " JOIN files AS f ON f.item_id = i.id WHERE 1"
)


def item_sums(db: sqlite3.Connection, rk: Ranking) -> list[dict[str, Any]]:
    """Per source and tier: items and their exact share (`runitems.run_items`: from the
    ranking's counts, the pinned items from their index)."""
    got = run_items(db, rk)
    return [
        {"source": k[0], "tier": k[1], "items": v[0], "share": v[1]} for k, v in sorted(got.items())
    ]


def file_sums(
    db: sqlite3.Connection,
    rk: Ranking,
    allowed: Sequence[str],
    compact_tiers: Sequence[int] = (),
    original_sql: str = FILE_BYTES,
    kept_sql: str = "0",
) -> list[dict[str, Any]]:
    """Per source and tier, over wanted files of ranked items: files and bytes the store
    keeps (a compact tier: `kept_sql` per file, its copies; else `original_sql`, the
    originals), original_bytes, est_bytes (of sizes not known yet: estimates), unsized
    (files with neither a size nor an estimate)."""
    cond, cp = verdict_filter(allowed, scan=True)
    est = f"sum(CASE WHEN f.copy_of IS NULL THEN {FILE_EST} ELSE 0 END), sum({FILE_UNSIZED})"
    marks = ",".join(str(int(k)) for k in compact_tiers)

    def select(tier: str) -> tuple[str, list[Any]]:
        if not compact_tiers:  # files and bytes are the originals': read them once
            return f"sum(f.copy_of IS NULL), sum({original_sql}), {est}", []
        comp = f"{tier} IN ({marks})"
        return (
            f"sum(CASE WHEN {comp} THEN 1 - coalesce(f.compact IN ('copied', 'derivative'), 0)"
            f" ELSE f.copy_of IS NULL END), sum({original_sql}), {est},"
            f" sum(CASE WHEN {comp} THEN {kept_sql} ELSE {original_sql} END)",
            [],
        )

    out = []
    for (source, tier), v in sorted(
        part_sums(db, rk, select, f"{ITEM_FILES} AND {cond}", cp, split=True).items()
    ):
        out.append(
            {
                "source": source,
                "tier": tier,
                "files": v[1],
                "bytes": v[5] if compact_tiers else v[2],
                "original_bytes": v[2],
                "est_bytes": v[3],
                "unsized": v[4],
            }
        )
    return out


def tier_sums(
    db: sqlite3.Connection,
    rk: Ranking,
    allowed: Sequence[str],
    compact_tiers: Sequence[int] = (),
    original_sql: str = FILE_BYTES,
    kept_sql: str = "0",
) -> list[dict[str, Any]]:
    """Per source and tier: items, share (exact), and `file_sums`' figures; `compact`:
    the tier is compact and has files."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in item_sums(db, rk):
        out[(r["source"], r["tier"])] = {
            "source": r["source"],
            "tier": r["tier"],
            "items": r["items"],
            "share": r["share"],
            "files": 0,
            "bytes": 0,
            "original_bytes": 0,
            "estimated_bytes": 0,
            "unsized": 0,
            "compact": False,
        }
    for r in file_sums(db, rk, allowed, compact_tiers, original_sql, kept_sql):
        row = out[(r["source"], r["tier"])]
        row.update(
            files=r["files"],
            bytes=r["bytes"],
            original_bytes=r["original_bytes"],
            estimated_bytes=r["est_bytes"],
            unsized=r["unsized"],
            compact=r["tier"] in compact_tiers,
        )
    return [out[k] for k in sorted(out)]


def _verdicts(db: sqlite3.Connection) -> list[str | None]:
    """The verdicts files hold (None: not judged yet), one files_verdict seek each."""
    found: list[str | None] = []
    if db.execute("SELECT 1 FROM files WHERE verdict IS NULL LIMIT 1").fetchone():
        found.append(None)
    (v,) = db.execute("SELECT min(verdict) FROM files WHERE verdict IS NOT NULL").fetchone()
    while v is not None:
        found.append(v)
        (v,) = db.execute("SELECT min(verdict) FROM files WHERE verdict > ?", (v,)).fetchone()
    return found


def tier_file_rows(db: sqlite3.Connection, rk: Ranking) -> list[dict[str, Any]]:
    """Per tier and verdict, over every file of a ranked item: files (n), fetched, bytes
    stored, files in live audio packs (packed). (`status`'s tier table.) Summed per run
    of the ranking like the other figures, one column per verdict the files hold (a
    handful), so nothing sorts the files; the packed files are counted from
    `pack_files`: few packs cost nothing per file."""
    verdicts = _verdicts(db)
    if not verdicts:
        return []  # no files at all
    cols = [
        "sum(f.verdict IS ?), sum(f.verdict IS ? AND f.status = 'fetched'),"
        " coalesce(sum(CASE WHEN f.verdict IS ? AND f.status = 'fetched' THEN f.size END), 0)"
    ] * len(verdicts)
    params = [v for v in verdicts for _ in range(3)]
    got = part_sums(db, rk, lambda _t: (", ".join(cols), params), ITEM_FILES, split=True)
    out: dict[tuple[int, str | None], dict[str, Any]] = {}
    for (_, tier), values in sorted(got.items()):
        for k, verdict in enumerate(verdicts):
            n, fetched, stored = values[1 + 3 * k : 4 + 3 * k]
            if not n:
                continue
            row = out.setdefault(
                (tier, verdict),
                {"tier": tier, "verdict": verdict, "n": 0, "fetched": 0, "stored": 0, "packed": 0},
            )
            row["n"] += n
            row["fetched"] += fetched
            row["stored"] += stored
    tier, tp = rk.tier_sql()
    for r in db.execute(
        f"SELECT {tier} AS tier, f.verdict, count(*) AS packed FROM files AS f"
        " JOIN items AS i ON i.id = f.item_id WHERE i.status = 'ok' AND f.id IN"
        " (SELECT pf.file_id FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
        "  WHERE p.obsolete = 0 AND p.is_metadata = 0) GROUP BY 1, 2",
        tp,
    ):
        out[(r["tier"], r["verdict"])]["packed"] = r["packed"]
    return list(out.values())


def tier_items(db: sqlite3.Connection, rk: Ranking) -> dict[int, int]:
    """Items per tier."""
    out: dict[int, int] = {}
    for r in item_sums(db, rk):
        out[r["tier"]] = out.get(r["tier"], 0) + r["items"]
    return out
