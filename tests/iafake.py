"""The test archive: `ccmirror.sample.archive.IAServer` (the loopback IA server of `ccmirror
demo`) with faults, the real service's quirks, and a record of what it was asked.

Tests and bench/ serve IA from here. It extends the sample server through its hook points
(the handler's `enter`, `intercept`, `leave`, `location`, `send_body`; the server's
`page_size`, `scrape`, `metadata_doc`, `file_data`), so there is one IA server, not two.

    with IAServer(latency=0.0) as ia:
        ia.add_item(...)  # as the sample server's, plus dark=
        ia.fault("429", path="/metadata/album-1", times=1, retry_after=1)
        ia.requests      # [Request(method, path, range, query, in_flight), ...] in arrival order
        ia.max_in_flight # highest number of requests served at once

Changing the archive: `touch(id, **metadata)` (edits, bumps the stamp), `set_dark(id)`,
`forget(id)` (kept in search, `{}` metadata: a stale index); `file_bytes(id, name)` gives
what is served; `clear_faults()`; `hidden_fields = {"oai_updatedate"}` leaves a field out of
scrape results. `IAServer(latency=0.05, page_size=100, bandwidth=200_000, port=0)`:
per-request delay, scrape page size cap, a per-response byte rate for file bodies (to
interrupt a download midway), and the port (0: a free one).

Quirks of the real service, each off by default: `total_skew = n` (the scrape's `total`
is n more or fewer than it delivers, as on a long scrape while the index changes),
`ignore_cursor = True` (every page is page 1 again, with a cursor),
`metadata_errors[id] = "..."` (`/metadata/id` answers 200 `{"error": "..."}`),
`set_updates(id, stamps)` (an unsorted, repeated `oai_updatedate` list), `data_host =
"localhost"` (`/download/` redirects to that host name: another host than the API's), a
dark item (`{"is_dark": true, ...}` metadata, no metadata or files, downloads 404), and a
file given `"private": "true"` (listed, but its download answers 403).

Faults (`fault(kind, path=glob, times=n)`), consumed in order of registration:
`"429"` (with Retry-After), `"503"`, `"500"`, `"reset"` (headers and half the body, then a
TCP reset; on non-file paths: reset before any answer), `"wrong"` (same length, altered
bytes), `"hang"` is not offered: tests never wait on timeouts.
"""

from __future__ import annotations

import fnmatch
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ccmirror.sample import archive
from ccmirror.sample.handler import Handler

__all__ = ["IAServer", "Request"]

_FAULTS = ("429", "500", "503", "reset", "wrong")


class Request(NamedTuple):
    method: str
    path: str  # unquoted, without the query string
    range: str | None  # the Range header, if any
    query: dict[str, str] = {}  # the query string's parameters (last value of each)
    in_flight: int = 0  # requests being served when this one arrived, itself included


@dataclass
class _Fault:
    kind: str
    path: str
    times: int | None
    retry_after: int | None
    after: int = 0  # matching requests let through before the fault starts


