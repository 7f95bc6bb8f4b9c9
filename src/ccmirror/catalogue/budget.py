"""The budget's reads beyond the selection itself (`catalogue.selection`): the items a
selection holds as a TEMP table for SQL filters, and the share of listening the store
covers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["covered_share_sum", "held_table"]


def held_table(db: sqlite3.Connection, ids: Iterable[int], col: str = "i.id") -> str:
    """Put `ids` (streamed; repeats ignored) into the connection's TEMP table of held items
    (emptied first) and return the SQL condition that the item id `col` is one of them."""
    db.execute("DROP TABLE IF EXISTS temp.budget_held")
    db.execute("CREATE TEMP TABLE budget_held (id INTEGER PRIMARY KEY)")
    db.executemany("INSERT OR IGNORE INTO temp.budget_held VALUES (?)", ((i,) for i in ids))
    return f"{col} IN (SELECT id FROM temp.budget_held)"


def covered_share_sum(
    db: sqlite3.Connection, share: str, params: Sequence[Any], allowed: Sequence[str]
) -> float:
    """Sum of `share` (SQL over items `i`) over the items the store holds whole: every file
    it keeps is fetched, and at least one is publishable (one of `allowed`). Driven by the
    fetched files: nothing read for items with nothing fetched."""
    marks = ",".join("?" * len(allowed))
    (total,) = db.execute(
        f"SELECT coalesce(sum({share}), 0.0) FROM items AS i WHERE i.status = 'ok' AND i.id IN"
        " (SELECT f.item_id FROM files f WHERE f.status = 'fetched'"
        f"  AND f.verdict IN ({marks})"
        "  AND (f.store_path IS NOT NULL OR f.compact IN ('copied', 'derivative')))"
        " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.item_id = i.id"
        "  AND f.status IN ('pending', 'failed') AND f.compact IS NOT 'derivative')",
        [*params, *allowed],
    ).fetchone()
    return float(total)
