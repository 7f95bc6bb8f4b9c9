"""The request handler of `ccmirror.sample.archive.IAServer`: routing, and files with Range.

Hook points, each a method doing nothing special here (tests/iafake.py's handler fills them
in with faults, counting and latency): `enter(path, params)` as a request arrives,
`intercept(path)` before it is routed (True: it has been answered), `leave()` once its
answer is out (may be called twice), `location(rest)` for the 302 of `/download/`, and
`send_body(body)` for a file's bytes.
"""

from __future__ import annotations

import json
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    from ccmirror.sample.archive import IAServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer are no error of the archive's


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

    # -- hook points

    def enter(self, path: str, params: dict[str, str]) -> None:
        """A request for `path` (unquoted) has arrived."""

    def intercept(self, path: str) -> bool:
        """Answer the request instead of routing it; True if it was answered."""
        return False

    def leave(self) -> None:
        """The request's answer is out (or about to be: its last write is all that is left)."""

    def location(self, rest: str) -> str:
        """Where `/download/<rest>` redirects: the data server."""
        return "/serve/" + quote(rest)

    def send_body(self, body: bytes) -> None:
        """Send a file's bytes (the headers are out)."""
        self.wfile.write(body)

    # -- routing

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
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.enter(path, params)
        try:
            if self.intercept(path):
                return
            if path == "/services/search/v1/scrape":
                self._json(self.ia.scrape(params))
            elif path.startswith("/metadata/"):
                self._json(self.ia.metadata_doc(path.removeprefix("/metadata/").strip("/")))
            elif path.startswith("/download/"):
                self._redirect(path.removeprefix("/download/"))
            elif path.startswith("/serve/"):
                self._serve(path.removeprefix("/serve/"))
            else:
                self.status(404)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.leave()

    def _json(self, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # Before the last bytes go out: a client that has its answer may send the next
        # request at once, and must not find this one still in progress.
        self.leave()
        if self.command != "HEAD":
            self.wfile.write(body)

    def status(self, code: int, retry_after: int | None = None) -> None:
        """Answer `code` with a short body (and Retry-After on a 429 or 503, if given)."""
        body = f"{code}\n".encode()
        self.send_response(code)
        if retry_after is not None and code in (429, 503):
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.leave()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, rest: str) -> None:
        self.send_response(302)
        self.send_header("Location", self.location(rest))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, rest: str) -> None:
        identifier, _, name = rest.partition("/")
        data = self.ia.file_data(identifier, name)
        if isinstance(data, int):
            self.status(data)
            return
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
        if self.command != "HEAD":
            self.send_body(body)
