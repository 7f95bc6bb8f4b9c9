"""The request handler of `ccmirror.sample.archive.IAServer`: routing, files with Range, faults."""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    from ccmirror.sample.archive import IAServer


class Request(NamedTuple):
    method: str
    path: str  # unquoted, without the query string
    range: str | None  # the Range header, if any
    query: dict[str, str] = {}  # the query string's parameters (last value of each)
    in_flight: int = 0  # requests being served when this one arrived, itself included


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and clients that hang up are part of the script


class Handler(BaseHTTPRequestHandler):
    ia: IAServer  # set on a per-server subclass
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
            self.ia.in_flight += 1
            self._counted = True
            self.ia.requests.append(
                Request(self.command, path, self.headers.get("Range"), params, self.ia.in_flight)
            )
            self.ia.max_in_flight = max(self.ia.max_in_flight, self.ia.in_flight)
        if self.ia.latency:
            time.sleep(self.ia.latency)
        return path, params

    def _leave(self) -> None:
        # Once per request, and before the last bytes of a JSON answer go out: a client
        # that has its answer may send the next request at once, and must not find this
        # one still counted (in_flight measures what a client keeps in flight).
        if getattr(self, "_counted", False):
            self._counted = False
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
        self._leave()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _status(self, code: int, retry_after: int | None = None) -> None:
        body = f"{code}\n".encode()
        self.send_response(code)
        if retry_after is not None and code in (429, 503):
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._leave()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, rest: str) -> None:
        self.send_response(302)
        where = "/serve/" + quote(rest)
        if self.ia.data_host:  # archive.org sends downloads to a data server's own name
            where = f"http://{self.ia.data_host}:{self.server.server_address[1]}{where}"
        self.send_header("Location", where)
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
        if f is None or item is None or item.dark or item.gone:
            self._status(404)
            return
        if str(f.meta.get("private", "")).lower() == "true":
            self._status(403)
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
