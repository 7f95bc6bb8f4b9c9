"""Internet Archive harvester: scrape search, then item metadata, concurrently.

The real `internetarchive` library does the talking: `ArchiveSession.search_items` (the
scrape API, cursor paging) and `ArchiveSession.get_metadata`, under urllib3's retry policy
(429/5xx, Retry-After honoured, backoff). Each worker thread has its own session.

Per item, in order: excluded collection (from the search, no metadata request) -> refused;
unchanged since the last harvest (newest `oai_updatedate`; without one, the metadata's
`item_last_updated`, read again) -> nothing fetched or rewritten; metadata
`{}` -> missing; `is_dark` -> dark; licence gate (`ccmirror.licence.judge_declared`) ->
refused; no selected files -> empty; else ok, with its files recorded as pending.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from internetarchive import ArchiveSession
from urllib3 import Retry

from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.artwork import apply_artwork_policy
from ccmirror.catalogue.ia import fetched_names
from ccmirror.compact.sourcefacts import record_ia_files
from ccmirror.errors import SourceUnreachable
from ccmirror.fetch.reasons import failure_reason
from ccmirror.licence import judge_declared
from ccmirror.manifest import IASource
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.sources.ia.checks import safe_identifier
from ccmirror.sources.ia.reader import MetadataReader, Pace, Throttled, read_all
from ccmirror.sources.ia.records import (
    as_list,
    known_items,
    name_clashes,
    newest_stamp,
    record_recordings,
    refuse_clash,
    repoint_item,
    skip_file,
    to_int,
    update_popularity,
    upsert_file,
    upsert_item,
)
from ccmirror.sources.ia.scrape import Scrape, scrape
from ccmirror.sources.ia.select import choose, choose_artwork
from ccmirror.sources.registry import HARVEST_COUNTS, harvest_counts

log = logging.getLogger("ccmirror.sources.ia")

SEARCH_FIELDS = ["identifier", "collection", "downloads", "month", "week", "oai_updatedate"]
MAX_RETRIES = 5
CONNECT_TIMEOUT = 4.0  # seconds for a TCP (and TLS) connect; then one retry
SEARCH_READ_TIMEOUT = 300  # the library's default for a scrape page
PREPASS_BATCH = 500  # items per write transaction when nothing is fetched
BACKOFF_FACTOR = 1.0  # urllib3: sleeps 0, 2, 4, 8, 16 s between retries (Retry-After wins)


def retry_policy(retries: int = MAX_RETRIES) -> Retry:
    """urllib3's retries for every request to the archive. A host that does not answer
    at all is tried twice, CONNECT_TIMEOUT each: one error line within ~10 s, not 30 s of
    silence (the library's own search policy retries a connect five times)."""
    return Retry(
        total=retries,
        connect=min(retries, 1),
        read=retries,
        redirect=False,
        allowed_methods=["POST", "HEAD", "GET", "OPTIONS"],
        status_forcelist=[429, 500, 502, 503, 504],
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=30,
        respect_retry_after_header=True,
    )


def make_session(endpoint: str, retries: int = MAX_RETRIES) -> ArchiveSession:
    """An ArchiveSession aimed at `endpoint` (archive.org, or a loopback/private server).

    The library appends ".archive.org" to a host without it, so the host is set after
    construction; its retry adapter is mounted for the endpoint like it does for archive.org.
    The search goes through it; the metadata reads have their own pool (`reader`), which
    leaves 429 and 503 to the harvest's pace: it slows every worker down, not just one.
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
    retry = retry_policy(retries)
    session.mount_http_adapter(protocol=session.protocol, host=parts.netloc, max_retries=retry)
    return session


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
    found, unique = _search(source, endpoint, refused)
    counts["found"] = len(unique)
    known = {r["source_id"]: r for r in known_items(db)}
    todo: list[dict[str, Any]] = []
    now = utcnow()
    for start in range(0, len(unique), PREPASS_BATCH):
        with transaction(db):
            _prepass(
                mirror,
                source,
                endpoint,
                unique[start : start + PREPASS_BATCH],
                known,
                todo,
                counts,
                refused,
                now,
            )

    if todo:
        reporter.start("harvest", len(todo), "items")
    why = ["no answer"]  # the last metadata failure, in words
    pace = Pace(workers)

    def record(batch: list[tuple[Future[dict[str, Any]], dict[str, Any]]]) -> None:
        # One short transaction per batch of finished items; the workers keep going.
        with transaction(db):
            for fut, d in batch:
                _record(mirror, source, endpoint, d, fut, known, counts, refused, why)
        reporter.advance(len(batch))

    reader = MetadataReader(endpoint, MAX_RETRIES, BACKOFF_FACTOR, connect_timeout=CONNECT_TIMEOUT)
    try:
        read_all(todo, reader, record, pace, max_tries=MAX_RETRIES + 1, backoff=BACKOFF_FACTOR)
    finally:
        reader.close()
        reporter.finish()
    if todo and counts["failed"] == len(todo):
        raise SourceUnreachable(f"ia: cannot read item metadata from {endpoint} ({why[0]})")
    result = harvest_counts() | {k: counts[k] for k in HARVEST_COUNTS}
    tc = mirror.manifest.torrents
    # Which cover images are fetched: decided for every item at once (a manifest change
    # applies to items not read again too).
    result["artwork"] = apply_artwork_policy(
        db,
        enabled=tc.artwork,
        max_size=tc.max_artwork_size,
        require_embedded=mirror.manifest.licence.require_embedded,
    )
    result["refused_items"] = sum(refused.values())
    result["refused"] = dict(refused.most_common())
    result["search"] = found.to_dict()
    result["pace"] = pace.to_dict()
    result["warnings"] = list(found.warnings)
    return result


def _search(
    source: IASource, endpoint: str, refused: Counter[str]
) -> tuple[Scrape, list[dict[str, Any]]]:
    """The scrape's answer and its safe, distinct items, most downloaded first."""
    try:
        found = scrape(
            make_session(endpoint),
            source.query,
            SEARCH_FIELDS,
            timeout=(CONNECT_TIMEOUT, SEARCH_READ_TIMEOUT),
        )
    except requests.RequestException as e:
        raise SourceUnreachable(f"ia: cannot reach {endpoint} ({_why(e)})") from None
    except ValueError as e:  # an answer, but an error document (a bad query, ...)
        raise SourceUnreachable(f"ia: {endpoint} did not answer the search: {_short(e)}") from None
    unique = []
    for d in found.docs:
        ident = str(d.get("identifier") or "")
        if ident:
            if not safe_identifier(ident):
                # Not an IA identifier ([A-Za-z0-9._-]); as a path it would leave its folder,
                # as a URL it would name another resource: refused, never asked for.
                log.warning("ia: refused the unsafe identifier %r", ident[:200])
                refused["unsafe identifier"] += 1
                continue
            unique.append(d)
    unique.sort(key=lambda d: (-to_int(d.get("downloads")), d["identifier"]))
    if source.max_items:
        unique = unique[: source.max_items]
    return found, unique


def _prepass(
    mirror: Mirror,
    source: IASource,
    endpoint: str,
    docs: list[dict[str, Any]],
    known: dict[str, sqlite3.Row],
    todo: list[dict[str, Any]],
    counts: Counter[str],
    refused: Counter[str],
    now: str,
) -> None:
    """Decide from the search alone: refuse excluded collections, skip unchanged items."""
    db = mirror.db
    excluded = set(source.exclude_collections)
    for d in docs:
        ident = d["identifier"]
        hit = sorted(excluded.intersection(as_list(d.get("collection"))))
        if hit:
            reason = f"excluded collection: {hit[0]}"
            upsert_item(db, endpoint, d, None, None, "refused", reason, now)
            refused[reason] += 1
            continue
        if not _unchanged(mirror, endpoint, d, known.get(ident), counts, refused):
            todo.append(d)


def _unchanged(
    mirror: Mirror,
    endpoint: str,
    d: dict[str, Any],
    prev: sqlite3.Row | None,
    counts: Counter[str],
    refused: Counter[str],
) -> bool:
    """Count an item whose stamp is the one recorded (popularity still moves); else False."""
    stamp = newest_stamp(d)
    if prev is None or stamp is None or prev["source_updated"] != stamp:
        return False
    rereadable = prev["status"] == "refused" and not (prev["reason"] or "").startswith(
        "excluded collection"
    )
    # The policy may have changed since: re-read a refused item if it now passes.
    if rereadable and judge_declared(prev["licence_url"], None, mirror.manifest.licence).allowed:
        return False
    update_popularity(mirror.db, d)
    if prev["source_url"] and not prev["source_url"].startswith(f"{endpoint}/"):
        # The same item at a new endpoint (moved, or a demo server on a new port): its
        # files are fetched from there, nothing is read again.
        repoint_item(mirror.db, prev["id"], d["identifier"], endpoint)
    counts["unchanged"] += 1
    if prev["status"] == "refused":
        refused[prev["reason"] or "refused"] += 1
    elif prev["status"] in ("dark", "empty"):
        counts[prev["status"]] += 1
    return True


def _stamp_from_metadata(d: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """`d` with a stamp from the item's own `item_last_updated` when the search gave none.

    The scrape API is asked for `oai_updatedate`; should it not return one, every item is
    read, and one whose `item_last_updated` is the one recorded is still unchanged."""
    if newest_stamp(d) is not None or not meta.get("item_last_updated"):
        return d
    try:
        when = datetime.fromtimestamp(int(meta["item_last_updated"]), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return d
    return {**d, "oai_updatedate": [when.strftime("%Y-%m-%dT%H:%M:%SZ")]}


def _why(e: BaseException) -> str:
    return failure_reason(e, tries=MAX_RETRIES + 1)


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
    why: list[str],
) -> None:
    """Record one item from its metadata; the caller holds the transaction.

    A failure is counted, and its reason left in `why[0]`."""
    ident = d["identifier"]
    d_stamp = newest_stamp(d)
    try:
        meta = fut.result()
    except Throttled as e:
        reason = why[0] = f"HTTP {e.status} after {MAX_RETRIES + 1} tries"
        log.warning("ia: %s: cannot read its metadata from %s (%s)", ident, endpoint, reason)
        counts["failed"] += 1
        return
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as e:
        reason = why[0] = _why(e)
        log.warning("ia: %s: cannot read its metadata from %s (%s)", ident, endpoint, reason)
        counts["failed"] += 1
        return
    if not meta:
        counts["missing"] += 1
        return
    d = _stamp_from_metadata(d, meta)
    prev = known.get(ident)
    if newest_stamp(d) != d_stamp and _unchanged(mirror, endpoint, d, prev, counts, refused):
        return
    status, reason, licence_id, files, skipped = _judge(mirror, source, meta, counts, refused)
    db = mirror.db
    item_id = upsert_item(db, endpoint, d, meta, licence_id, status, reason, utcnow())
    # An item new to the catalogue has no rows yet: nothing to read back (fewer statements
    # per item keep this writer ahead of 16 readers).
    is_new = ident not in known
    fetched = [] if is_new else fetched_names(db, item_id)
    # Cover images are recorded only beside audio (an item of images alone is empty).
    artwork = choose_artwork(meta.get("files") or []) if files else []
    images = {id(f) for f in artwork}
    files, clashes = name_clashes(files + artwork, fetched)
    for f in files:
        kind = "artwork" if id(f) in images else "audio"
        new = upsert_file(db, endpoint, ident, item_id, f, new_item=is_new, kind=kind)
        counts["files"] += 0 if str(f.get("name") or "") in clashes else new
    if status == "ok":  # playing times and lossy derivatives, for compact tiers
        md = meta.get("metadata") or {}
        record_ia_files(db, endpoint, ident, item_id, list(meta.get("files") or []))
        record_recordings(db, item_id, md, [f for f in files if id(f) not in images])
    for f, why_not in skipped:
        counts["skipped"] += skip_file(db, endpoint, ident, item_id, f, why_not)
    for name, why_not in clashes.items():
        log.warning("ia: %s: %s refused: %s", ident, name, why_not)
        refuse_clash(db, item_id, name, why_not)
    counts["new" if is_new else "updated"] += 1


def _judge(
    mirror: Mirror,
    source: IASource,
    meta: dict[str, Any],
    counts: Counter[str],
    refused: Counter[str],
) -> tuple[str, str | None, str | None, list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """An item's status from its metadata: (status, reason, declared licence id, the files
    selected, the files skipped with why)."""
    md = meta.get("metadata") or {}
    files: list[dict[str, Any]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    if meta.get("is_dark"):
        counts["dark"] += 1
        return "dark", "item is dark", None, files, skipped
    status, reason = "ok", None
    verdict = judge_declared(md.get("licenseurl"), None, mirror.manifest.licence)
    excluded = sorted(set(source.exclude_collections).intersection(as_list(md.get("collection"))))
    if excluded:
        status, reason = "refused", f"excluded collection: {excluded[0]}"
    elif not verdict.allowed:
        status, reason = "refused", verdict.reason or "licence not allowed"
    else:
        files, skipped = choose(meta.get("files") or [], source.files)
        if not files:
            status, reason = "empty", "no selected files"
            counts["empty"] += 1
    if status == "refused":
        refused[reason or "refused"] += 1
    return status, reason, verdict.licence_id, files, skipped
