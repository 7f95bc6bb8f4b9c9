"""The search index's vocabulary: whether a word's prefix query can be an exact one.

A prefix phrase (`"track"*`) makes FTS5 merge the postings of every term starting with
it into one list before anything else is read: for a word most rows hold ("track" in a
catalogue of tracks) that is the whole index, ~0.7 s at 10M items. When the index holds
no term that starts with the word other than the word itself, the exact phrase (`"track"`)
matches the same rows with the same bm25 score (the same one term's postings), and FTS5
reads it lazily, seeking past what the other words rule out.
"""

from __future__ import annotations

import sqlite3

# FTS5 tables the search reads, and their vocabularies (fts5vocab 'instance': a row per
# term occurrence, produced lazily, so the first term past a bound costs one seek).
VOCABULARIES = {"items_fts": "items_fts_terms", "files_fts": "files_fts_terms"}


def _vocabulary(db: sqlite3.Connection, table: str) -> str:
    name = VOCABULARIES[table]
    # TEMP: nothing written to the catalogue (a read-only open may create it too).
    db.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{name} USING fts5vocab(main, {table}, instance)"
    )
    return name


def sole_term(db: sqlite3.Connection, table: str, term: str) -> bool:
    """True when no term of `table`'s index other than `term` itself starts with `term`
    (`term` as the tokenizer stores it: lower-case ASCII letters and digits)."""
    name = _vocabulary(db, table)
    # Any longer term starting with `term` sorts at or after term + NUL (terms compare
    # as bytes); the first term there is read without counting `term`'s occurrences.
    row = db.execute(
        f"SELECT term FROM temp.{name} WHERE term >= ? LIMIT 1", (term + "\x00",)
    ).fetchone()
    return row is None or not row[0].startswith(term)
