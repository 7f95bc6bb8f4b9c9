"""Item metadata reads, many in flight, paced the way archive.org asks.

At most `MAX_PER_HOST` requests are in flight to one host. The pace is adaptive (additive
increase, multiplicative decrease): a 429 or 503 halves the number in flight (once per
round: the answers of requests sent before the cut do not cut again), nothing new is sent
until its Retry-After has passed (or, without one, a backoff), and the item is asked again;
after as many successes in a row as requests allowed in flight, one more is allowed, back
up to the ceiling. Other failures (500, resets, timeouts) are retried by urllib3 inside
the request, as before.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from ccmirror import __version__
from ccmirror.sources.ia.checks import checked_metadata

MAX_PER_HOST = 16
MAX_WAIT = 300.0  # a Retry-After beyond this is honoured as this (a cron run must end)
THROTTLE = (429, 503)


class Throttled(requests.HTTPError):
    """The archive asked us to slow down (429 or 503), with how long to wait."""

    def __init__(self, status: int, retry_after: float | None, response: Any = None) -> None:
        super().__init__(f"{status} Server Error: slow down", response=response)
        self.status = status
        self.retry_after = retry_after


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_WAIT)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wall = datetime.now(UTC).timestamp() if now is None else now
    return min(max(0.0, when.timestamp() - wall), MAX_WAIT)


class MetadataReader:
    """GET /metadata/<id> through one keep-alive pool (urllib3: thread-safe, a connection
    per request in flight, no more than MAX_PER_HOST to the host). requests' per-call
    overhead is most of a read's CPU time at 16 reads in flight."""

    def __init__(
        self, endpoint: str, retries: int, backoff: float, *, connect_timeout: float = 4.0
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        retry = urllib3.Retry(
            total=retries,
            connect=min(retries, 1),  # a host that does not answer: one line within ~10 s
            read=retries,
            redirect=False,
            allowed_methods=["GET"],
            status_forcelist=[500, 502, 504],  # 429/503 are the pace's (Throttled)
            backoff_factor=backoff,
            backoff_max=30,
            respect_retry_after_header=False,
        )
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=MAX_PER_HOST,
            retries=retry,
            timeout=urllib3.Timeout(connect=connect_timeout, read=60),
            headers={"User-Agent": f"ccmirror/{__version__}", "Accept": "application/json"},
        )

    def __call__(self, identifier: str) -> dict[str, Any]:
        r = self.pool.request("GET", f"{self.endpoint}/metadata/{quote(identifier)}")
        if r.status in THROTTLE:
            raise Throttled(r.status, retry_after(r.headers.get("Retry-After")))
        if r.status >= 400:
            kind = "Client" if r.status < 500 else "Server"
            raise requests.HTTPError(f"{r.status} {kind} Error")
        try:
            doc = json.loads(r.data)
        except ValueError:
            raise ValueError("the answer is not JSON") from None
        return checked_metadata(identifier, doc)

    def close(self) -> None:
        self.pool.clear()


class Pace:
    """How many requests may be in flight now, and when the next may be sent.

    Worker threads take a slot (`acquire`) before each request and give it back
    (`release`); the slots shrink and grow with the archive's answers."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, min(ceiling, MAX_PER_HOST))
        self.limit = self.lowest = self.ceiling
        self.in_flight = self.highest = 0
        self.resume_at = 0.0
        self.round = 0  # bumped at every cut
        self.streak = 0
        self.throttled = 0  # 429/503 answers
        self.cuts = 0
        self.waited = 0.0  # seconds of pause that Retry-After (or a backoff) asked for
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for a slot (and for any pause to end); return the round it was taken in."""
        with self._cond:
            while True:
                now = time.monotonic()
                if now < self.resume_at:
                    self._cond.wait(self.resume_at - now)
                elif self.in_flight >= self.limit:
                    self._cond.wait()
                else:
                    break
            self.in_flight += 1
            self.highest = max(self.highest, self.in_flight)
            return self.round

    def release(self, taken_in: int, throttled: float | None = None) -> None:
        """Give a slot back; `throttled` is the pause a 429/503 asked for (None: it went
        through). The first throttled answer of a round halves the limit; after `limit`
        answers in a row that went through (of requests sent since the last cut), the
        limit grows by one."""
        with self._cond:
            self.in_flight -= 1
            if throttled is None:
                if taken_in == self.round:  # answers to requests sent before a cut: no news
                    self.streak += 1
                    if self.streak >= self.limit and self.limit < self.ceiling:
                        self.limit += 1
                        self.streak = 0
            else:
                self.throttled += 1
                self.streak = 0
                if taken_in == self.round:
                    self.limit = max(1, self.limit // 2)
                    self.lowest = min(self.lowest, self.limit)
                    self.round += 1
                    self.cuts += 1
                now = time.monotonic()
                until = now + throttled
                self.waited += max(0.0, until - max(self.resume_at, now))
                self.resume_at = max(self.resume_at, until)
            self._cond.notify_all()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ceiling": self.ceiling,
            "throttled": self.throttled,
            "cuts": self.cuts,
            "lowest": self.lowest,
            "highest": self.highest,
            "waited_s": round(self.waited, 3),
        }


def paced(
    read: Callable[[str], dict[str, Any]], pace: Pace, *, max_tries: int, backoff: float
) -> Callable[[str], dict[str, Any]]:
    """`read` under `pace`: a throttled read waits its turn and is tried again, up to
    `max_tries` times (then Throttled propagates)."""

    def run(identifier: str) -> dict[str, Any]:
        for tries in range(1, max_tries + 1):
            taken = pace.acquire()
            try:
                meta = read(identifier)
            except Throttled as e:
                wait_s = e.retry_after
                if wait_s is None:
                    wait_s = min(MAX_WAIT, backoff * 2 ** (tries - 1))
                pace.release(taken, wait_s)
                if tries == max_tries:
                    raise
                continue
            except BaseException:
                pace.release(taken)
                raise
            pace.release(taken)
            return meta
        raise RuntimeError("unreachable")  # the loop returns or raises

    return run


def read_all(
    docs: Iterable[dict[str, Any]],
    read: Callable[[str], dict[str, Any]],
    record: Callable[[list[tuple[Future[dict[str, Any]], dict[str, Any]]]], None],
    pace: Pace,
    *,
    max_tries: int,
    backoff: float,
) -> None:
    """Read every doc's metadata on `pace.ceiling` threads; hand finished reads to `record`
    in batches (on this thread). Twice as many reads are queued as there are threads, so
    a worker never idles while this thread writes."""
    run = paced(read, pace, max_tries=max_tries, backoff=backoff)
    queue = iter(docs)
    pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=pace.ceiling, thread_name_prefix="ia-meta") as pool:
        for d in queue:
            pending[pool.submit(run, d["identifier"])] = d
            if len(pending) >= pace.ceiling * 2:
                break
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                batch = [(fut, pending.pop(fut)) for fut in done]
                for _ in batch:  # refill first: the workers keep going while we write
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(run, nxt["identifier"])] = nxt
                record(batch)
        except BaseException:
            # Interrupted: what is recorded stays; queued requests are dropped.
            for fut in pending:
                fut.cancel()
            raise
