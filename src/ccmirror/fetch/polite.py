"""Adaptive politeness per host: fewer requests at once after a 429/503, and a pause.

Each host starts at `ceiling` requests in flight (MAX_PER_HOST at most). A 429 or 503 halves
its limit and holds every request to it until the pause is over (its Retry-After, else the
caller's backoff); each run of `limit` answers without one raises the limit by one again,
back up to the ceiling. `Unreachable` gives up, for the run, a host that keeps not answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.fetch")
MAX_PER_HOST = 16  # never more requests than this in flight to one host


class Stopped(Exception):
    """The run is being interrupted; the `.part` file is kept for resuming."""


class GivenUp(Exception):
    """The host was given up for this run while the download waited for its place."""


class _Host:
    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.active = 0
        self.calm = 0  # answers since the last slow-down
        self.not_before = 0.0  # monotonic time before which no request starts


class Gate:
    """Per-host limits shared by the download threads of one run."""

    def __init__(self, ceiling: int = MAX_PER_HOST) -> None:
        self.ceiling = max(1, min(ceiling, MAX_PER_HOST))
        self._hosts: dict[str, _Host] = {}
        self._cond = threading.Condition()

    def limit(self, host: str) -> int:
        with self._cond:
            return self._hosts[host].limit if host in self._hosts else self.ceiling

    @contextmanager
    def slot(self, host: str, stop: threading.Event) -> Iterator[None]:
        """Hold one of `host`'s request slots (waiting out a pause); Stopped if stopped."""
        with self._cond:
            h = self._hosts.setdefault(host, _Host(self.ceiling))
            while True:
                if stop.is_set():
                    raise Stopped()
                wait = h.not_before - time.monotonic()
                if wait <= 0 and h.active < h.limit:
                    break
                # Short waits: a stop, or a slot freed elsewhere, is seen promptly.
                self._cond.wait(min(wait, 0.25) if wait > 0 else 0.25)
            h.active += 1
        try:
            yield
        finally:
            with self._cond:
                h.active -= 1
                self._cond.notify_all()

    def answered(self, host: str) -> None:
        """An answer that was not a slow-down: creep back towards the ceiling."""
        with self._cond:
            h = self._hosts.get(host)
            if h is None or h.limit >= h.ceiling:
                return
            h.calm += 1
            if h.calm >= h.limit:
                h.limit += 1
                h.calm = 0
                self._cond.notify_all()

    def slow_down(self, host: str, pause: float) -> None:
        """A 429/503: halve the host's limit and pause all its requests for `pause` s."""
        with self._cond:
            h = self._hosts.setdefault(host, _Host(self.ceiling))
            h.limit = max(1, h.limit // 2)
            h.calm = 0
            h.not_before = max(h.not_before, time.monotonic() + pause)


class _Lane:
    """One source's queue: its limit, tickets issued and admitted, places held."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.issued = 0
        self.next = 0  # the ticket admitted next
        self.gone: set[int] = set()  # tickets given up before their turn
        self.active = 0

    def advance(self) -> None:
        while self.next in self.gone:
            self.gone.discard(self.next)
            self.next += 1


class InFlight:
    """At most `limit` downloads receiving bytes at once (and at most `lanes[source]` of
    one source), each source's admitted in plan order.

    A download holds its place from its first request to its last byte received; hashing
    the tail, fsync and the rename happen after it has let go, so the next download's
    requests are already on the wire. Tickets are handed out in plan order; a task that
    needs no download gives its ticket up (`skip`), so the ones behind it are not held.
    """

    def __init__(self, limit: int, lanes: Mapping[str, int] | None = None) -> None:
        self.limit = max(1, limit)
        self._limits = dict(lanes or {})
        self._cond = threading.Condition()
        self._lanes: dict[str, _Lane] = {}
        self._active = 0

    def _lane(self, source: str) -> _Lane:
        lane = self._lanes.get(source)
        if lane is None:
            lane = self._lanes[source] = _Lane(self._limits.get(source, self.limit))
        return lane

    def ticket(self, source: str = "") -> int:
        with self._cond:
            lane = self._lane(source)
            lane.issued += 1
            return lane.issued - 1

    def skip(self, ticket: int, source: str = "") -> None:
        with self._cond:
            lane = self._lane(source)
            if ticket >= lane.next:
                lane.gone.add(ticket)
                lane.advance()
                self._cond.notify_all()

    @contextmanager
    def place(
        self,
        ticket: int | None,
        stop: threading.Event,
        still: Callable[[], bool],
        source: str = "",
    ) -> Iterator[None]:
        """Hold a place; `ticket` None: a second try of an admitted file (no queueing).
        GivenUp when `still()` is false once the place is ours (its host is down)."""
        with self._cond:
            lane = self._lane(source)
            while (
                stop.is_set()
                or self._active >= self.limit
                or lane.active >= lane.limit
                or (ticket is not None and ticket != lane.next)
            ):
                if stop.is_set():
                    raise Stopped()
                self._cond.wait(0.25)
            self._active += 1
            lane.active += 1
            if ticket is not None:
                lane.next += 1
                lane.advance()
                self._cond.notify_all()
        try:
            if not still():
                raise GivenUp()
            yield
        finally:
            with self._cond:
                self._active -= 1
                lane.active -= 1
                self._cond.notify_all()


class Unreachable:
    """Hosts given up for this run: `after` files in a row never got one answer from them.

    The download threads count as each file ends, a miss before its download lets go of
    its place in flight: the download next in line for that place already sees its host
    given up, however far the catalogue writer (the run's thread) is behind."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.down: set[str] = set()
        self.why: dict[str, str] = {}  # host -> why it does not answer
        self._misses: dict[str, int] = {}  # consecutive unanswered files per host
        self._lock = threading.Lock()

    def __contains__(self, host: object) -> bool:
        return host in self.down

    def missed(self, host: str, cause: str, origin: str) -> None:
        """A file that never got an answer from `host` (at `origin`, for the log)."""
        with self._lock:
            self.why[host] = cause
            self._misses[host] = self._misses.get(host, 0) + 1
            if self._misses[host] < self.after or host in self.down:
                return
            self.down.add(host)
        log.warning("fetch: cannot reach %s (%s); its files wait for the next run", origin, cause)

    def answered(self, host: str) -> None:
        """A file that got an answer (fetched, or failed for a reason the host gave)."""
        with self._lock:
            self._misses[host] = 0


def downloads_per_source(mirror: Mirror, workers: int | None = None) -> dict[str, int]:
    """Downloads in flight at most per catalogue source (`ia`, `fma`): the manifest's
    `downloads` (the smallest, for two sources of one kind), within `workers` if given."""
    lanes: dict[str, int] = {}
    for src in mirror.manifest.sources:
        lanes[src.kind] = min(lanes.get(src.kind, src.downloads), src.downloads)
    return {k: min(n, workers) if workers else n for k, n in lanes.items()}
