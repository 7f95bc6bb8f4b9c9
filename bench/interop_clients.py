"""Helpers of bench/interop.py: results, subprocesses, a web seed that can be switched off.

EXTRA_CLIENTS is where drivers for more clients go (qBittorrent-nox, rTorrent, Deluge: Debian
packages, none driven yet); each has installed(), label(), load(...) and download(...)."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import libtorrent as lt

from trackerhelpers import _RangeHandler


def _version(cmd: list[str], word: int) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "(not installed)"
    words = (r.stdout + r.stderr).split()
    return words[word] if len(words) > word else "?"


TRANSMISSION = f"Transmission {_version(['transmission-show', '--version'], 1)}"
ARIA2 = f"aria2 {_version(['aria2c', '--version'], 2)}"
LIBTORRENT = f"libtorrent {lt.__version__} (Python)"


@dataclass
class Result:
    ok: bool
    detail: str = ""

    def render(self) -> str:
        mark = "✔" if self.ok else "✗"
        return f"{mark} {self.detail}".strip()


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return subprocess.CompletedProcess(cmd, 124, out, f"timed out after {timeout}s")
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not installed")


class _Switchable(_RangeHandler):
    """The Range-capable file handler; 503 while no folder is served; counts Range asks."""

    state: dict

    def send_head(self):  # type: ignore[override]
        root = self.state["root"]
        if root is None:
            self.send_error(503)
            return None
        if self.headers.get("Range"):
            self.state["ranges"] += 1
        self.directory = str(root)
        return super().send_head()


class WebSeed:
    def __init__(self, server: ThreadingHTTPServer, state: dict) -> None:
        self.base = f"http://127.0.0.1:{server.server_address[1]}/"
        self.state = state

    def serve(self, root: Path | None) -> None:
        self.state["root"] = root
        if root is not None:
            self.state["ranges"] = 0

    def ranges(self) -> int:
        return self.state["ranges"]


@contextlib.contextmanager
def switchable_web_seed(root: Path) -> Iterator[WebSeed]:
    root.mkdir(parents=True, exist_ok=True)
    state = {"root": None, "ranges": 0}
    handler = type("Handler", (_Switchable,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebSeed(server, state)
    finally:
        server.shutdown()
        server.server_close()


EXTRA_CLIENTS: list = []
__all__ = ["ARIA2", "EXTRA_CLIENTS", "LIBTORRENT", "TRANSMISSION", "Result", "run"]
