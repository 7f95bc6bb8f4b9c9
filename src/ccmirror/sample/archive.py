"""A loopback HTTP server that speaks the Internet Archive API as `internetarchive` calls it.

`ccmirror demo` serves its sample from it; nothing in the product talks to it except through
a manifest `endpoint`. It binds 127.0.0.1 on a free port and runs in a thread.

    with IAServer() as ia:
        ia.add_item("album-1", {"title": "A", "collection": ["netlabels"],
                                "licenseurl": "https://creativecommons.org/licenses/by/4.0/"},
                    {"01.flac": Path("01.flac"), "cover.jpg": b"...",
                     "02.mp3": {"data": b"...", "format": "VBR MP3"}},
                    downloads=120)
        ... endpoint = ia.url ...

`add_item` again replaces an item and bumps its update stamp. Stamps never come from the
clock: `add_item(..., updated=)` or derived from the item's content, so the same archive
serves the same stamps. `IAServer(port=0)`: the port (0: a free one).

Endpoints:
- POST/GET `/services/search/v1/scrape?q=&fields=&count=&cursor=&total_only=`: a small
  query language (`field:value`, `field:(a OR b)`, `AND`, `OR`, `NOT`, parentheses, implicit
  AND, `*` wildcards, quoted values), `fields` honoured (identifier always), `count` (100 to
  10000, as archive.org requires) capped by `page_size`, an opaque `cursor` that is absent on
  the last page, and a `total` that counts every hit, the same on every page. Results are
  ordered by identifier. Search fields: every metadata key, plus `downloads`, `month`,
  `week`, `item_size`, `oai_updatedate` (list of ISO stamps, newest last) and
  `item_last_updated`.
- GET `/metadata/<id>`: the item document (`files`, `metadata`, `item_last_updated`, ...),
  `{}` for a missing item.
- GET/HEAD `/download/<id>/<name>`: 302 to `/serve/<id>/<name>` (the "data server"), which
  answers 200 or, with `Range: bytes=a-[b]`, 206 with Content-Range (416 when unsatisfiable).

Hook points, for a server that behaves worse (tests/iafake.py adds faults and the real
service's quirks with them): `handler_class` (a `handler.Handler` subclass: `enter`,
`leave`, `intercept`, `location`, `send_body`), `page_size`, and the documents the handler
asks for, each a method: `scrape(params)`, `metadata_doc(id)`, `file_data(id, name)`.
"""

from __future__ import annotations

import base64
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

from ccmirror.sample.handler import Handler, QuietServer
from ccmirror.sample.query import matches, parse_query

__all__ = ["FORMATS", "IAServer", "ServedFile", "ServedItem"]

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
class ServedFile:
    name: str
    data: bytes
    meta: dict[str, Any]


@dataclass
class ServedItem:
    identifier: str
    metadata: dict[str, Any]
    files: list[ServedFile]
    stats: dict[str, Any]
    updates: list[str] = field(default_factory=list)  # ISO stamps, newest last
    last_updated: int = 0


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Derived stamps fall in 2020 (never "now"), so the same archive built twice, in two
# processes, serves the same stamps: a second harvest sees every item unchanged.
_EPOCH = 1577836800  # 2020-01-01T00:00:00Z
_SPAN = 365 * 86400


def _derived_stamp(identifier: str, metadata: Mapping[str, Any], files: list[ServedFile]) -> int:
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


def _served_file(name: str, spec: bytes | Path | Mapping[str, Any]) -> ServedFile:
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
    return ServedFile(name, data, meta)


# --- the server -----------------------------------------------------------------------------


class IAServer:
    """The loopback IA API. See the module docstring for the endpoints and hook points."""

    handler_class: type[Handler] = Handler
    page_size = 10000  # scrape results per page at most (archive.org's own cap)

    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: a free port, chosen at start()
        self.items: dict[str, ServedItem] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content

    def add_item(
        self,
        identifier: str,
        metadata: Mapping[str, Any],
        files: Mapping[str, bytes | Path | Mapping[str, Any]],
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
        built = [_served_file(name, spec) for name, spec in files.items()]
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
            stats = {"downloads": downloads, "month": month, "week": week}
            updates = (old.updates if old else []) + [iso(unix)]
            self.items[identifier] = ServedItem(identifier, md, built, stats, updates, unix)

    def find_file(self, identifier: str, name: str) -> ServedFile | None:
        item = self.items.get(identifier)
        return next((f for f in item.files if f.name == name), None) if item else None

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("IAServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> IAServer:
        if self._httpd is None:
            handler = type("Handler", (self.handler_class,), {"ia": self})
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

    # -- documents (what the handler serves)

    def search_doc(self, item: ServedItem) -> dict[str, Any]:
        size = sum(len(f.data) for f in item.files)
        return {
            **item.metadata,
            **item.stats,
            "item_size": size,
            "oai_updatedate": list(item.updates),
            "item_last_updated": item.last_updated,
        }

    def server_doc(self, item: ServedItem) -> dict[str, Any]:
        """The part of `/metadata/<id>` that says where the item lives."""
        identifier = item.identifier
        return {
            "created": item.last_updated,
            "d1": "127.0.0.1",
            "dir": f"/srv/{identifier}",
            "server": "127.0.0.1",
            "uniq": zlib.crc32(identifier.encode()) % 10**9,
            "workable_servers": ["127.0.0.1"],
            "item_last_updated": item.last_updated,
        }

    def metadata_doc(self, identifier: str) -> dict[str, Any]:
        item = self.items.get(identifier)
        if item is None:
            return {}
        return {
            **self.server_doc(item),
            "files": [dict(f.meta) for f in item.files],
            "files_count": len(item.files),
            "item_size": sum(len(f.data) for f in item.files),
            "metadata": dict(item.metadata),
        }

    def file_data(self, identifier: str, name: str) -> bytes | int:
        """What `/serve/<id>/<name>` sends: the file's bytes, or an HTTP status."""
        f = self.find_file(identifier, name)
        return 404 if f is None else f.data

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
        if params.get("cursor"):
            try:
                after = base64.urlsafe_b64decode(params["cursor"].encode()).decode()
            except ValueError:
                return {"error": "invalid cursor"}
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
        items = [{f: d[f] for f in fields if f in d} for d in page]
        # The total counts every hit, paged or not, so it is the same on every page.
        out: dict[str, Any] = {"items": items, "count": len(items), "total": len(hits)}
        if more:
            out["cursor"] = base64.urlsafe_b64encode(page[-1]["identifier"].encode()).decode()
        return out
