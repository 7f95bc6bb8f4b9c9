"""Compact tiers in the catalogue: derivatives chosen or given up, originals decided,
copies recorded, and what may be released. `ccmirror.compact` decides; the SQL is here."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ccmirror.catalogue.tiers import Ranking

__all__ = [
    "CompactItems",
    "copy_candidates",
    "copy_recorded",
    "derivative_candidates",
    "derivative_chosen",
    "derivative_given_up",
    "derivatives_to_give_up",
    "item_file_names",
    "original_decided",
    "original_unreadable",
    "releasable",
    "source_facts_recorded",
    "tiers_pinned",
    "unjudged_copies",
]

# A file in no live sealed pack (those stay as they are).
_NOT_SEALED = """NOT EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id
    WHERE pf.file_id = f.id AND p.status = 'sealed' AND p.obsolete = 0)"""


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class CompactItems:
    """The ok items whose tier is compact (item id -> tier, as `in`, `[]` and truth ask
    it), answered by SQL over the ranking's tier expression: one probe per question, no
    dict of every item of the compact tiers."""

    def __init__(self, db: sqlite3.Connection, rk: Ranking, quality: Sequence[str]) -> None:
        """`quality`: per tier, as `[tiers] quality` gives it (tiers past the list take
        its last entry: `TiersConfig.quality_of`)."""
        self.db, self.quality = db, tuple(quality)
        self._tier, self._params = rk.tier_sql()
        listed = [k for k, q in enumerate(self.quality, start=1) if q == "compact"]
        self.tiers = tuple(listed)
        past = (
            f" OR t > {len(self.quality)}" if self.quality and self.quality[-1] == "compact" else ""
        )
        self._in = f"(t IN ({','.join(map(str, listed))}){past})"
        self._any: bool | None = None

    def _compact(self, tier: int) -> bool:
        q = self.quality
        return bool(q) and tier >= 1 and q[min(tier, len(q)) - 1] == "compact"

    def get(self, item_id: int) -> int | None:
        if not self.tiers:
            return None
        row = self.db.execute(
            f"SELECT {self._tier} FROM items AS i WHERE i.id = ? AND i.status = 'ok'",
            [*self._params, item_id],
        ).fetchone()
        return row[0] if row is not None and self._compact(row[0]) else None

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, int) and self.get(item_id) is not None

    def __getitem__(self, item_id: int) -> int:
        tier = self.get(item_id)
        if tier is None:
            raise KeyError(item_id)
        return tier

    def __bool__(self) -> bool:
        if self._any is None:
            self._any = bool(self.tiers) and (
                self.db.execute(
                    f"SELECT 1 FROM (SELECT {self._tier} AS t FROM items AS i"
                    f" WHERE i.status = 'ok') WHERE {self._in} LIMIT 1",
                    self._params,
                ).fetchone()
                is not None
            )
        return self._any


def tiers_pinned(
    db: sqlite3.Connection, tiers: CompactItems | dict[int, int], item_ids: Iterable[int]
) -> None:
    """Items keep their tier (item id -> tier), as packed ones do."""
    db.executemany(
        "UPDATE items SET tier = ? WHERE id = ? AND tier IS NULL",
        [(tiers[i], i) for i in sorted(item_ids)],
    )


def derivatives_to_give_up(db: sqlite3.Connection, give_up: int) -> list[sqlite3.Row]:
    """Derivative copies that failed `give_up` runs in a row, were refused, or were judged
    unusable, whose original still waits for them."""
    return db.execute(
        "SELECT c.id, c.copy_of, c.status, c.verdict, c.reason FROM files c"
        " WHERE c.copy_of IS NOT NULL AND c.url IS NOT NULL AND ("
        " (c.status = 'failed' AND c.fail_streak >= ?)"
        " OR c.status = 'refused'"
        " OR (c.status = 'fetched' AND c.verdict IN ('conflict', 'unreadable', 'rejected')))"
        " AND EXISTS (SELECT 1 FROM files o WHERE o.id = c.copy_of AND o.compact = 'derivative')",
        (give_up,),
    ).fetchall()


def derivative_given_up(db: sqlite3.Connection, r: sqlite3.Row, why: str) -> None:
    """The original is transcoded instead; a failed derivative is never asked for again."""
    db.execute(
        "UPDATE files SET compact = NULL, compact_reason = ? WHERE id = ?",
        (f"the source's derivative was given up ({why}): transcoded instead", r["copy_of"]),
    )
    if r["status"] == "failed":
        db.execute(
            "UPDATE files SET status = 'refused', reason = ? WHERE id = ?",
            (f"derivative given up: {why}", r["id"]),
        )


def derivative_candidates(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Originals not yet decided with a smaller derivative, smallest derivative first."""
    return db.execute(
        "SELECT f.id, f.item_id, f.name, f.size, d.name AS dname, d.format AS dformat,"
        " d.size AS dsize, d.md5, d.sha1, d.url FROM files f"
        " JOIN derivatives d ON d.file_id = f.id JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.copy_of IS NULL AND f.compact IS NULL"
        " AND f.status IN ('pending', 'failed', 'fetched') AND f.size IS NOT NULL"
        f" AND d.size < f.size AND {_NOT_SEALED} ORDER BY f.id, d.size, d.name"
    ).fetchall()


