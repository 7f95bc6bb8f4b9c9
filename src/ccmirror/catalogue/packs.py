"""Packs in the catalogue: the reads and state changes of open and sealed packs.

Sealing fixes a pack's torrent inputs first (`fix_torrent_inputs`), then marks it sealed
(`pack_sealed`) only once its .torrent is on disk; a pack's files leave it with
`files_out_of_pack`. The SQL is here; `ccmirror.packs` decides.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ccmirror.catalogue.db import utcnow

__all__ = [
    "files_out_of_pack",
    "fix_torrent_inputs",
    "hashes_recorded",
    "live_popularity",
    "live_sealed_packs",
    "live_torrents",
    "open_pack_ids",
    "open_pack_totals",
    "open_packs_listed",
    "pack_by_id",
    "pack_file_shares",
    "pack_rows",
    "pack_licence_counts",
    "pack_obsoleted",
    "pack_sealed",
    "sealed_copies_of",
    "sealed_packs_listed",
    "seedable_packs",
    "unpublishable_in_sealed_packs",
    "unpublishable_out_of_open_packs",
]

_OPEN = "status = 'open' AND is_metadata = 0 AND obsolete = 0"
_HASHES = ("md5", "sha1", "sha256")


def pack_by_id(db: sqlite3.Connection, pack_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM packs WHERE id = ?", (pack_id,)).fetchone()


def open_pack_ids(db: sqlite3.Connection) -> dict[str, int]:
    """Name -> id of every open content pack."""
    return {r["name"]: r["id"] for r in db.execute(f"SELECT id, name FROM packs WHERE {_OPEN}")}


def open_pack_totals(db: sqlite3.Connection) -> dict[str, list[int]]:
    """Name -> [tier, seq, files, bytes] of every open content pack."""
    return {
        r[0]: [r[1], r[2], r[3], r[4]]
        for r in db.execute(
            "SELECT p.name, p.tier, p.seq, count(pf.file_id), coalesce(sum(f.size), 0)"
            " FROM packs p LEFT JOIN pack_files pf ON pf.pack_id = p.id"
            " LEFT JOIN files f ON f.id = pf.file_id"
            " WHERE p.status = 'open' AND p.is_metadata = 0 AND p.obsolete = 0 GROUP BY p.id"
        )
    }


def open_packs_listed(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The open content packs with their file counts, by name (pack --json `open`)."""
    return [
        dict(r)
        for r in db.execute(
            "SELECT name, (SELECT count(*) FROM pack_files pf WHERE pf.pack_id = p.id) AS files"
            " FROM packs p WHERE status = 'open' AND obsolete = 0 AND is_metadata = 0"
            " ORDER BY name"
        )
    ]


def pack_rows(db: sqlite3.Connection, pack_id: int) -> list[sqlite3.Row]:
    """The files of a pack with what MANIFEST.csv and ATTRIBUTION.md need, by path."""
    return db.execute(
        "SELECT pf.path, f.id AS file_id, f.name, f.size, f.md5, f.sha1, f.sha256,"
        " f.store_path, f.fetched_at, f.verdict, f.isrc, f.title AS file_title, coalesce(f.licence_id, i.declared_licence_id)"
        " AS licence_id, coalesce(f.licence_url, i.licence_url) AS licence_url, i.source,"
        " i.source_id, i.source_url, i.title, i.creator, i.album, i.date, i.popularity,"
        " f.copy_of, f.encoder, f.format, o.name AS original_name, o.sha256 AS original_sha256,"
        " o.format AS original_format, f.genres, f.duration AS duration_s, f.composer,"
        " f.publisher, f.release_date, f.track, f.codec, f.bit_rate, f.sample_rate,"
        " f.channels, f.artists, f.lyricist, f.producer, f.engineer, f.mbid, f.kind"
        " FROM pack_files pf JOIN files f ON f.id = pf.file_id JOIN items i ON i.id = f.item_id"
        " LEFT JOIN files o ON o.id = f.copy_of"
        " WHERE pf.pack_id = ? ORDER BY pf.path",
        (pack_id,),
    ).fetchall()


