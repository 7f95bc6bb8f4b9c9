"""Moving one file's bytes into its `.part` file: http(s) with Range resume, file:, zip:.

Every transport writes only to the `.part` path it is given, through a `Sink` that hashes
the bytes as they pass (md5, sha1, sha256: the file is never read a second time), and
returns what landed; verification and the rename into the store are the caller's
(ccmirror.fetch). Errors are `Failed` (give up on this file for this run, with a short
reason) or `Stopped` (the run is being interrupted).

HTTP goes through one connection pool per host, shared by the download threads and kept
alive between files (at most MAX_PER_HOST connections to a host); redirects are followed
here, on the pooled connection when they stay on the same host (archive.org's /download/
302 does not cost a new connection). Requests to a host pass its `Gate` (polite.py).
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import re
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

import urllib3

from ccmirror import __version__
from ccmirror.fetch.polite import MAX_PER_HOST, Gate, Stopped
from ccmirror.fetch.reasons import failure_reason
from ccmirror.fetch.sink import WRITE_SIZE, Landed, Sink

__all__ = ["Failed", "Landed", "Stopped", "download", "source_size"]

log = logging.getLogger("ccmirror.fetch")

CHUNK = 256 * 1024  # most one socket read asks for; the sink gathers WRITE_SIZE writes
HTTP_ATTEMPTS = 6
RETRY_STATUS = {429, 500, 502, 503, 504}
SLOW_DOWN = {429, 503}  # the host asks for fewer requests: its Gate slows down
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 10
MAX_RETRY_AFTER = 120.0
TIMEOUT = urllib3.Timeout(connect=15, read=120)
POOL_WAIT = 120  # seconds a request waits for one of its host's pooled connections
USER_AGENT = f"ccmirror/{__version__} (+mirror of CC audio)"

Progress = Callable[[int], None]


def url2pathname(path: str) -> str:
    """A file: URL's path as a local path (POSIX: urllib.request's, without importing it)."""
    return unquote(path)


# Network faults of one attempt (resumed); OSError is not here: a local write error
# (a full disk) must reach the caller.
_NET_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException)


class Failed(Exception):
    """This file could not be fetched in this run; `reason` is short and stable."""

    def __init__(self, reason: str, unreachable: bool = False, cause: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # not one answer from the server in any attempt
        self.cause = cause or reason  # the bare cause ("connection refused"), for summaries


_lock = threading.Lock()
_pools: urllib3.PoolManager | None = None


def _pool() -> urllib3.PoolManager:
    """The process's connection pools: one per host, keep-alive, thread-safe."""
    global _pools
    with _lock:
        if _pools is None:
            _pools = urllib3.PoolManager(
                num_pools=64,
                maxsize=MAX_PER_HOST,
                block=True,  # a 17th request to one host waits for a pooled connection
                retries=False,
                timeout=TIMEOUT,
                headers={"User-Agent": USER_AGENT},
            )
        return _pools


def _backoff(attempt: int) -> float:
    return min(0.1 * 2**attempt, 10.0)


def _retry_after(r: urllib3.BaseHTTPResponse) -> float | None:
    value = r.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


def _sleep(seconds: float, stop: threading.Event) -> None:
    if stop.wait(seconds):
        raise Stopped()


def _open(
    url: str, headers: dict[str, str], gate: Gate, stop: threading.Event, method: str = "GET"
) -> tuple[urllib3.BaseHTTPResponse, str]:
    """The final answer after `url`'s redirects, and its URL; body unread (the caller
    releases it)."""
    for _ in range(MAX_REDIRECTS + 1):
        host = urlsplit(url).netloc
        with gate.slot(host, stop):
            r = _pool().request(
                method, url, headers=headers, redirect=False, preload_content=False,
                pool_timeout=POOL_WAIT,
            )  # fmt: skip
        location = r.headers.get("Location")
        if r.status not in REDIRECTS or not location:
            return r, url
        r.drain_conn()  # the connection goes back to the pool for the next request
        r.release_conn()
        url = urljoin(url, location)
    raise Failed("too many redirects")


def source_size(url: str) -> int | None:
    """The size of the bytes behind `url`, without reading them (None if unknown)."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "file":
            return os.stat(url2pathname(parts.path)).st_size
        if parts.scheme == "zip":
            with zipfile.ZipFile(url2pathname(parts.path)) as zf:
                return zf.getinfo(unquote(parts.fragment)).file_size
        if parts.scheme in ("http", "https"):
            r, _ = _open(url, {}, Gate(), threading.Event(), method="HEAD")
            r.release_conn()
            length = r.headers.get("Content-Length")
            if 200 <= r.status < 300 and length and length.isdigit():
                return int(length)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, Failed, Stopped, *_NET_ERRORS):
        return None
    return None


def download(
    url: str,
    part: Path,
    size: int | None,
    stop: threading.Event,
    progress: Progress,
    gate: Gate | None = None,
    place: AbstractContextManager[object] | None = None,
) -> Landed:
    """Fill `part` with the bytes behind `url` (resuming what it already holds, for http);
    return its size and digests. `place` is held (entered) from the first request until
    the last byte has arrived: the tail's write and hashing happen after it is let go."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return _http(url, part, size, stop, progress, gate or Gate(), place or nullcontext())
    if scheme == "file":
        return _local_copy(url, part, stop, progress)
    if scheme == "zip":
        return _zip_copy(url, part, stop, progress)
    raise Failed(f"unsupported URL scheme: {scheme or '(none)'}")


