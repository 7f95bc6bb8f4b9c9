"""The scrape API (`/services/search/v1/scrape`), paged by cursor, as archive.org answers it.

The `internetarchive` library's `Search` is not used for the paging: it raises ReadTimeout
when the items delivered differ from the first page's `total` (index churn on a long
scrape: jjjake/internetarchive#610, #704), losing every item that arrived, and it follows
a cursor the server repeats for ever. Here the same requests go through the library's
session (its retry adapter, Retry-After honoured); a shortfall or surplus is a warning, a
repeated cursor or a page with nothing new ends the scrape with a warning, and every item
that arrived is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from internetarchive import ArchiveSession

log = logging.getLogger("ccmirror.sources.ia")

PAGE = 10000  # what the library asks for; archive.org allows 100 to 10000
TIMEOUT = 300  # the library's scrape timeout


@dataclass
class Scrape:
    """What a scrape delivered: distinct documents in arrival order, and how it went."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None  # the first page's `total`
    pages: int = 0
    repeats: int = 0  # documents delivered again (same identifier)
    stopped: str | None = None  # why paging ended early, if it did
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "delivered": len(self.docs),
            "pages": self.pages,
            "repeats": self.repeats,
            "stopped": self.stopped,
        }


class ScrapeError(ValueError):
    """The first page was an error document (a bad query, ...): nothing arrived."""


def scrape(
    session: ArchiveSession,
    query: str,
    fields: Iterable[str],
    *,
    timeout: float | tuple[float, float] = TIMEOUT,
    max_pages: int = 100_000,
) -> Scrape:
    """Every document the scrape API delivers for `query`; see the module docstring.

    Network errors on the first page propagate (the source is unreachable); on a later
    page they end the scrape with a warning, keeping what arrived."""
    url = f"{session.protocol}//{session.host}/services/search/v1/scrape"
    params: dict[str, Any] = {"q": query, "count": PAGE, "fields": ",".join(fields)}
    out = Scrape()
    seen: set[str] = set()
    cursors: set[str] = set()
    while True:
        try:
            answer = _page(session, url, params, timeout)
        except Exception as e:
            if not out.pages:
                raise
            _stop(out, f"page {out.pages + 1} failed ({_short(e)})")
            break
        error = answer.get("error")
        if error:
            if not out.pages:
                raise ScrapeError(_short(str(error)))
            _stop(out, f"page {out.pages + 1} answered an error ({_short(str(error))})")
            break
        out.pages += 1
        if out.total is None:
            out.total = _int(answer.get("total"))
        new = 0
        for doc in answer.get("items") or []:
            if not isinstance(doc, dict):
                continue
            ident = str(doc.get("identifier") or "")
            if not ident:
                continue
            if ident in seen:
                out.repeats += 1
                continue
            seen.add(ident)
            out.docs.append(doc)
            new += 1
        cursor = answer.get("cursor")
        if not cursor:
            break
        cursor = str(cursor)
        if cursor in cursors:
            _stop(out, f"the archive repeated a cursor on page {out.pages}")
            break
        if not new:
            _stop(out, f"page {out.pages} brought nothing new")
            break
        if out.pages >= max_pages:
            _stop(out, f"more than {max_pages} pages")
            break
        cursors.add(cursor)
        params["cursor"] = cursor
    if out.total is not None and out.total != len(out.docs) and out.stopped is None:
        out.warnings.append(
            f"the search declared {out.total} items and delivered {len(out.docs)}"
            " (the archive's index changed during the scrape); every item delivered is kept"
        )
        log.warning("ia: %s", out.warnings[-1])
    return out


def _page(
    session: ArchiveSession,
    url: str,
    params: dict[str, Any],
    timeout: float | tuple[float, float],
) -> dict[str, Any]:
    r = session.post(url, params=params, timeout=timeout)
    r.raise_for_status()
    answer = r.json()
    if not isinstance(answer, dict):
        raise ValueError(f"a JSON {type(answer).__name__}, not an object")
    return answer


def _stop(out: Scrape, why: str) -> None:
    out.stopped = why
    declared = f" of {out.total} declared" if out.total is not None else ""
    out.warnings.append(
        f"search stopped early: {why}; {len(out.docs)} items{declared} kept,"
        " the next run asks again"
    )
    log.warning("ia: %s", out.warnings[-1])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _short(e: object) -> str:
    text = str(e)
    return text if len(text) < 200 else text[:200] + "..."