def pack_file_shares(
    db: sqlite3.Connection, pack_id: int, share: str, params: Sequence[Any], verdicts: Sequence[str]
) -> dict[int, float]:
    """File id -> its item's share (`share`: SQL over items `i`, with `params`) divided by
    how many of the item's fetched files in the store have one of `verdicts` (at least 1),
    for the files of one pack whose item is 'ok'."""
    marks = ",".join("?" * len(verdicts))
    return dict(
        db.execute(
            f"SELECT f.id, {share} / max(1, (SELECT count(*) FROM files AS g"
            " WHERE g.item_id = i.id AND g.status = 'fetched' AND g.store_path IS NOT NULL"
            f" AND g.verdict IN ({marks}))) FROM pack_files AS pf JOIN files AS f"
            " ON f.id = pf.file_id JOIN items AS i ON i.id = f.item_id"
            " WHERE pf.pack_id = ? AND i.status = 'ok'",
            [*params, *verdicts, pack_id],
        ).fetchall()
    )


def fix_torrent_inputs(db: sqlite3.Connection, pack_id: int, inputs: dict[str, Any]) -> None:
    """Record what the pack's torrent is made from (creation date, format, trackers...),
    before anything is built: a rebuild after a crash gives the same bytes."""
    columns = (
        "creation_date",
        "format",
        "piece_size",
        "creator",
        "comment",
        "trackers",
        "web_seeds",
        "torrent_layout",
        "manifest_columns",
    )
    db.execute(
        f"UPDATE packs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
        (*(inputs[c] for c in columns), pack_id),
    )


def hashes_recorded(db: sqlite3.Connection, hashes: Iterable[tuple[int, str, str]]) -> None:
    """(file id, algorithm, hex digest): checksums computed while sealing."""
    for fid, algo, hexd in hashes:
        if algo not in _HASHES:  # a column name in SQL: only these three
            raise ValueError(f"not a checksum column: {algo!r}")
        db.execute(f"UPDATE files SET {algo} = ? WHERE id = ?", (hexd, fid))


def files_out_of_pack(db: sqlite3.Connection, pack_id: int, file_ids: Iterable[int]) -> None:
    db.executemany(
        "DELETE FROM pack_files WHERE pack_id = ? AND file_id = ?",
        [(pack_id, fid) for fid in file_ids],
    )


def pack_sealed(db: sqlite3.Connection, pack_id: int, sealed: dict[str, Any]) -> None:
    """An open pack becomes sealed, with its torrent's facts; it is never changed again."""
    db.execute(
        "UPDATE packs SET status = 'sealed', sealed_at = ?, info_hash_v1 = ?,"
        " info_hash_v2 = ?, torrent_path = ?, torrent_size = ?, num_files = ?,"
        " data_size = ?, piece_size = ?, popularity = ? WHERE id = ? AND status = 'open'",
        (
            utcnow(),
            sealed["info_hash_v1"],
            sealed["info_hash_v2"],
            sealed["torrent_path"],
            sealed["torrent_size"],
            sealed["num_files"],
            sealed["data_size"],
            sealed["piece_size"],
            sealed["popularity"],
            pack_id,
        ),
    )


