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

`IAServer(latency=0.05, page_size=100, bandwidth=200_000)`: per-request delay, scrape page
size cap, and a per-response byte rate for file bodies (to interrupt a download midway).

Endpoints:
- POST/GET `/services/search/v1/scrape?q=&fields=&count=&cursor=&total_only=`: a small
  query language (`field:value`, `field:(a OR b)`, `AND`, `OR`, `NOT`, parentheses, implicit
  AND, `*` wildcards, quoted values), `fields` honoured (identifier always), `count` capped
  by `page_size`, an opaque `cursor` that is absent on the last page, and `total` computed
  once per query so it stays consistent while paging. Results are ordered by identifier.
  Search fields: every metadata key, plus `downloads`, `month`, `week`, `item_size`,
  `oai_updatedate` (list of ISO stamps, newest last) and `item_last_updated`.
- GET `/metadata/<id>`: the item document (`files`, `metadata`, `item_last_updated`, ...),
  `{}` for a missing item, `{"is_dark": true, ...}` (no metadata, no files) for a dark one.
- GET/HEAD `/download/<id>/<name>`: 302 to `/serve/<id>/<name>` (the "data server"), which
  answers 200 or, with `Range: bytes=a-[b]`, 206 with Content-Range (416 when unsatisfiable).

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
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

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


class Request(NamedTuple):
    method: str
    path: str  # unquoted, without the query string
    range: str | None  # the Range header, if any


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


@dataclass
class _Fault:
    kind: str
    path: str
    times: int | None
    retry_after: int


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the query language -------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def _tokens(q: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if not m:
            raise ValueError(f"cannot parse query near {q[pos:]!r}")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("word", m.group(3)))
        else:
            word = m.group(4)
            if word in ("AND", "OR", "NOT"):
                out.append((word, word))
            elif word.endswith(":") and len(word) > 1:
                out.append(("field", word[:-1]))
            elif ":" in word:
                f, v = word.split(":", 1)
                out.append(("field", f))
                out.append(("word", v))
            else:
                out.append(("word", word))
    return out


class _Parser:
    """Recursive descent: or := and (OR and)*; and := not ([AND] not)*; not := NOT not | atom."""

    def __init__(self, q: str) -> None:
        self.toks = _tokens(q)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.or_(None)
        if self.i != len(self.toks):
            raise ValueError(f"unexpected {self.toks[self.i][1]!r} in query")
        return node

    def or_(self, fld: str | None) -> Any:
        node = self.and_(fld)
        while self.peek() == "OR":
            self.take()
            node = ("or", node, self.and_(fld))
        return node

    def and_(self, fld: str | None) -> Any:
        node = self.not_(fld)
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
            node = ("and", node, self.not_(fld))
        return node

    def not_(self, fld: str | None) -> Any:
        if self.peek() == "NOT":
            self.take()
            return ("not", self.not_(fld))
        return self.atom(fld)

    def atom(self, fld: str | None) -> Any:
        kind = self.peek()
        if kind is None:
            raise ValueError("query ends too early")
        if kind == "(":
            self.take()
            node = self.or_(fld)
            if self.peek() != ")":
                raise ValueError("missing ')' in query")
            self.take()
            return node
        if kind == "field":
            name = self.take()[1]
            return self.atom(name)
        if kind == "word":
            return ("term", fld, self.take()[1])
        raise ValueError(f"unexpected {self.toks[self.i][1]!r} in query")


def _values(doc: Mapping[str, Any], fld: str) -> list[str]:
    v = doc.get(fld)
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _match(node: Any, doc: Mapping[str, Any]) -> bool:
    op = node[0]
    if op == "and":
        return _match(node[1], doc) and _match(node[2], doc)
    if op == "or":
        return _match(node[1], doc) or _match(node[2], doc)
    if op == "not":
        return not _match(node[1], doc)
    _, fld, word = node
    word = word.lower()
    if fld is None:  # a bare word: identifier, title or creator contain it
        hay = " ".join(_values(doc, "identifier") + _values(doc, "title") + _values(doc, "creator"))
        return word.strip("*") in hay.lower()
    if word == "*":
        return bool(_values(doc, fld))
    return any(fnmatch.fnmatchcase(v.lower(), word) for v in _values(doc, fld))


# --- the server -----------------------------------------------------------------------------


