"""Per-recording metadata columns of files (0030), written as the source gives them."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SOURCE_COLUMNS", "recording_columns_set"]

# Text columns the sources fill (in MANIFEST.csv order where they appear there).
SOURCE_COLUMNS = (
    "artists",
    "track",
    "genres",
    "composer",
    "lyricist",
    "producer",
    "engineer",
    "publisher",
    "release_date",
)


def recording_columns_set(
    db: sqlite3.Connection, file_id: int, columns: Sequence[str], values: Mapping[str, Any]
) -> None:
    """Set `columns` (names the caller vouches for: they go into the SQL) of one file."""
    db.execute(
        f"UPDATE files SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
        (*(values[c] for c in columns), file_id),
    )