def seedable_packs(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Sealed packs with a torrent, and a follower's verified ones, in seeding order."""
    return list(
        db.execute(
            "SELECT name, torrent_path, info_hash_v1, info_hash_v2, obsolete, tier, seq"
            " FROM packs WHERE status = 'sealed' AND torrent_path IS NOT NULL"
            # A follower's verified packs (ccmirror.follow), seeded the same way.
            " UNION ALL SELECT name, torrent_path, btih, NULL, 0, coalesce(tier, 1000000), 0"
            " FROM follow_torrents WHERE state = 'held' AND torrent_path IS NOT NULL"
            " ORDER BY 6, 7, 1"
        )
    )


def _not_publishable(verdicts: Sequence[str]) -> str:
    """SQL over files f and items i: this file may not be published (any more)."""
    marks = ",".join(f"'{v}'" for v in verdicts)
    return (
        f"(i.status != 'ok' OR f.status != 'fetched' OR f.verdict IS NULL"
        f" OR f.verdict NOT IN ({marks}))"
    )


def unpublishable_in_sealed_packs(
    db: sqlite3.Connection, verdicts: Sequence[str]
) -> list[sqlite3.Row]:
    """Live sealed content packs holding a file that may not be published: one row per
    (pack, item, status, verdict), with the pack's id and name."""
    return db.execute(
        "SELECT DISTINCT p.id, p.name, i.source, i.source_id, i.status AS item_status,"
        " f.verdict FROM packs p JOIN pack_files pf ON pf.pack_id = p.id"
        " JOIN files f ON f.id = pf.file_id JOIN items i ON i.id = f.item_id"
        " WHERE p.status = 'sealed' AND p.obsolete = 0 AND p.is_metadata = 0"
        f" AND {_not_publishable(verdicts)}"
    ).fetchall()


def pack_obsoleted(db: sqlite3.Connection, pack_id: int, why: str) -> bool:
    """A sealed pack becomes obsolete (its other files are packed again); False when it
    already was."""
    cur = db.execute(
        "UPDATE packs SET obsolete = 1, obsolete_reason = ? WHERE id = ? AND obsolete = 0",
        (why, pack_id),
    )
    return cur.rowcount > 0


def unpublishable_out_of_open_packs(db: sqlite3.Connection, verdicts: Sequence[str]) -> int:
    """Open packs drop the files that may not be published; how many were dropped."""
    cur = db.execute(
        "DELETE FROM pack_files WHERE rowid IN (SELECT pf.rowid FROM pack_files pf"
        " JOIN packs p ON p.id = pf.pack_id JOIN files f ON f.id = pf.file_id"
        f" JOIN items i ON i.id = f.item_id WHERE p.status = 'open' AND {_not_publishable(verdicts)})"
    )
    return cur.rowcount


def pack_licence_counts(db: sqlite3.Connection) -> dict[int, dict[str, int]]:
    """Pack id -> {licence id (or 'unknown'): files}, licences in name order."""
    out: dict[int, dict[str, int]] = {}
    for r in db.execute(
        "SELECT pf.pack_id, coalesce(f.licence_id, i.declared_licence_id, 'unknown') AS lid,"
        " count(*) AS n FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        " JOIN items i ON i.id = f.item_id GROUP BY pf.pack_id, lid ORDER BY lid"
    ):
        out.setdefault(r["pack_id"], {})[r["lid"]] = r["n"]
    return out


def sealed_packs_listed(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every sealed pack, obsolete ones too, content first, by tier and sequence."""
    return db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' ORDER BY is_metadata, tier, seq, id"
    ).fetchall()


def live_sealed_packs(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Sealed packs that are not obsolete, content first, by id."""
    return db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' AND obsolete = 0 ORDER BY is_metadata, id"
    ).fetchall()


def live_torrents(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Sealed, live packs with a torrent: the metadata torrent first, then by tier."""
    return db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' AND obsolete = 0"
        " AND torrent_path IS NOT NULL ORDER BY is_metadata DESC, tier, seq, name"
    ).fetchall()


def live_popularity(db: sqlite3.Connection) -> float:
    """The popularity summed over the packs that are not obsolete."""
    row = db.execute("SELECT coalesce(sum(popularity), 0) FROM packs WHERE obsolete = 0")
    return row.fetchone()[0] or 0


def sealed_copies_of(db: sqlite3.Connection, file_id: int) -> list[sqlite3.Row]:
    """(name, path) of each sealed pack holding the file, live packs first."""
    return db.execute(
        "SELECT p.name, pf.path FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " WHERE pf.file_id = ? AND p.status = 'sealed' ORDER BY p.obsolete, p.id",
        (file_id,),
    ).fetchall()