class IAServer:
    """The loopback IA API. See the module docstring for the endpoints and faults."""

    def __init__(
        self, latency: float = 0.0, page_size: int = 10000, bandwidth: float | None = None
    ) -> None:
        self.latency = latency  # seconds added to every request
        self.page_size = page_size  # scrape results per page at most
        self.bandwidth = bandwidth  # bytes/second per file response (None: unthrottled)
        self.items: dict[str, _Item] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._tick = 0
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
    ) -> None:
        """Add or replace an item; replacing bumps its last-update stamp.

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
                "mtime": str(int(time.time())),
            }
            meta.update(extra)
            built.append(_File(name, data, meta))
        md = {"identifier": identifier, "mediatype": "audio", **dict(metadata)}
        if isinstance(md.get("collection"), str):
            md["collection"] = [md["collection"]]
        with self._lock:
            old = self.items.get(identifier)
            # Strictly increasing, even for several changes within one second.
            self._tick = unix = max(int(time.time()), self._tick + 1)
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
            # Strictly increasing, even for several changes within one second.
            self._tick = unix = max(int(time.time()), self._tick + 1)
            stamp = _iso(unix)
            item.updates.append(stamp)
            item.last_updated = unix

    def set_dark(self, identifier: str, dark: bool = True) -> None:
        with self._lock:
            self.items[identifier].dark = dark

    def file_bytes(self, identifier: str, name: str) -> bytes:
        return next(f.data for f in self.items[identifier].files if f.name == name)

    def fault(
        self, kind: str, path: str = "*", times: int | None = 1, retry_after: int = 1
    ) -> None:
        """Inject a fault on requests whose unquoted path matches the glob `path`.

        kind: "429" (Retry-After: retry_after), "500", "503", "reset", "wrong".
        times: how many requests it hits (None: every one until clear_faults()).
        """
        if kind not in ("429", "500", "503", "reset", "wrong"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, path, times, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and fnmatch.fnmatchcase(path, f.path):
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
            handler = type("Handler", (_Handler,), {"ia": self})
            self._httpd = _QuietServer(("127.0.0.1", 0), handler)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name="iaserver", daemon=True
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
        item = self.items.get(identifier)
        if item is None:
            return {}
        base = {
            "created": item.last_updated,
            "d1": "127.0.0.1",
            "dir": f"/srv/{identifier}",
            "server": "127.0.0.1",
            "uniq": abs(hash(identifier)) % 10**9,
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
            tree = _Parser(query).parse()
        except (ValueError, IndexError) as e:
            return {"error": f"invalid query: {e}"}
        with self._lock:
            docs = [self.search_doc(i) for i in self.items.values()]
        hits = sorted((d for d in docs if _match(tree, d)), key=lambda d: d["identifier"])
        if params.get("total_only") == "true":
            return {"total": len(hits)}
        after = ""
        if params.get("cursor"):
            try:
                after = base64.urlsafe_b64decode(params["cursor"].encode()).decode()
            except ValueError:
                return {"error": "invalid cursor"}
        # The total counts every hit, paged or not, so it is the same on every page.
        total = len(hits)
        rest = [d for d in hits if d["identifier"] > after]
        try:
            count = max(1, min(int(params.get("count", 10000)), self.page_size))
        except ValueError:
            return {"error": "invalid count"}
        page, more = rest[:count], len(rest) > count
        fields = [f for f in params.get("fields", "identifier").split(",") if f]
        if "identifier" not in fields:
            fields.insert(0, "identifier")
        items = [{f: d[f] for f in fields if f in d} for d in page]
        out: dict[str, Any] = {"items": items, "count": len(items), "total": total}
        if more:
            out["cursor"] = base64.urlsafe_b64encode(page[-1]["identifier"].encode()).decode()
        return out


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and clients that hang up are part of the script


class _Handler(BaseHTTPRequestHandler):
    ia: IAServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def end_headers(self) -> None:
        # Echo the client's "Connection: close"; without it a pooling client reuses a
        # socket this server is about to close.
        if (self.headers.get("Connection") or "").lower() == "close":
            self.send_header("Connection", "close")
        super().end_headers()

    def _enter(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.ia._lock:
            self.ia.requests.append(Request(self.command, path, self.headers.get("Range")))
            self.ia.in_flight += 1
            self.ia.max_in_flight = max(self.ia.max_in_flight, self.ia.in_flight)
        if self.ia.latency:
            time.sleep(self.ia.latency)
        return path, params

    def _leave(self) -> None:
        with self.ia._lock:
            self.ia.in_flight -= 1

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._dispatch()

    def _dispatch(self) -> None:
        path, params = self._enter()
        try:
            fault = self.ia._take_fault(path, ("429", "500", "503", "reset"))
            is_data = path.startswith("/serve/")
            if fault and fault.kind == "reset" and not is_data:
                self._reset()
                return
            if fault and fault.kind != "reset":
                self._status(int(fault.kind), fault.retry_after)
                return
            if path == "/services/search/v1/scrape":
                self._json(self.ia.scrape(params))
            elif path.startswith("/metadata/"):
                self._json(self.ia.metadata_doc(path.removeprefix("/metadata/").strip("/")))
            elif path.startswith("/download/"):
                self._redirect(path.removeprefix("/download/"))
            elif is_data:
                self._serve(path.removeprefix("/serve/"), reset=fault is not None)
            else:
                self._status(404)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self._leave()

    def _json(self, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _status(self, code: int, retry_after: int | None = None) -> None:
        body = f"{code}\n".encode()
        self.send_response(code)
        if retry_after is not None and code in (429, 503):
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, rest: str) -> None:
        self.send_response(302)
        self.send_header("Location", "/serve/" + quote(rest))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, as a dropped connection in the wild does.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _serve(self, rest: str, *, reset: bool) -> None:
        identifier, _, name = rest.partition("/")
        item = self.ia.items.get(identifier)
        f = next((f for f in item.files if f.name == name), None) if item else None
        if f is None or item is None or item.dark:
            self._status(404)
            return
        data = f.data
        if self.ia._take_fault("/serve/" + rest, ("wrong",)):
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:] if data else b"x"
        start, end, code = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
            code = 206
        body = data[start : end + 1]
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reset:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._reset()
            return
        if not self.ia.bandwidth:
            self.wfile.write(body)
            return
        step = 16384
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            self.wfile.flush()
            time.sleep(len(body[i : i + step]) / self.ia.bandwidth)