class FaultyHandler(Handler):
    ia: IAServer

    def enter(self, path: str, params: dict[str, str]) -> None:
        ia = self.ia
        with ia._lock:
            ia.in_flight += 1
            self._counted = True
            ia.requests.append(
                Request(self.command, path, self.headers.get("Range"), params, ia.in_flight)
            )
            ia.max_in_flight = max(ia.max_in_flight, ia.in_flight)
        if ia.latency:
            time.sleep(ia.latency)

    def leave(self) -> None:
        # Once per request, as soon as its answer is out (in_flight measures what a client
        # keeps in flight).
        if getattr(self, "_counted", False):
            self._counted = False
            with self.ia._lock:
                self.ia.in_flight -= 1

    def intercept(self, path: str) -> bool:
        fault = self.ia.take_fault(path, ("429", "500", "503", "reset"))
        is_data = path.startswith("/serve/")
        # A reset on a file: headers and half the body, then the reset (in send_body).
        self._reset_body = fault is not None and fault.kind == "reset" and is_data
        if fault is None or self._reset_body:
            return False
        if fault.kind == "reset":
            self._reset()
        else:
            self.status(int(fault.kind), fault.retry_after)
        return True

    def location(self, rest: str) -> str:
        where = super().location(rest)
        if self.ia.data_host:  # archive.org sends downloads to a data server's own name
            where = f"http://{self.ia.data_host}:{self.server.server_address[1]}{where}"
        return where

    def send_body(self, body: bytes) -> None:
        if self._reset_body:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._reset()
            return
        if not self.ia.bandwidth:
            super().send_body(body)
            return
        step = 16384
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            self.wfile.flush()
            time.sleep(len(body[i : i + step]) / self.ia.bandwidth)

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, as a dropped connection in the wild does.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class IAServer(archive.IAServer):
    """The sample IA server with faults and quirks. See the module docstring."""

    handler_class = FaultyHandler

    def __init__(
        self,
        latency: float = 0.0,
        page_size: int = 10000,
        bandwidth: float | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.latency = latency  # seconds added to every request
        self.page_size = page_size  # scrape results per page at most
        self.bandwidth = bandwidth  # bytes/second per file response (None: unthrottled)
        # Search fields the scrape API leaves out (e.g. {"oai_updatedate"}: a harvester
        # must cope when archive.org does not return a field).
        self.hidden_fields: set[str] = set()
        # Quirks of the real service (see the module docstring, "Quirks").
        self.total_skew = 0  # added to the scrape's `total` (index churn)
        self.ignore_cursor = False  # every scrape page is page 1 again, with its cursor
        self.metadata_errors: dict[str, str] = {}  # id -> 200 {"error": ...}, no metadata
        self.data_host: str | None = None  # /download/ redirects to this host name
        self.dark: set[str] = set()  # dark items: no metadata, no files
        self.gone: set[str] = set()  # still in the search index, but /metadata answers {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[_Fault] = []

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
        """The sample server's `add_item`; `dark=True` makes the item dark."""
        stats = {"downloads": downloads, "month": month, "week": week}
        super().add_item(identifier, metadata, files, updated=updated, **stats)
        with self._lock:
            self.gone.discard(identifier)
        self.set_dark(identifier, dark)

    def touch(self, identifier: str, **metadata: Any) -> None:
        """Change an item's metadata (or nothing) and bump its last-update stamp."""
        with self._lock:
            item = self.items[identifier]
            item.metadata.update(metadata)
            # One second later: deterministic, and strictly increasing.
            item.last_updated += 1
            item.updates.append(archive.iso(item.last_updated))

    def forget(self, identifier: str) -> None:
        """Delete an item but leave it in the search index (a stale index, as IA has)."""
        with self._lock:
            self.gone.add(identifier)

    def set_dark(self, identifier: str, dark: bool = True) -> None:
        with self._lock:
            if dark:
                self.dark.add(identifier)
            else:
                self.dark.discard(identifier)

    def set_updates(self, identifier: str, stamps: list[str]) -> None:
        """Serve `stamps` as the item's `oai_updatedate` as given: unsorted, repeated, as
        archive.org's index has them (the newest is still the item's last update)."""
        with self._lock:
            self.items[identifier].updates = list(stamps)

    def file_bytes(self, identifier: str, name: str) -> bytes:
        return next(f.data for f in self.items[identifier].files if f.name == name)

    # -- faults

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
        if kind not in _FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, path, times, retry_after, after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
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

    # -- documents, with the quirks

    def scrape(self, params: Mapping[str, str]) -> dict[str, Any]:
        if self.ignore_cursor:
            params = {k: v for k, v in params.items() if k != "cursor"}
        out = super().scrape(params)
        if "items" in out:
            out["total"] = max(0, out["total"] + self.total_skew)
            hidden = self.hidden_fields
            out["items"] = [{k: v for k, v in d.items() if k not in hidden} for d in out["items"]]
        return out

    def metadata_doc(self, identifier: str) -> dict[str, Any]:
        if identifier in self.metadata_errors:
            return {"error": self.metadata_errors[identifier]}
        item = self.items.get(identifier)
        if item is None or identifier in self.gone:
            return {}
        if identifier in self.dark:
            return {**self.server_doc(item), "is_dark": True}
        return super().metadata_doc(identifier)

    def file_data(self, identifier: str, name: str) -> bytes | int:
        if identifier in self.dark or identifier in self.gone:
            return 404
        f = self.find_file(identifier, name)
        if f is not None and str(f.meta.get("private", "")).lower() == "true":
            return 403
        data = super().file_data(identifier, name)
        if isinstance(data, bytes) and self.take_fault(f"/serve/{identifier}/{name}", ("wrong",)):
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:] if data else b"x"
        return data
