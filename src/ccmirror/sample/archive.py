"""A loopback HTTP server that speaks the Internet Archive API as `internetarchive` calls it.

For tests, benchmarks and `ccmirror demo`; nothing in the product talks to it except through
a manifest `endpoint`. It binds 127.0.0.1 on a free port and runs in a thread.

    with IAServer(latency=0.0) as ia:
        ia.add_item("album-1", {"title": "A", "collection": ["netlabels"],
                                "licenseurl": "https://creativecommons.org/licenses/by/4.0/"},
                    {"01.flac": Path("01.flac"), "cover.jpg": b"...",
                     "02.mp3": {"data": b"...", "format": "VBR MP3"}},
                    downloads=120)
        ia.fault("429", path="/metadata/album-1", times=1, retry_after=1)
        ... endpoint = ia.url ...
        ia.requests      # [Request(method, path, range), ...] in arrival order
        ia.max_in_flight # highest number of requests served at once

Changing the archive: `add_item` again (replaces, bumps the update stamp), `touch(id,
**metadata)` (edits, bumps), `set_dark(id)`, `forget(id)` (kept in search, `{}` metadata: a
stale index); `file_bytes(id, name)` gives what is served; `clear_faults()`;
`hidden_fields = {"oai_updatedate"}` leaves a field out of scrape results.
`IAServer(latency=0.05, page_size=100, bandwidth=200_000, port=0)`: per-request delay,
scrape page size cap, a per-response byte rate for file bodies (to interrupt a download
midway), and the port (0: a free one). Stamps never come from the clock: `add_item(...,
updated=)` or derived from the item's content, so the same archive serves the same stamps.

Endpoints:
- POST/GET `/services/search/v1/scrape?q=&fields=&count=&cursor=&total_only=`: a small
  query language (`field:value`, `field:(a OR b)`, `AND`, `OR`, `NOT`, parentheses, implicit
  AND, `*` wildcards, quoted values), `fields` honoured (identifier always), `count` (100 to
  10000, as archive.org requires) capped by `page_size`, an opaque `cursor` that is absent on the last page, and a `total` that
  counts every hit, the same on every page. Results are ordered by identifier.
  Search fields: every metadata key, plus `downloads`, `month`, `week`, `item_size`,
  `oai_updatedate` (list of ISO stamps, newest last) and `item_last_updated`.
- GET `/metadata/<id>`: the item document (`files`, `metadata`, `item_last_updated`, ...),
  `{}` for a missing item, `{"is_dark": true, ...}` (no metadata, no files) for a dark one.
- GET/HEAD `/download/<id>/<name>`: 302 to `/serve/<id>/<name>` (the "data server"), which
  answers 200 or, with `Range: bytes=a-[b]`, 206 with Content-Range (416 when unsatisfiable).

Quirks of the real service, each off by default: `total_skew = n` (the scrape's `total`
is n more or fewer than it delivers, as on a long scrape while the index changes),
`ignore_cursor = True` (every page is page 1 again, with a cursor),
`metadata_errors[id] = "..."` (`/metadata/id` answers 200 `{"error": "..."}`),
`set_updates(id, stamps)` (an unsorted, repeated `oai_updatedate` list), `data_host =
"localhost"` (`/download/` redirects to that host name: another host than the API's), and
a file given `"private": "true"` (listed, but its download answers 403).

Faults (`fault(kind, path=glob, times=n)`), consumed in order of registration:
`"429"` (with Retry-After), `"503"`, `"500"`, `"reset"` (headers and half the body, then a
TCP reset; on non-file paths: reset before any answer), `"wrong"` (same length, altered
bytes), `"hang"` is not offered: tests never wait on timeouts.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from ccmirror.sample.handler import Handler, QuietServer, Request
from ccmirror.sample.query import matches, parse_query

__all__ = ["FORMATS", "IAServer", "Request"]

FORMATS = {
    ".flac": "Flac",
    ".mp3": "VBR MP3",
    ".ogg": "Ogg Vorbis",
    ".opus": "Opus",
    ".wav": "WAVE",
    ".aiff": "AIFF",
    ".m4a": "Apple Lossless Audio",
    ".jpg": "JPEG",
    ".png": "PNG",
    ".txt": "Text",
    ".xml": "Metadata",
}


@dataclass
class _File:
    name: str
    data: bytes
    meta: dict[str, Any]


@dataclass
class _Item:
    identifier: str
    metadata: dict[str, Any]
    files: list[_File]
    dark: bool
    stats: dict[str, Any]
    updates: list[str] = field(default_factory=list)  # ISO stamps, newest last
    last_updated: int = 0
    gone: bool = False  # still in the search index, but /metadata answers {}


@dataclass
class _Fault:
    kind: str
    path: str
    times: int | None
    retry_after: int | None
    after: int = 0  # matching requests let through before the fault starts


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Derived stamps fall in 2020 (never "now"), so the same archive built twice, in two
# processes, serves the same stamps: a second harvest sees every item unchanged.
_EPOCH = 1577836800  # 2020-01-01T00:00:00Z
_SPAN = 365 * 86400


def _derived_stamp(identifier: str, metadata: Mapping[str, Any], files: list[_File]) -> int:
    h = hashlib.sha1(identifier.encode())
    h.update(json.dumps(metadata, sort_keys=True, default=str).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + hashlib.sha1(f.data).digest())
    return _EPOCH + int.from_bytes(h.digest()[:4], "big") % _SPAN


def _unix(value: datetime | int | float | str) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    return int(value)


# --- the server -----------------------------------------------------------------------------


class IAServer:
    """The loopback IA API. See the module docstring for the endpoints and faults."""

    def __init__(
        self,
        latency: float = 0.0,
        page_size: int = 10000,
        bandwidth: float | None = None,
        port: int = 0,
    ) -> None:
        self.port = port  # 0: a free port, chosen at start()
        self.latency = latency  # seconds added to every request
        self.page_size = page_size  # scrape results per page at most
        self.bandwidth = bandwidth  # bytes/second per file response (None: unthrottled)
        self.items: dict[str, _Item] = {}
        # Search fields the scrape API leaves out (e.g. {"oai_updatedate"}: a harvester
        # must cope when archive.org does not return a field).
        self.hidden_fields: set[str] = set()
        # Quirks of the real service (see the module docstring, "Quirks").
        self.total_skew = 0  # added to the scrape's `total` (index churn)
        self.ignore_cursor = False  # every scrape page is page 1 again, with its cursor
        self.metadata_errors: dict[str, str] = {}  # id -> 200 {"error": ...}, no metadata
        self.data_host: str | None = None  # /download/ redirects to this host name
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content

    def add_item(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        files: Mapping[str, bytes | Path | Mapping[str, Any]],
        dark: bool = False,
        *,
        downloads: int = 0,
        month: int = 0,
        week: int = 0,
        updated: datetime | int | str | None = None,
    ) -> None:
        """Add or replace an item; replacing bumps its last-update stamp.

        The stamp (`oai_updatedate`, `item_last_updated`, file mtimes) is `updated` (a
        datetime, unix seconds or ISO text) or else derived from the item's content, never
        the clock; a replacement's stamp is always later than the one it replaces.

        `files` maps a name to its bytes, a Path to read, or a dict with `data` (bytes) or
        `path` plus extra IA file metadata overriding the computed one (format, source,
        md5, size, ...). Sizes and checksums are computed from the bytes unless overridden.
        """
        built = []
        for name, spec in files.items():
            extra: dict[str, Any] = {}
            if isinstance(spec, Mapping):
                extra = {k: v for k, v in spec.items() if k not in ("data", "path")}
                data = spec["data"] if "data" in spec else Path(spec["path"]).read_bytes()
            elif isinstance(spec, Path):
                data = spec.read_bytes()
            else:
                data = bytes(spec)
            meta = {
                "name": name,
                "source": "original",
                "format": FORMATS.get(Path(name).suffix.lower(), "Unknown"),
                "size": str(len(data)),
                "md5": hashlib.md5(data).hexdigest(),
                "sha1": hashlib.sha1(data).hexdigest(),
                "crc32": f"{zlib.crc32(data):08x}",
            }
            meta.update(extra)
            built.append(_File(name, data, meta))
        md = {"identifier": identifier, "mediatype": "audio", **dict(metadata)}
        if isinstance(md.get("collection"), str):
            md["collection"] = [md["collection"]]
        unix = _unix(updated) if updated is not None else _derived_stamp(identifier, md, built)
        with self._lock:
            old = self.items.get(identifier)
            if old is not None:
                unix = max(unix, old.last_updated + 1)  # strictly later than what it replaces
            for f in built:
                f.meta.setdefault("mtime", str(unix))
            stamp = _iso(unix)
            item = _Item(
                identifier,
                md,
                built,
                dark,
                {"downloads": downloads, "month": month, "week": week},
                (old.updates if old else []) + [stamp],
                unix,
            )
            self.items[identifier] = item

    def touch(self, identifier: str, **metadata: Any) -> None:
        """Change an item's metadata (or nothing) and bump its last-update stamp."""
        with self._lock:
            item = self.items[identifier]
            item.metadata.update(metadata)
            # One second later: deterministic, and strictly increasing.
            unix = item.last_updated + 1
            stamp = _iso(unix)
            item.updates.append(stamp)
            item.last_updated = unix

    def forget(self, identifier: str) -> None:
        """Delete an item but leave it in the search index (a stale index, as IA has)."""
        with self._lock:
            self.items[identifier].gone = True

    def set_dark(self, identifier: str, dark: bool = True) -> None:
        with self._lock:
            self.items[identifier].dark = dark

    def set_updates(self, identifier: str, stamps: list[str]) -> None:
        """Serve `stamps` as the item's `oai_updatedate` as given: unsorted, repeated, as
        archive.org's index has them (the newest is still the item's last update)."""
        with self._lock:
            self.items[identifier].updates = list(stamps)

    def file_bytes(self, identifier: str, name: str) -> bytes:
        return next(f.data for f in self.items[identifier].files if f.name == name)

    def fault(
        self,
        kind: str,
        path: str = "*",
        times: int | None = 1,
        retry_after: int | None = 1,
        after: int = 0,
    ) -> None:
        """Inject a fault on requests whose unquoted path matches the glob `path`.

        kind: "429" (Retry-After: retry_after; None sends none), "500", "503", "reset",
        "wrong". times: how many requests it hits (None: every one until clear_faults()).
        after: how many matching requests pass untouched first.
        """
        if kind not in ("429", "500", "503", "reset", "wrong"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, path, times, retry_after, after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and fnmatch.fnmatchcase(path, f.path):
                    if f.after > 0:
                        f.after -= 1
                        continue
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("IAServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> IAServer:
        if self._httpd is None:
            handler = type("Handler", (Handler,), {"ia": self})
            self._httpd = QuietServer(("127.0.0.1", self.port), handler)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name="sample-archive", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> IAServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- documents

    def search_doc(self, item: _Item) -> dict[str, Any]:
        size = sum(len(f.data) for f in item.files)
        return {
            **item.metadata,
            **item.stats,
            "item_size": size,
            "oai_updatedate": list(item.updates),
            "item_last_updated": item.last_updated,
        }

    def metadata_doc(self, identifier: str) -> dict[str, Any]:
        if identifier in self.metadata_errors:
            return {"error": self.metadata_errors[identifier]}
        item = self.items.get(identifier)
        if item is None or item.gone:
            return {}
        base = {
            "created": item.last_updated,
            "d1": "127.0.0.1",
            "dir": f"/srv/{identifier}",
            "server": "127.0.0.1",
            "uniq": zlib.crc32(identifier.encode()) % 10**9,
            "workable_servers": ["127.0.0.1"],
            "item_last_updated": item.last_updated,
        }
        if item.dark:
            return {**base, "is_dark": True}
        return {
            **base,
            "files": [dict(f.meta) for f in item.files],
            "files_count": len(item.files),
            "item_size": sum(len(f.data) for f in item.files),
            "metadata": dict(item.metadata),
        }

    def scrape(self, params: Mapping[str, str]) -> dict[str, Any]:
        query = params.get("q", "")
        try:
            tree = parse_query(query)
        except (ValueError, IndexError) as e:
            return {"error": f"invalid query: {e}"}
        with self._lock:
            docs = [self.search_doc(i) for i in self.items.values()]
        hits = sorted((d for d in docs if matches(tree, d)), key=lambda d: d["identifier"])
        if params.get("total_only") == "true":
            return {"total": len(hits)}
        after = ""
        if params.get("cursor") and not self.ignore_cursor:
            try:
                after = base64.urlsafe_b64decode(params["cursor"].encode()).decode()
            except ValueError:
                return {"error": "invalid cursor"}
        # The total counts every hit, paged or not, so it is the same on every page.
        total = max(0, len(hits) + self.total_skew)
        rest = [d for d in hits if d["identifier"] > after]
        try:
            count = int(params.get("count", 10000))
        except ValueError:
            return {"error": "invalid count"}
        if not 100 <= count <= 10000:  # as archive.org: a page is 100 to 10000 results
            return {"error": "count must be between 100 and 10000"}
        count = max(1, min(count, self.page_size))
        page, more = rest[:count], len(rest) > count
        fields = [f for f in params.get("fields", "identifier").split(",") if f]
        if "identifier" not in fields:
            fields.insert(0, "identifier")
        items = [{f: d[f] for f in fields if f in d and f not in self.hidden_fields} for d in page]
        out: dict[str, Any] = {"items": items, "count": len(items), "total": total}
        if more:
            out["cursor"] = base64.urlsafe_b64encode(page[-1]["identifier"].encode()).decode()
        return out
