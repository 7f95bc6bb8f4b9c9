"""A pack's payload tree: hard links into the store, ATTRIBUTION.md and MANIFEST.csv.

`packs/<name>/<source>/<item>/<file>` are hard links to the store (a reflink or a copy
when the link fails across filesystems), so a pack costs no extra disk. The tree is
built in a hidden sibling folder and renamed into place: a crash never leaves a
half-built `packs/<name>/` behind.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccmirror.catalogue.packs import pack_rows as pack_rows  # its SQL; callers import it here
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import CHUNK, atomic_write_bytes, fsync_dir, safe_join
from ccmirror.licence.normalise import licence_info
from ccmirror.recording import joined

log = logging.getLogger("ccmirror.packs")

MANIFEST_COLUMNS = (
    "path",
    "size",
    "md5",
    "sha1",
    "sha256",
    "source",
    "source_id",
    "source_url",
    "title",
    "creator",
    "album",
    "date",
    "licence_id",
    "licence_url",
    "verdict",
    "isrc",
    "popularity",
)
# Added (after the others) only in packs that hold compact copies: a pack without any keeps
# the bytes, and so the info-hash, it has always had (sealed packs are rebuilt from rows).
COMPACT_COLUMNS = ("original_sha256", "original_format", "encoder")
# Per-recording metadata (issue 18), after all the others: only in packs sealed with them,
# recorded per pack (packs.manifest_columns), so a pack sealed before keeps its bytes.
METADATA_COLUMNS = (
    "genre",
    "duration_s",
    "composer",
    "publisher",
    "release_date",
    "track",
    "codec",
    "bit_rate",
    "sample_rate",
    "channels",
    # who made it, as the source or the file's tags name them (lists joined with "; ")
    "artists",
    "lyricist",
    "producer",
    "engineer",
    "mbid",  # MusicBrainz recording id, from the file's tags
)
# Cover art (issue 18): only in packs that hold an image, after all the others: "audio" or
# "artwork" per row. A pack without artwork keeps the columns (and bytes) it had.
ARTWORK_COLUMNS = ("kind",)
FICLONE = 0x40049409  # linux/fs.h


def fill_hashes(
    data_dir: Path, rows: Sequence[sqlite3.Row], workers: int, progress: Callable[[int], None]
) -> dict[int, dict[str, str]]:
    """md5/sha1/sha256 that the catalogue lacks, one read per file, files in parallel.

    A file that is read anyway, or whose store copy was written after it was fetched, is
    also hashed with one checksum the catalogue has (sha1, else md5) for the caller to
    compare (`hash_mismatch`): bytes changed in the store behind ccmirror's back are never
    packed as the file the source published. A file whose checksums are all known and
    untouched since its fetch is not read again (resealing stays as fast as linking)."""

    stop = threading.Event()

    def wanted(row: sqlite3.Row) -> list[str]:
        want = [a for a in ("md5", "sha1", "sha256") if not row[a]]
        if not want and not _touched_since_fetch(data_dir, row):
            return []
        check = next((a for a in ("sha1", "md5") if row[a]), None)
        return want + [check] if check else want

    def job(item: tuple[sqlite3.Row, list[str]]) -> tuple[int, dict[str, str]]:
        row, algos = item
        hashers = {a: hashlib.new(a) for a in algos}
        with open(safe_join(data_dir, row["store_path"]), "rb") as f:
            while chunk := f.read(CHUNK):
                if stop.is_set():
                    raise InterruptedError("hashing stopped")
                for h in hashers.values():
                    h.update(chunk)
                progress(len(chunk))
        return row["file_id"], {a: h.hexdigest() for a, h in hashers.items()}

    todo = [(r, algos) for r in rows if (algos := wanted(r))]
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        return dict(pool.map(job, todo))
    finally:  # on an interrupt, stop the running jobs and drop the queued ones
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _touched_since_fetch(data_dir: Path, row: sqlite3.Row) -> bool:
    """Whether the store file's mtime is past its fetch (1 s for the stamp's rounding).
    Without a fetch stamp (rows made by hand) the catalogue's checksums are trusted."""
    fetched = dict(row).get("fetched_at")
    if not fetched:
        return False
    try:
        when = datetime.strptime(fetched, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        mtime = os.stat(safe_join(data_dir, row["store_path"])).st_mtime
    except (ValueError, OSError, UnsafeName):
        return True
    return mtime >= when.timestamp() + 1


def hash_mismatch(row: Any, hashes: dict[str, str]) -> str | None:
    """Which of the catalogue's checksums the bytes just read do not match, if any."""
    for algo in ("md5", "sha1", "sha256"):
        known, got = row[algo], hashes.get(algo)
        if known and got and str(known).lower() != got:
            return f"{algo} {got} is not the recorded {known}"
    return None


def link_or_copy(src: Path, dst: Path) -> str:
    """Hard link src at dst; reflink, then copy, when a link is impossible."""
    try:
        os.link(src, dst)
        return "link"
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    part = dst.with_name(dst.name + ".part")
    with open(src, "rb") as fin, open(part, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            how = "reflink"
        except OSError:
            shutil.copyfileobj(fin, fout, CHUNK)
            how = "copy"
        fout.flush()
        os.fsync(fout.fileno())
    os.replace(part, dst)
    return how


def _has_copies(rows: Sequence[dict[str, Any]]) -> bool:
    return any(r.get("copy_of") is not None for r in rows)


def _has_artwork(rows: Sequence[dict[str, Any]]) -> bool:
    return any(r.get("kind") == "artwork" for r in rows)


def manifest_columns(rows: Sequence[dict[str, Any]], metadata: bool = True) -> list[str]:
    """MANIFEST.csv's columns for these rows: the pack's own, fixed when it is first sealed
    (metadata=False: the columns of packs sealed before per-recording metadata)."""
    columns = MANIFEST_COLUMNS + (COMPACT_COLUMNS if _has_copies(rows) else ())
    if not metadata:
        return list(columns)
    return list(columns + METADATA_COLUMNS + (ARTWORK_COLUMNS if _has_artwork(rows) else ()))


def manifest_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """MANIFEST.csv with `columns` (default: those of a pack sealed before metadata
    columns existed, which a rebuild of such a pack must write again)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    columns = list(columns) if columns is not None else manifest_columns(rows, metadata=False)
    w.writerow(columns)
    for r in rows:
        cells = dict(r) | {"genre": joined(r.get("genres")), "artists": joined(r.get("artists"))}
        w.writerow([_cell(cells.get(c)) for c in columns])
    return buf.getvalue()


def copy_note(r: dict[str, Any]) -> str:
    """ATTRIBUTION.md's line on how a file relates to what its source published."""
    if r.get("copy_of") is None:
        return "- Unmodified copy."
    original = _md(r.get("original_name") or "the original")
    was = _md(r.get("original_format") or "its original format")
    how = _md(r.get("encoder") or "")
    if (r.get("encoder") or "").startswith("opusenc"):
        rate = how.split("--bitrate ", 1)[-1].split(" ", 1)[0]
        return (
            f"- Format-shifted copy of {original} ({was}), made by this mirror: Opus at"
            f" {rate} kbit/s ({how}). Otherwise unmodified."
        )
    return (
        f"- Format-shifted copy of {original} ({was}): the source's own"
        f" {_md(r.get('format') or 'lossy')} derivative, {how}. Otherwise unmodified."
    )


def _cell(value: Any) -> Any:
    # Download and listen counts are whole numbers stored as REAL: 6000, not 6000.0.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _md(text: Any) -> str:
    return str(text).replace("\n", " ").replace("[", "\\[").replace("]", "\\]")


def attribution_md(pack_name: str, mirror_name: str, rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"# {pack_name}: attribution",
        "",
        f"Published by the ccmirror mirror `{mirror_name}`. Every audio file in this pack is an",
        "unmodified copy of the file published at its source page, under the licence named",
        "below. MANIFEST.csv lists sizes and checksums (md5, sha1, sha256) for every file.",
        "",
    ]
    if _has_copies(rows):
        lines[2:5] = [
            f"Published by the ccmirror mirror `{mirror_name}`. Every audio file in this pack is",
            "a copy of the recording published at its source page, under the licence named",
            "below: unmodified, or, where it says so, format-shifted (the same recording in",
            "another format, as every Creative Commons licence permits; otherwise unmodified).",
            "MANIFEST.csv lists sizes and checksums (md5, sha1, sha256) for every file, and for",
            "a format-shifted copy the original's sha256, its format and the encoder settings.",
        ]
    for r in rows:
        info = licence_info(r.get("licence_id"))
        lic_url = r.get("licence_url") or (info or {}).get("url") or ""
        lic_name = (info or {}).get("name") or r.get("licence_id") or "licence as declared"
        lic_id = f" ({r['licence_id']})" if info and r.get("licence_id") else ""
        lines += [
            f"## {_md(r['path'])}",
            "",
            f"- Title: {_md(r.get('title') or r['path'].rsplit('/', 1)[-1])}",
            f"- Creator: {_md(r.get('creator') or 'unknown')}",
            f"- Source: {r.get('source_url') or ''}",
            f"- Licence: {_md(lic_name)}{lic_id} <{lic_url}>",
            copy_note(r),
        ]
        if r.get("kind") == "artwork":
            lines.append("- Artwork: an image published with the item, under the item's licence.")
        lines.append("")
    return "\n".join(lines)


def tag_title(path: Path) -> str | None:
    """The recording's own title tag: an album item's tracks are credited one by one."""
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
        titles = (f.tags or {}).get("title") if f is not None else None
    except Exception:  # unreadable tags: the item's title stands
        return None
    if titles and isinstance(titles, list) and str(titles[0]).strip():
        return str(titles[0]).strip()
    return None


def _remove(path: Path) -> None:
    """Clear the way for a payload folder: a symlink or file planted there is unlinked
    itself (never followed: what it points at is not ours), a folder removed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def build_payload(
    data_dir: Path,
    packs_dir: Path,
    name: str,
    mirror_name: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    generated: dict[str, bytes] | None = None,
) -> dict[str, int]:
    """Build packs/<name>/ (replacing an unfinished one); return link/reflink/copy counts.
    `columns`: MANIFEST.csv's, as recorded for the pack (None: a pack sealed before they
    were recorded). `generated`: MANIFEST.csv and ATTRIBUTION.md as a sealed pack recorded
    them (`packs.sealed`), written as they are instead of from today's rows."""
    final = packs_dir / name
    build = packs_dir / f".{name}.build"
    if packs_dir.is_relative_to(data_dir):  # a symlinked packs/ must not lead outside
        safe_join(data_dir, str(packs_dir.relative_to(data_dir)))
    _remove(build)
    build.mkdir(parents=True)
    counts = {"link": 0, "reflink": 0, "copy": 0}
    credited = []
    for r in rows:
        src = safe_join(data_dir, r["store_path"])
        dst = safe_join(build, r["path"])
        dst.parent.mkdir(parents=True, exist_ok=True)
        counts[link_or_copy(src, dst)] += 1
        if generated is not None:
            continue
        # The source's own title for the file, else its title tag, else the item's title.
        title = r.get("file_title") or tag_title(src) or r.get("title")
        credited.append(dict(r) | {"title": title})
    if generated is None:
        generated = {
            "MANIFEST.csv": manifest_csv(credited, columns).encode("utf-8"),
            "ATTRIBUTION.md": attribution_md(name, mirror_name, credited).encode("utf-8"),
        }
    for fname, data in generated.items():
        atomic_write_bytes(build / fname, data)
    _remove(final)
    os.rename(build, final)
    fsync_dir(packs_dir)
    return counts