def derivative_chosen(db: sqlite3.Connection, r: sqlite3.Row) -> bool:
    """A copy row to fetch for the derivative, the original marked not to be fetched;
    False (nothing written) when the item already has a file of the derivative's name."""
    cur = db.execute(
        "INSERT OR IGNORE INTO files (item_id, name, size, md5, sha1, format, origin,"
        " url, status, copy_of, encoder) VALUES (?, ?, ?, ?, ?, ?, 'compact', ?,"
        " 'pending', ?, ?)",
        (r["item_id"], r["dname"], r["dsize"], r["md5"], r["sha1"], r["dformat"],
         r["url"], r["id"], f"Internet Archive derivative ({r['dformat']})"),
    )  # fmt: skip
    if not cur.rowcount:
        return False
    db.execute(
        "UPDATE files SET compact = 'derivative', compact_reason = ? WHERE id = ?",
        (f"the source's {r['dformat']} derivative is smaller", r["id"]),
    )
    return True


def original_unreadable(db: sqlite3.Connection, file_id: int, detail: str) -> None:
    """As `check` would say of it: unreadable, never packed, no copy."""
    db.execute(
        "UPDATE files SET verdict = 'unreadable', verdict_reason = ?,"
        " compact_reason = ? WHERE id = ?",
        (detail, detail, file_id),
    )


def original_decided(db: sqlite3.Connection, file_id: int, what: str, why: str) -> None:
    """An original kept as it is ('original', 'kept'), with why."""
    db.execute(
        "UPDATE files SET compact = ?, compact_reason = ? WHERE id = ?", (what, why, file_id)
    )


def copy_recorded(db: sqlite3.Connection, r: dict[str, Any], copy: dict[str, Any]) -> None:
    """A compact copy of original `r` is in the store: its row (fetched, to be judged)
    and the original marked copied."""
    h = copy["hashes"]
    db.execute(
        "INSERT INTO files (item_id, name, size, md5, sha1, sha256, format, origin,"
        " url, status, store_path, fetched_at, copy_of, encoder, duration)"
        " VALUES (?, ?, ?, ?, ?, ?, 'Opus', 'compact', NULL, 'fetched', ?, ?, ?, ?, ?)",
        (r["item_id"], copy["name"], copy["size"], h["md5"], h["sha1"], h["sha256"],
         copy["rel"], copy["fetched_at"], r["id"], copy["encoder"],
         round(copy["copy_duration"], 3)),
    )  # fmt: skip
    db.execute(
        "UPDATE files SET compact = 'copied', compact_reason = ?,"
        " duration = coalesce(duration, ?) WHERE id = ?",
        (f"{copy['kind']} transcoded to Opus", round(copy["duration"], 3), r["id"]),
    )


def copy_candidates(db: sqlite3.Connection, verdicts: Sequence[str]) -> list[sqlite3.Row]:
    """Fetched, publishable originals not yet decided and in no sealed pack, by id."""
    return db.execute(
        "SELECT f.id, f.item_id, f.name, f.size, f.store_path, f.evidence, f.isrc, f.mbid,"
        " coalesce(f.licence_id, i.declared_licence_id) AS licence, i.source, i.source_id,"
        " f.kind FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.status = 'fetched' AND f.copy_of IS NULL"
        " AND f.compact IS NULL AND f.store_path IS NOT NULL AND f.quarantine_path IS NULL"
        f" AND f.verdict IN ({_marks(verdicts)}) AND {_NOT_SEALED} ORDER BY f.id",
        tuple(verdicts),
    ).fetchall()


def item_file_names(db: sqlite3.Connection, item_id: int) -> set[str]:
    return {n for (n,) in db.execute("SELECT name FROM files WHERE item_id = ?", (item_id,))}


def releasable(db: sqlite3.Connection, verdicts: Sequence[str]) -> list[sqlite3.Row]:
    """Originals in the store, in no sealed pack, whose copy is fetched and judged one of
    `verdicts`; with both licences (released only when they are the same)."""
    return db.execute(
        "SELECT o.id, o.store_path, o.name, o.size, i.source_id,"
        " coalesce(o.licence_id, i.declared_licence_id) AS licence,"
        " coalesce(c.licence_id, i.declared_licence_id) AS copy_licence"
        " FROM files o JOIN files c ON c.copy_of = o.id JOIN items i ON i.id = o.item_id"
        " WHERE o.compact IN ('copied', 'derivative') AND o.store_path IS NOT NULL"
        f" AND c.status = 'fetched' AND c.verdict IN ({_marks(verdicts)})"
        " AND NOT EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        "  WHERE pf.file_id = o.id AND p.status = 'sealed')",
        tuple(verdicts),
    ).fetchall()


def unjudged_copies(db: sqlite3.Connection) -> bool:
    """A copy waits for its verdict."""
    return (
        db.execute(
            "SELECT 1 FROM files WHERE copy_of IS NOT NULL AND status = 'fetched'"
            " AND verdict IS NULL LIMIT 1"
        ).fetchone()
        is not None
    )


def source_facts_recorded(
    db: sqlite3.Connection,
    item_id: int,
    durations: Iterable[tuple[float, int]],
    derived: Iterable[tuple[Any, ...]],
) -> None:
    """Playing times ((seconds, file id)) and the item's derivatives, replaced whole:
    (file id, name, format, size, md5, sha1, url)."""
    db.executemany("UPDATE files SET duration = ? WHERE id = ?", durations)
    db.execute(
        "DELETE FROM derivatives WHERE file_id IN (SELECT id FROM files WHERE item_id = ?)",
        (item_id,),
    )
    db.executemany(
        "INSERT OR REPLACE INTO derivatives (file_id, name, format, size, md5, sha1, url)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        derived,
    )
