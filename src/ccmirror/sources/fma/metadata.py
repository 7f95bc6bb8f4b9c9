"""Reading the FMA dataset's `raw_tracks.csv`, streaming, from the zip or a bare file.

The real `fma_metadata.zip` is 342 MiB with bzip2-compressed members under
`fma_metadata/`; it is never unpacked: the member is decompressed as it is read.
A metadata URL is first downloaded (atomically, conditionally) into
`<data_dir>/sources/fma/`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ccmirror import __version__
from ccmirror.errors import SourceUnreachable, UnsafeName, UsageError
from ccmirror.fsutil import CHUNK, atomic_write_json, fsync_dir, fsync_file, safe_relpath

log = logging.getLogger("ccmirror.sources.fma")

MEMBER = "raw_tracks.csv"
HTTP_TIMEOUT = 60
HTTP_ATTEMPTS = 3


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def local_metadata(metadata: str, data_dir: Path) -> Path:
    """The local file to read: the manifest's path, or the URL's download."""
    if not _is_url(metadata):
        return Path(metadata)
    return download_metadata(metadata, data_dir / "sources" / "fma")


def download_metadata(url: str, folder: Path) -> Path:
    """Download `url` into `folder` atomically; a conditional GET skips an unchanged file."""
    # Here: a harvest of a local file does not load the HTTP client.
    from urllib.error import HTTPError, URLError

    name = urllib.parse.unquote(Path(urllib.parse.urlsplit(url).path).name) or "fma_metadata.zip"
    try:
        safe_relpath(name)
    except UnsafeName as e:
        raise UsageError(f"FMA metadata URL {url}: {e}") from None
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    sidecar = folder / f"{name}.http.json"
    headers = {"User-Agent": f"ccmirror/{__version__}"}
    if final.exists() and sidecar.exists():
        try:
            seen = json.loads(sidecar.read_text("utf-8"))
        except (OSError, ValueError):
            seen = {}
        if seen.get("url") == url:
            if seen.get("etag"):
                headers["If-None-Match"] = seen["etag"]
            if seen.get("last_modified"):
                headers["If-Modified-Since"] = seen["last_modified"]
    last: Exception | None = None
    for attempt in range(HTTP_ATTEMPTS):
        if attempt:
            time.sleep(min(4.0, 0.5 * 2**attempt))
        try:
            return _get(url, headers, final, sidecar)
        except HTTPError as e:
            if e.code == 304:
                log.info("FMA metadata %s unchanged since the last download", url)
                return final
            last = e
            if e.code < 500 and e.code != 429:
                break
        except (URLError, OSError) as e:
            last = e
    if isinstance(last, HTTPError):
        why: object = f"HTTP {last.code} {last.reason}"
    else:
        why = getattr(last, "reason", None) or last
    raise SourceUnreachable(f"cannot download FMA metadata {url}: {why}")


def _get(url: str, headers: dict[str, str], final: Path, sidecar: Path) -> Path:
    from email.utils import formatdate
    from urllib.request import Request, urlopen

    part = final.with_name(final.name + ".part")
    req = Request(url, headers=headers)
    with urlopen(req, timeout=HTTP_TIMEOUT) as resp:
        expected = resp.headers.get("Content-Length")
        got = 0
        with open(part, "wb") as out:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
        if expected is not None and expected.isdigit() and int(expected) != got:
            part.unlink(missing_ok=True)
            raise OSError(f"short download: {got} of {expected} bytes")
        etag = resp.headers.get("ETag")
        modified = resp.headers.get("Last-Modified")
    fsync_file(part)
    os.replace(part, final)
    fsync_dir(final.parent)
    atomic_write_json(
        sidecar,
        {
            "url": url,
            "etag": etag,
            "last_modified": modified,
            "downloaded_at": formatdate(usegmt=True),
            "size": got,
        },
    )
    log.info("downloaded FMA metadata %s (%d bytes)", url, got)
    return final


@contextmanager
def open_raw_tracks(path: Path) -> Iterator[tuple[str, TextIO]]:
    """Yield (display name, text stream) of raw_tracks.csv in a zip or a bare CSV file."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise UsageError(f"cannot read FMA metadata {path}: {e.strerror or e}") from None
    if not is_zip:
        try:
            f = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        except OSError as e:
            raise UsageError(f"cannot read FMA metadata {path}: {e.strerror or e}") from None
        with f:
            yield str(path), f
        return
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UsageError(f"FMA metadata {path} is not a readable zip: {e}") from None
    with zf:
        member = _find_member(zf)
        if member is None:
            raise UsageError(
                f"FMA metadata {path} has no {MEMBER} (expected fma_metadata/{MEMBER})"
            )
        try:
            raw = zf.open(member)
        except (NotImplementedError, zipfile.BadZipFile, RuntimeError) as e:
            raise UsageError(f"cannot open {path}#{member}: {e}") from None
        with io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
            yield f"{path}#{member}", text


ALBUMS_MEMBER = "raw_albums.csv"
ALBUM_COLUMNS = ("album_date_released", "album_producer", "album_engineer")


def read_albums(path: Path) -> dict[str, dict[str, str]]:
    """album_id -> its release date, producer and engineer, from raw_albums.csv in the
    same zip (beside raw_tracks.csv). A bare CSV, a zip without the member, or an
    unreadable member gives {}: tracks keep what raw_tracks.csv says."""
    try:
        if not zipfile.is_zipfile(path):
            return {}
        with zipfile.ZipFile(path) as zf:
            member = _find_member(zf, ALBUMS_MEMBER)
            if member is None:
                return {}
            with io.TextIOWrapper(
                zf.open(member), encoding="utf-8", errors="replace", newline=""
            ) as text:
                return _album_rows(csv.DictReader(text))
    except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError, csv.Error) as e:
        log.warning(
            "FMA metadata %s: %s unreadable (%s); album facts left out", path, ALBUMS_MEMBER, e
        )
        return {}


def _album_rows(reader: csv.DictReader) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in reader:
        album_id = (row.get("album_id") or "").strip()
        if not album_id.isdigit():
            continue
        facts = {c: (row.get(c) or "").strip() for c in ALBUM_COLUMNS}
        if any(facts.values()):
            out[album_id] = facts
    return out


def identity(path: Path) -> str:
    """What the harvest reads of the metadata, identified without reading it: in a zip,
    raw_tracks.csv's and raw_albums.csv's entries in its central directory (name,
    CRC-32 and size of the content, compressed size, method, date); a bare CSV, a digest
    of its bytes (blake2b). Part of the whole-input skip's key."""
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                return "csv:" + hashlib.file_digest(f, "blake2b").hexdigest()
        with zipfile.ZipFile(path) as zf:
            parts = []
            for name in (MEMBER, ALBUMS_MEMBER):
                member = _find_member(zf, name)
                i = zf.getinfo(member) if member is not None else None
                parts.append(
                    None
                    if i is None
                    else (i.filename, i.CRC, i.file_size, i.compress_size, i.compress_type)
                    + (i.date_time,)
                )
            return "zip:" + repr(parts)
    except (OSError, zipfile.BadZipFile) as e:
        raise UsageError(f"cannot read FMA metadata {path}: {e}") from None


def _find_member(zf: zipfile.ZipFile, member: str = MEMBER) -> str | None:
    names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
    if not names:
        return None
    # The real layout first, then the shallowest.
    names.sort(key=lambda n: (n != f"fma_metadata/{member}", n.count("/"), n))
    return names[0]
