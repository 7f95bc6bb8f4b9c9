"""The public pages, rendered from Jinja2 templates shipped in the package (autoescape on).

Every string that may come from a source (titles, creators, licence ids and URLs, even
names) is escaped by the template engine; URLs are linked only when they are http(s),
magnet or mailto links; source text is cut and isolated with <bdi>. The pages load
nothing from elsewhere and run no script.
"""

from __future__ import annotations

import urllib.parse
from functools import cache
from typing import Any

import jinja2

from ccmirror.publish.chart import NARROW, WIDE, chart, legend
from ccmirror.sizes import format_size

MAX_TEXT = 120  # characters of a source string shown; the full text is in the dump
LINK_SCHEMES = ("http", "https", "magnet", "mailto")


def short(value: Any, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_href(url: Any) -> str | None:
    """The URL when it may be a link target; None for javascript:, data: and the like."""
    if not isinstance(url, str):
        return None
    scheme = urllib.parse.urlsplit(url.strip()).scheme.lower()
    return url.strip() if scheme in LINK_SCHEMES else None


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ccmirror.publish", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(
        size=lambda n: format_size(n or 0),
        num=lambda n: f"{n or 0:,}",
        pct=pct,
        short=short,
        safe_href=safe_href,
        count=count,
    )
    return env


def render_index(d: dict[str, Any], generated_at: str, contact: dict | None) -> str:
    """public/index.html from page_data()."""
    return (
        environment()
        .get_template("index.html")
        .render(
            d=d,
            wide=chart(d["curve"], d["tiers"], WIDE, d.get("curve_originals")),
            narrow=chart(d["curve"], d["tiers"], NARROW, d.get("curve_originals")),
            legend=legend(d["tiers"]),
            contact=contact,
            withdrawn_href="withdrawn.json",
            generated_at=generated_at,
        )
    )


def render_pack(p: dict[str, Any], mirror: str, generated_at: str, contact: dict | None) -> str:
    """public/packs/<name>.html from pack_page_data()."""
    return (
        environment()
        .get_template("pack.html")
        .render(
            p=p,
            mirror=mirror,
            contact=contact,
            withdrawn_href="../withdrawn.json",
            generated_at=generated_at,
        )
    )
