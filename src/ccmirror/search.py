"""Full-text search of the catalogue (title, creator, album, identifiers, and the
recordings' artists, genres, composer, lyricist, producer, engineer and label; the files'
names and titles) with FTS5.

The user's words are never passed to FTS5 as query syntax: each word becomes a quoted
prefix phrase, so `AC/DC`, `"` or `NEAR(` search for text instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ccmirror.catalogue.vocab import sole_term
from ccmirror.errors import CCMirrorError, UsageError
from ccmirror.mirror import Mirror


def fts_query(text: str) -> str:
    """Every whitespace-separated word as a quoted prefix phrase, all of them required."""
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    if not words:
        raise UsageError(f"nothing to search for in {text!r}: give at least one word")
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _match(db: sqlite3.Connection, table: str, text: str) -> str:
    """`fts_query(text)` for `table`, each word whose prefix phrase would match exactly
    what the word alone matches (`catalogue.vocab.sole_term`) made an exact phrase: the
    same rows and scores, without merging a common word's postings up front. Only words
    of ASCII letters and digits (one token, lower-cased, whatever the tokenizer)."""
    words = fts_query(text).split(" ")
    out = []
    for w in words:
        bare = w[1:-2]
        if bare.isascii() and bare.isalnum() and sole_term(db, table, bare.lower()):
            out.append(w[:-1])
        else:
            out.append(w)
    return " ".join(out)


def search(mirror: Mirror, query: str, limit: int = 20) -> dict[str, Any]:
    """Items matching every word of `query`, most popular first (text relevance breaks
    ties: bm25 over such short fields says little); each with its licence, verdicts, tier
    and the packs that hold it."""
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    db = mirror.db
    fts_query(query)  # a query with no word fails here, before the index is read
    try:
        items_match, files_match = (_match(db, t, query) for t in ("items_fts", "files_fts"))
        rows, total = _unscored(db, items_match, files_match, limit)
        if rows is None:  # equally popular hits among the shown: their scores decide
            rows, total = _scored(db, items_match, files_match, limit)
    except sqlite3.OperationalError as e:
        if "no such table" in str(e) or "no such fts5 table" in str(e):
            # A read-only open never migrates: an old catalogue has no search index yet.
            raise CCMirrorError(
                "the catalogue has no search index yet: run any writing command once"
                " (e.g. 'ccmirror publish MANIFEST') to upgrade it"
            ) from None
        raise UsageError(f"cannot search for {query!r}: {e}") from None
    return {
        "query": query,
        "total": total,
        "shown": len(rows),
        "hits": [_hit(db, r) for r in rows],
    }


# An item matches by its own index row, or by one of its files' names or titles; the
# matches are gathered once (MATERIALIZED) and counted.
_HITS = (
    "WITH best (id) AS MATERIALIZED (SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
    " UNION SELECT item_id FROM files_fts WHERE files_fts MATCH ?)"
)


def _unscored(
    db: sqlite3.Connection, items_match: str, files_match: str, limit: int
) -> tuple[list[sqlite3.Row] | None, int]:
    """The shown hits and the total when popularity alone orders them (None when two
    shown hits, or the last shown and the next, are equally popular). Hits are ordered
    by popularity, then bm25 score, then id: the score only breaks ties of popularity,
    and bm25 counts every row holding each phrase (for a word most rows hold, the
    whole of its postings: ~0.3 s at 10M items), so it is not computed unless needed."""
    top = db.execute(
        f"{_HITS} SELECT best.id, i.popularity, (SELECT count(*) FROM best) FROM best"
        " JOIN items AS i ON i.id = best.id ORDER BY i.popularity DESC, best.id LIMIT ?",
        (items_match, files_match, limit + 1),
    ).fetchall()
    pops = [r[1] for r in top]
    if any(a == b for a, b in zip(pops, pops[1:], strict=False)):
        return None, 0
    ids = [r[0] for r in top[:limit]]
    marks = ",".join("?" * len(ids))
    got = {r["id"]: r for r in db.execute(f"SELECT * FROM items WHERE id IN ({marks})", ids)}
    return [got[i] for i in ids], top[0][2] if top else 0


def _scored(
    db: sqlite3.Connection, items_match: str, files_match: str, limit: int
) -> tuple[list[sqlite3.Row], int]:
    """The shown hits and the total, ordered by popularity, bm25 score, id. Only (id,
    score, popularity) of each match is sorted; whole rows are read for the shown ones."""
    rows = db.execute(
        "WITH hits (id, score) AS ("
        " SELECT rowid, bm25(items_fts) FROM items_fts WHERE items_fts MATCH ?"
        " UNION ALL SELECT item_id, 0 FROM files_fts WHERE files_fts MATCH ?),"
        " best (id, score) AS MATERIALIZED (SELECT id, min(score) FROM hits GROUP BY id),"
        " top AS (SELECT best.id, best.score, i.popularity FROM best"
        "  JOIN items AS i ON i.id = best.id"
        "  ORDER BY i.popularity DESC, best.score, best.id LIMIT ?)"
        " SELECT i.*, top.score AS score, (SELECT count(*) FROM best) AS total"
        " FROM top JOIN items AS i ON i.id = top.id"
        " ORDER BY top.popularity DESC, top.score, top.id",
        (items_match, files_match, limit),
    ).fetchall()
    return rows, rows[0]["total"] if rows else 0


def _hit(db: sqlite3.Connection, item: sqlite3.Row) -> dict[str, Any]:
    files = db.execute(
        "SELECT verdict, licence_id, count(*) AS n, coalesce(sum(size), 0) AS bytes"
        " FROM files WHERE item_id = ? GROUP BY verdict, licence_id",
        (item["id"],),
    ).fetchall()
    verdicts: dict[str, int] = {}
    licences: dict[str, int] = {}
    for f in files:
        verdicts[f["verdict"] or "unchecked"] = (
            verdicts.get(f["verdict"] or "unchecked", 0) + f["n"]
        )
        if f["licence_id"]:
            licences[f["licence_id"]] = licences.get(f["licence_id"], 0) + f["n"]
    packs = [
        r["name"]
        for r in db.execute(
            "SELECT DISTINCT p.name FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
            " JOIN files AS f ON f.id = pf.file_id"
            " WHERE f.item_id = ? AND p.obsolete = 0 ORDER BY p.name",
            (item["id"],),
        )
    ]
    licence = item["declared_licence_id"]
    if not licence and len(licences) == 1:
        licence = next(iter(licences))
    return {
        "id": f"{item['source']}:{item['source_id']}",
        "source": item["source"],
        "source_id": item["source_id"],
        "title": item["title"],
        "creator": item["creator"],
        "album": item["album"],
        "date": item["date"],
        "source_url": item["source_url"],
        "status": item["status"],
        "licence_id": licence,
        "file_licences": licences,
        "verdicts": verdicts,
        "files": sum(verdicts.values()),
        "tier": item["tier"],
        "packs": packs,
        "popularity": item["popularity"],
        "collections": json.loads(item["collections"] or "[]"),
    }
