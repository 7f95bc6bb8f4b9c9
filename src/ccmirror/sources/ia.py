"""Internet Archive harvester: scrape search, then item metadata, concurrently.

The real `internetarchive` library does the talking: `ArchiveSession.search_items` (the
scrape API, cursor paging) and `ArchiveSession.get_metadata`, under urllib3's retry policy
(429/5xx, Retry-After honoured, backoff). Each worker thread has its own session.

Per item, in order: excluded collection (from the search, no metadata request) -> refused;
unchanged since the last harvest (newest `oai_updatedate`) -> nothing fetched; metadata
`{}` -> missing; `is_dark` -> dark; licence gate (`ccmirror.licence.judge_declared`) ->
refused; no selected files -> empty; else ok, with its files recorded as pending.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from internetarchive import ArchiveSession
from urllib3 import Retry

from ccmirror.catalogue import transaction, utcnow
from ccmirror.errors import SourceUnreachable, UnsafeName
from ccmirror.fsutil import safe_relpath
from ccmirror.licence import judge_declared
from ccmirror.manifest import IASource
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter

log = logging.getLogger("ccmirror.sources.ia")

SEARCH_FIELDS = ["identifier", "collection", "downloads", "month", "week", "oai_updatedate"]
MAX_RETRIES = 5
BACKOFF_FACTOR = 1.0  # urllib3: sleeps 0, 2, 4, 8, 16 s between retries (Retry-After wins)
# IA format names of audio (originals are matched by format or by extension).
AUDIO_FORMATS = {
    "flac",
    "24bit flac",
    "vbr mp3",
    "mp3",
    "128kbps mp3",
    "64kbps mp3",
    "ogg vorbis",
    "opus",
    "wave",
    "aiff",
    "apple lossless audio",
    "shorten",
    "windows media audio",
    "m4a",
    "aac",
}
AUDIO_EXTS = {".flac", ".mp3", ".ogg", ".oga", ".opus", ".wav", ".aif", ".aiff", ".m4a", ".shn"}


def make_session(endpoint: str, retries: int = MAX_RETRIES) -> ArchiveSession:
    """An ArchiveSession aimed at `endpoint` (archive.org, or a loopback/private server).

    The library appends ".archive.org" to a host without it, so the host is set after
    construction; its retry adapter is mounted for the endpoint like it does for archive.org.
    """
    parts = urlsplit(endpoint)
    session = ArchiveSession(
        config={"general": {"secure": parts.scheme == "https", "host": "archive.org"}}
    )
    session.host = parts.netloc
    session.protocol = f"{parts.scheme}:"
    # The library asks for "Connection: close"; each worker reuses its connection instead
    # (one session per thread), sparing a TCP (and TLS) handshake per item.
    session.headers.pop("Connection", None)
    retry = Retry(
        total=retries,
        connect=min(retries, 2),  # a refused connection rarely heals within seconds
        read=retries,
        redirect=False,
        allowed_methods=["POST", "HEAD", "GET", "OPTIONS"],
        status_forcelist=[429, 500, 502, 503, 504],
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=30,
        respect_retry_after_header=True,
    )
    session.mount_http_adapter(protocol=session.protocol, host=parts.netloc, max_retries=retry)
    return session


def _search(session: ArchiveSession, query: str) -> Iterator[dict[str, Any]]:
    search = session.search_items(query, fields=list(SEARCH_FIELDS), max_retries=MAX_RETRIES)
    # search_items mounts its own adapter on archive.org only; ours stays on the endpoint.
    yield from search


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _text(value: Any) -> str | None:
    items = _as_list(value)
    return "; ".join(items) if items else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _stamp(doc: dict[str, Any]) -> str | None:
    stamps = _as_list(doc.get("oai_updatedate"))
    return max(stamps) if stamps else None


def _selected(f: dict[str, Any], wanted: str | tuple[str, ...]) -> bool:
    fmt = str(f.get("format") or "")
    if wanted == "original":
        if f.get("source") != "original":
            return False
        name = str(f.get("name") or "")
        ext = name[name.rfind(".") :].lower() if "." in name else ""
        return fmt.lower() in AUDIO_FORMATS or ext in AUDIO_EXTS
    return fmt in wanted


class _Fetcher:
    """Item metadata with one ArchiveSession per worker thread."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.local = threading.local()

    def __call__(self, identifier: str) -> dict[str, Any]:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = make_session(self.endpoint)
        return session.get_metadata(identifier, {"timeout": 60}) or {}


