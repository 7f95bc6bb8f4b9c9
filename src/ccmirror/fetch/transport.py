"""Moving one file's bytes into its `.part` file: http(s) with Range resume, file:, zip:.

Every transport writes only to the `.part` path it is given; verification and the rename
into the store are the caller's (ccmirror.fetch). Errors are `Failed` (give up on this
file for this run, with a short reason) or `Stopped` (the run is being interrupted).
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests
import urllib3

from ccmirror import __version__
from ccmirror.fetch.reasons import failure_reason

log = logging.getLogger("ccmirror.fetch")

CHUNK = 256 * 1024
HTTP_ATTEMPTS = 6
RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 120.0
TIMEOUT = (15, 120)  # connect, read (seconds)

Progress = Callable[[int], None]


class Failed(Exception):
    """This file could not be fetched in this run; `reason` is short and stable."""

    def __init__(self, reason: str, unreachable: bool = False, cause: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # not one answer from the server in any attempt
        self.cause = cause or reason  # the bare cause ("connection refused"), for summaries


class Stopped(Exception):
    """The run is being interrupted; the `.part` file is kept for resuming."""


_local = threading.local()


def _session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.headers["User-Agent"] = f"ccmirror/{__version__} (+mirror of CC audio)"
    return s


def _backoff(attempt: int) -> float:
    return min(0.1 * 2**attempt, 10.0)


def _retry_after(r: requests.Response) -> float | None:
    value = r.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER) if when else None


def _sleep(seconds: float, stop: threading.Event) -> None:
    if stop.wait(seconds):
        raise Stopped()


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
            r = _session().head(url, allow_redirects=True, timeout=TIMEOUT)
            if r.ok and r.headers.get("Content-Length"):
                return int(r.headers["Content-Length"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, requests.RequestException):
        return None
    return None


def download(
    url: str, part: Path, size: int | None, stop: threading.Event, progress: Progress
) -> None:
    """Fill `part` with the bytes behind `url` (resuming what it already holds, for http)."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        _http(url, part, size, stop, progress)
    elif scheme == "file":
        _local_copy(url, part, stop, progress)
    elif scheme == "zip":
        _zip_copy(url, part, stop, progress)
    else:
        raise Failed(f"unsupported URL scheme: {scheme or '(none)'}")


def _copy(src, part: Path, stop: threading.Event, progress: Progress) -> None:  # noqa: ANN001
    with open(part, "wb") as out:
        while chunk := src.read(CHUNK):
            if stop.is_set():
                raise Stopped()
            out.write(chunk)
            progress(len(chunk))


def _local_copy(url: str, part: Path, stop: threading.Event, progress: Progress) -> None:
    path = url2pathname(urlsplit(url).path)
    try:
        with open(path, "rb") as src:
            _copy(src, part, stop, progress)
    except FileNotFoundError:
        raise Failed("source file missing") from None
    except IsADirectoryError:
        raise Failed("source is a directory") from None
    except PermissionError:
        raise Failed("source file not readable") from None


def _zip_copy(url: str, part: Path, stop: threading.Event, progress: Progress) -> None:
    parts = urlsplit(url)
    archive, member = url2pathname(parts.path), unquote(parts.fragment)
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
            _copy(src, part, stop, progress)
    except FileNotFoundError:
        raise Failed("zip archive missing") from None
    except KeyError:
        raise Failed("zip member missing") from None
    except zipfile.BadZipFile as e:
        # Includes a CRC mismatch while reading: the bytes are not what the zip promises.
        raise Failed(f"bad zip data: {e}") from None


def _http(
    url: str, part: Path, size: int | None, stop: threading.Event, progress: Progress
) -> None:
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
            return  # a complete .part from an interrupted run: verify it
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with _session().get(
                url, headers=headers, stream=True, timeout=TIMEOUT, allow_redirects=True
            ) as r:
                answered = True
                if r.status_code == 416:
                    part.unlink(missing_ok=True)  # our partial is not a prefix of theirs
                    last = "HTTP 416"
                    continue
                if r.status_code in RETRY_STATUS:
                    last = f"HTTP {r.status_code}"
                    wait = _retry_after(r)
                    log.info("fetch: %s: %s, retrying", url, last)
                    _sleep(wait if wait is not None else _backoff(attempt), stop)
                    continue
                if r.status_code >= 400:
                    raise Failed(f"HTTP {r.status_code}")
                mode = "wb"
                if r.status_code == 206:
                    m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != have:
                        part.unlink(missing_ok=True)
                        last = "bad Content-Range"
                        continue
                    mode = "ab"
                got = 0
                with open(part, mode) as out:
                    # read1: whatever has arrived, so a reset loses nothing already received.
                    while chunk := r.raw.read1(CHUNK, decode_content=True):
                        if stop.is_set():
                            raise Stopped()
                        out.write(chunk)
                        got += len(chunk)
                        progress(len(chunk))
                length = r.headers.get("Content-Length")
                if length and length.isdigit() and got < int(length):
                    last = "connection closed mid-body"  # resume from what arrived
                    _sleep(_backoff(attempt), stop)
                    continue
                return
        except (
            urllib3.exceptions.HTTPError,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as e:
            last = _reason(e)
            log.info("fetch: %s: %s, resuming", url, last)
            _sleep(_backoff(attempt), stop)
    raise Failed(f"{last} after {HTTP_ATTEMPTS} tries", unreachable=not answered, cause=last)


def _reason(e: BaseException) -> str:
    return failure_reason(e)