def _copy(
    src: BinaryIO, size: int, part: Path, stop: threading.Event, progress: Progress
) -> Landed:
    sink = Sink(part)
    sink.begin(0, expect=size)
    try:
        while chunk := src.read(WRITE_SIZE):
            if stop.is_set():
                raise Stopped()
            sink.write(chunk)
            progress(len(chunk))
    finally:
        sink.close()
    return sink.landed()


def _local_copy(url: str, part: Path, stop: threading.Event, progress: Progress) -> Landed:
    path = url2pathname(urlsplit(url).path)
    try:
        with open(path, "rb") as src:
            return _copy(src, os.fstat(src.fileno()).st_size, part, stop, progress)
    except FileNotFoundError:
        raise Failed("source file missing") from None
    except IsADirectoryError:
        raise Failed("source is a directory") from None
    except PermissionError:
        raise Failed("source file not readable") from None


def _zip_copy(url: str, part: Path, stop: threading.Event, progress: Progress) -> Landed:
    parts = urlsplit(url)
    archive, member = url2pathname(parts.path), unquote(parts.fragment)
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
            return _copy(src, zf.getinfo(member).file_size, part, stop, progress)
    except FileNotFoundError:
        raise Failed("zip archive missing") from None
    except KeyError:
        raise Failed("zip member missing") from None
    except zipfile.BadZipFile as e:
        # Includes a CRC mismatch while reading: the bytes are not what the zip promises.
        raise Failed(f"bad zip data: {e}") from None


def _body(
    r: urllib3.BaseHTTPResponse, sink: Sink, stop: threading.Event, progress: Progress
) -> int:
    """Stream the body into `sink`; the bytes that arrived before a fault are kept."""
    got = 0
    try:
        # read1: whatever has arrived, so a reset loses nothing already received.
        while chunk := r.read1(CHUNK):
            if stop.is_set():
                raise Stopped()
            sink.write(chunk)
            got += len(chunk)
            progress(len(chunk))
    except BaseException:
        sink.flush()  # what arrived is kept for the resume
        raise
    return got  # the tail stays gathered: written and hashed after the place is let go


def _http(
    url: str,
    part: Path,
    size: int | None,
    stop: threading.Event,
    progress: Progress,
    gate: Gate,
    place: AbstractContextManager[object],
) -> Landed:
    sink = Sink(part)
    try:
        with place:
            _attempts(url, part, size, stop, progress, gate, sink)
        return sink.landed()
    finally:
        sink.close()


def _attempts(
    url: str,
    part: Path,
    size: int | None,
    stop: threading.Event,
    progress: Progress,
    gate: Gate,
    sink: Sink,
) -> None:
    """Request until the whole body has arrived in `sink` (resuming), or Failed."""
    last = "no attempt"
    answered = False
    for attempt in range(HTTP_ATTEMPTS):
        if stop.is_set():
            raise Stopped()
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        if size is not None and have == size and have > 0:
            sink.begin(have)  # a complete .part from an interrupted run: hash, verify
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            outcome = _attempt(url, part, have, headers, sink, stop, progress, gate, attempt)
        except _NET_ERRORS as e:
            last = _reason(e)
            log.info("fetch: %s: %s, resuming", url, last)
            _sleep(_backoff(attempt), stop)
            continue
        answered = True
        if outcome is None:
            return
        last, pause = outcome
        if pause is not None:
            _sleep(pause, stop)
    raise Failed(f"{last} after {HTTP_ATTEMPTS} tries", unreachable=not answered, cause=last)


def _attempt(
    url: str,
    part: Path,
    have: int,
    headers: dict[str, str],
    sink: Sink,
    stop: threading.Event,
    progress: Progress,
    gate: Gate,
    attempt: int,
) -> tuple[str, float | None] | None:
    """One request: None when the whole body landed, else (why, pause before the next)."""
    r, final = _open(url, headers, gate, stop)
    try:
        result = _answer(r, final, part, have, sink, stop, progress, gate, attempt)
    except BaseException:
        r.close()  # a body left half read: never hand that connection to the next request
        r.release_conn()
        raise
    r.drain_conn()  # an error page's few bytes: the connection stays alive for the next
    r.release_conn()
    return result


def _answer(
    r: urllib3.BaseHTTPResponse,
    url: str,
    part: Path,
    have: int,
    sink: Sink,
    stop: threading.Event,
    progress: Progress,
    gate: Gate,
    attempt: int,
) -> tuple[str, float | None] | None:
    host = urlsplit(url).netloc  # the host that answered (after redirects)
    if r.status == 416:
        part.unlink(missing_ok=True)  # our partial is not a prefix of theirs
        return "HTTP 416", None
    if r.status in RETRY_STATUS:
        wait = _retry_after(r)
        pause = wait if wait is not None else _backoff(attempt)
        log.info("fetch: %s: HTTP %d, retrying", url, r.status)
        if r.status in SLOW_DOWN:
            gate.slow_down(host, pause)  # the whole host waits, not only this file
            return f"HTTP {r.status}", None
        return f"HTTP {r.status}", pause
    if r.status >= 400:
        raise Failed(f"HTTP {r.status}")
    gate.answered(host)
    start = 0
    if r.status == 206:
        m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != have:
            part.unlink(missing_ok=True)
            return "bad Content-Range", None
        start = have
    length = r.headers.get("Content-Length")
    known = int(length) if length and length.isdigit() else None
    sink.begin(start, expect=None if known is None else start + known)
    got = _body(r, sink, stop, progress)
    if known is not None and got < known:
        sink.flush()
        return "connection closed mid-body", _backoff(attempt)  # resume from what arrived
    return None


def _reason(e: BaseException) -> str:
    return failure_reason(e)
