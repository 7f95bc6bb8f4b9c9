"""Plain words for a failed request: "connection refused", "timed out", "HTTP 503 after 6 tries".

requests, urllib3 and `internetarchive` wrap the cause several layers deep (and the
library re-raises with a new message); operators need the cause, not the repr.
"""

from __future__ import annotations

import re
import socket
import ssl
import sys
from collections.abc import Iterator

import urllib3

__all__ = ["failure_reason"]


def _chain(e: BaseException) -> Iterator[BaseException]:
    """`e` and everything it wraps: causes, contexts, MaxRetryError.reason, args."""
    todo, seen = [e], set()
    while todo:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        for nxt in (x.__cause__, x.__context__, getattr(x, "reason", None), *x.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _rq(name: str) -> type | tuple[()]:
    """requests' exception class `name`, or () (matches nothing) when nothing imported
    requests: none of its exceptions can exist then (fetch itself uses urllib3 alone and
    never pays for importing requests)."""
    requests = sys.modules.get("requests")
    return getattr(requests.exceptions, name) if requests is not None else ()


def failure_reason(e: BaseException, tries: int | None = None) -> str:
    """A short, stable phrase for why a request failed (no repr, no URL)."""
    chain = list(_chain(e))
    after = f" after {tries} tries" if tries else ""
    for x in chain:
        m = re.search(r"too many (\d{3}) error responses", str(x))
        if m:
            return f"HTTP {m.group(1)}{after}"
    for x in chain:
        if isinstance(x, _rq("HTTPError")) and x.response is not None:
            return f"HTTP {x.response.status_code}"
        m = re.match(r"(\d{3}) (Client|Server) Error", str(x))
        if m:
            return f"HTTP {m.group(1)}"
    text = " ".join(str(x) for x in chain).lower()
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(x, ConnectionResetError) for x in chain) or "reset by peer" in text:
        return "connection reset"
    if any(
        isinstance(x, (_rq("Timeout"), urllib3.exceptions.TimeoutError, TimeoutError))
        for x in chain
    ):
        return "timed out"
    if any(isinstance(x, socket.gaierror | urllib3.exceptions.NameResolutionError) for x in chain):
        return "host name not found"
    if any(isinstance(x, (ssl.SSLError, _rq("SSLError"))) for x in chain):
        return "TLS error"
    if any(
        isinstance(x, (_rq("ChunkedEncodingError"), urllib3.exceptions.ProtocolError))
        for x in chain
    ):
        return "connection broken mid-answer"
    if any(isinstance(x, _rq("JSONDecodeError")) for x in chain):
        return "the answer is not JSON"
    if any(isinstance(x, _rq("ConnectionError")) for x in chain):
        return "connection error"
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return first if len(first) <= 120 else first[:120] + "..."