def harvest_source(
    mirror: Mirror, source: IASource, *, workers: int = 8, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Harvest one IA source into the catalogue; return counts (see ccmirror.harvest)."""
    reporter = reporter or NullReporter()
    workers = max(1, workers)
    counts: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    db = mirror.db
    endpoint = source.endpoint.rstrip("/")

    try:
        docs = list(_search(make_session(endpoint), source.query))
    except (requests.RequestException, ValueError) as e:
        raise SourceUnreachable(f"cannot search {endpoint}: {_short(e)}") from None
    seen: set[str] = set()
    unique = []
    for d in docs:
        ident = str(d.get("identifier") or "")
        if ident and ident not in seen:
            seen.add(ident)
            unique.append(d)
    unique.sort(key=lambda d: (-_int(d.get("downloads")), d["identifier"]))
    if source.max_items:
        unique = unique[: source.max_items]
    counts["found"] = len(unique)

    known = {
        r["source_id"]: r
        for r in db.execute(
            "SELECT source_id, source_updated, status, reason, licence_url FROM items"
            " WHERE source = 'ia'"
        )
    }
    excluded = set(source.exclude_collections)
    todo: list[dict[str, Any]] = []
    now = utcnow()
    with transaction(db):
        for d in unique:
            ident = d["identifier"]
            hit = sorted(excluded.intersection(_as_list(d.get("collection"))))
            if hit:
                reason = f"excluded collection: {hit[0]}"
                _upsert_item(db, endpoint, d, None, None, "refused", reason, now)
                refused[reason] += 1
                continue
            prev = known.get(ident)
            stamp = _stamp(d)
            if prev is not None and stamp is not None and prev["source_updated"] == stamp:
                if prev["status"] == "refused" and not (prev["reason"] or "").startswith(
                    "excluded collection"
                ):
                    # The policy may have changed since: re-read the item if it now passes.
                    again = judge_declared(prev["licence_url"], None, mirror.manifest.licence)
                    if again.allowed:
                        todo.append(d)
                        continue
                # Unchanged: popularity still moves, the metadata is not fetched again.
                _update_popularity(db, d)
                counts["unchanged"] += 1
                if prev["status"] == "refused":
                    refused[prev["reason"] or "refused"] += 1
                elif prev["status"] in ("dark", "empty"):
                    counts[prev["status"]] += 1
                continue
            todo.append(d)

    reporter.start("harvest", len(todo), "items")
    fetcher = _Fetcher(endpoint)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ia-meta") as pool:
            pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
            queue = iter(todo)
            # Keep at most `workers` requests in flight and the queue bounded in memory.
            for d in queue:
                pending[pool.submit(fetcher, d["identifier"])] = d
                if len(pending) >= workers * 2:
                    break
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    batch = [(fut, pending.pop(fut)) for fut in done]
                    for _ in batch:  # refill first: the workers keep going while we write
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending[pool.submit(fetcher, nxt["identifier"])] = nxt
                    # One short transaction per batch of finished items.
                    with transaction(db):
                        for fut, d in batch:
                            _record(mirror, source, endpoint, d, fut, known, counts, refused)
                    reporter.advance(len(batch))
            except BaseException:
                # Interrupted: what is recorded stays; queued requests are dropped.
                for fut in pending:
                    fut.cancel()
                raise
    finally:
        reporter.finish()
    if todo and counts["failed"] == len(todo):
        raise SourceUnreachable(f"cannot read item metadata from {endpoint}")
    result: dict[str, Any] = {
        k: counts[k]
        for k in (
            "found",
            "new",
            "updated",
            "unchanged",
            "dark",
            "empty",
            "missing",
            "files",
            "failed",
        )
    }
    result["refused_items"] = sum(refused.values())
    result["refused"] = dict(refused.most_common())
    return result


def _short(e: BaseException) -> str:
    text = str(e)
    return text if len(text) < 200 else text[:200] + "..."


def _record(
    mirror: Mirror,
    source: IASource,
    endpoint: str,
    d: dict[str, Any],
    fut: Future[dict[str, Any]],
    known: dict[str, sqlite3.Row],
    counts: Counter[str],
    refused: Counter[str],
) -> None:
    """Record one item from its metadata; the caller holds the transaction."""
    ident = d["identifier"]
    try:
        meta = fut.result()
    except (requests.RequestException, ValueError) as e:
        log.warning("ia: %s: metadata not read: %s", ident, _short(e))
        counts["failed"] += 1
        return
    db = mirror.db
    now = utcnow()
    status, reason = "ok", None
    md = meta.get("metadata") or {}
    files: list[dict[str, Any]] = []
    licence_id = None
    if not meta:
        counts["missing"] += 1
        return
    if meta.get("is_dark"):
        status, reason = "dark", "item is dark"
        counts["dark"] += 1
    else:
        verdict = judge_declared(md.get("licenseurl"), None, mirror.manifest.licence)
        licence_id = verdict.licence_id
        excluded = sorted(
            set(source.exclude_collections).intersection(_as_list(md.get("collection")))
        )
        if excluded:
            status, reason = "refused", f"excluded collection: {excluded[0]}"
        elif not verdict.allowed:
            status, reason = "refused", verdict.reason or "licence not allowed"
        else:
            files = [f for f in meta.get("files") or [] if _selected(f, source.files)]
            if not files:
                status, reason = "empty", "no selected files"
                counts["empty"] += 1
        if status == "refused":
            refused[reason or "refused"] += 1
    item_id = _upsert_item(db, endpoint, d, meta, licence_id, status, reason, now)
    for f in files:
        counts["files"] += _upsert_file(db, endpoint, ident, item_id, f)
    counts["new" if ident not in known else "updated"] += 1


def _upsert_item(
    db: sqlite3.Connection,
    endpoint: str,
    d: dict[str, Any],
    meta: dict[str, Any] | None,
    licence_id: str | None,
    status: str,
    reason: str | None,
    now: str,
) -> int:
    ident = d["identifier"]
    md = (meta or {}).get("metadata") or {}
    collections = _as_list(md.get("collection")) or _as_list(d.get("collection"))
    extra = {"item_last_updated": (meta or {}).get("item_last_updated")}
    row = (
        _text(md.get("title")),
        _text(md.get("creator")),
        _text(md.get("date")),
        json.dumps(collections),
        f"{endpoint}/details/{quote(ident)}",
        md.get("licenseurl"),
        licence_id,
        _int(d.get("downloads")),
        _int(d.get("month")),
        _int(d.get("week")),
        float(_int(d.get("downloads"))),
        json.dumps(extra),
        # Refused-by-search items keep no stamp so a later change of rules re-reads them.
        _stamp(d) if meta is not None else None,
        status,
        reason,
        now,
    )
    db.execute(
        """INSERT INTO items (source, source_id, title, creator, date, collections, source_url,
               licence_url, declared_licence_id, downloads, downloads_month, downloads_week,
               popularity, extra, source_updated, status, reason, harvested_at, first_seen)
           VALUES ('ia', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (source, source_id) DO UPDATE SET
               title = excluded.title, creator = excluded.creator, date = excluded.date,
               collections = excluded.collections, source_url = excluded.source_url,
               licence_url = excluded.licence_url,
               declared_licence_id = excluded.declared_licence_id,
               downloads = excluded.downloads, downloads_month = excluded.downloads_month,
               downloads_week = excluded.downloads_week, popularity = excluded.popularity,
               extra = excluded.extra, source_updated = excluded.source_updated,
               status = CASE WHEN items.status = 'withdrawn' THEN 'withdrawn'
                             ELSE excluded.status END,
               reason = CASE WHEN items.status = 'withdrawn' THEN items.reason
                             ELSE excluded.reason END,
               harvested_at = excluded.harvested_at""",
        (ident, *row, now),
    )
    return db.execute(
        "SELECT id FROM items WHERE source = 'ia' AND source_id = ?", (ident,)
    ).fetchone()[0]


def _update_popularity(db: sqlite3.Connection, d: dict[str, Any]) -> None:
    db.execute(
        """UPDATE items SET downloads = ?, downloads_month = ?, downloads_week = ?,
               popularity = ? WHERE source = 'ia' AND source_id = ?""",
        (
            _int(d.get("downloads")),
            _int(d.get("month")),
            _int(d.get("week")),
            float(_int(d.get("downloads"))),
            d["identifier"],
        ),
    )


def _upsert_file(
    db: sqlite3.Connection, endpoint: str, ident: str, item_id: int, f: dict[str, Any]
) -> int:
    """Record one file; return 1 when it is new or changed (to be fetched), else 0."""
    name = str(f.get("name") or "")
    size = _int(f.get("size")) if f.get("size") not in (None, "") else None
    md5 = (f.get("md5") or None) and str(f["md5"]).lower()
    sha1 = (f.get("sha1") or None) and str(f["sha1"]).lower()
    try:
        safe_relpath(name)
        status, reason = "pending", None
    except UnsafeName as e:
        status, reason = "refused", f"unsafe name: {e.message}"
    url = f"{endpoint}/download/{quote(ident)}/{quote(name)}"
    prev = db.execute(
        "SELECT id, size, md5, sha1, status FROM files WHERE item_id = ? AND name = ?",
        (item_id, name),
    ).fetchone()
    if prev is None:
        db.execute(
            """INSERT INTO files (item_id, name, size, md5, sha1, format, origin, url, status,
                   reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (item_id, name, size, md5, sha1, f.get("format"), _origin(f), url, status, reason),
        )
        return 1
    if (prev["size"], prev["md5"], prev["sha1"]) == (size, md5, sha1):
        return 0
    # New bytes at the source: fetch again (the verified old copy stays until replaced).
    db.execute(
        """UPDATE files SET size = ?, md5 = ?, sha1 = ?, sha256 = NULL, format = ?, url = ?,
               status = ?, reason = ? WHERE id = ?""",
        (size, md5, sha1, f.get("format"), url, status, reason, prev["id"]),
    )
    return 1


def _origin(f: dict[str, Any]) -> str:
    return "original" if f.get("source") == "original" else "derivative"
