"""`public/index.html`: one self-contained page (no outside assets, no JavaScript).

Every string that may come from a source (titles, creators, licence ids and URLs, even
names) goes through `esc` (html.escape with quote=True); URLs are only linked when they
are http(s) or magnet links; right-to-left text is isolated with <bdi>.
"""

from __future__ import annotations

import html
import urllib.parse
from typing import Any

from ccmirror.sizes import format_size

MAX_TEXT = 120  # characters of a source string shown; the full text is in the dump
MAX_TOOLTIP = 300

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#1d2433;background:#f6f7fb}
main{max-width:1060px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:28px;margin:8px 0 4px}h1 .muted{font-size:18px;font-weight:400}h2{font-size:20px;margin:34px 0 8px}
p.lede{font-size:16px;color:#3b4458;max-width:820px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}
.card{flex:1 1 150px;background:#fff;border:1px solid #dde1ea;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#5a6478;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1ea}
th,td{padding:6px 10px;border-bottom:1px solid #e8ebf1;text-align:left;vertical-align:top}
th{background:#eef1f7;font-size:13px;color:#3b4458}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.t{overflow-wrap:anywhere;max-width:360px}
a{color:#1f5fbf}.tier{font-weight:600}.muted{color:#6a7386;font-size:13px}
.help{background:#fff8e1;border:1px solid #f0d98a;border-radius:8px;padding:10px 16px}
.torrent{white-space:nowrap}svg{background:#fff;border:1px solid #dde1ea;border-radius:8px}
code{background:#eef1f7;padding:1px 4px;border-radius:3px}
.legend{display:flex;flex-wrap:wrap;gap:6px 22px;margin:8px 0 0}
.key i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
"""

TIER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def short(value: Any, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value)
    return esc(text if len(text) <= limit else text[: limit - 1] + "…")


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """Source text, escaped, cut, and isolated so right-to-left runs stay in their cell."""
    if not value:
        return ""
    full = str(value)
    # A cut string keeps a longer tooltip; still bounded so a 10 KB title cannot bloat the page.
    tip = f' title="{esc(full[:MAX_TOOLTIP])}"' if len(full) > limit else ""
    return f"<bdi{tip}>{short(full, limit)}</bdi>"


def safe_href(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    scheme = urllib.parse.urlsplit(url.strip()).scheme.lower()
    return esc(url.strip()) if scheme in ("http", "https", "magnet") else None


def link(url: Any, label: str) -> str:
    href = safe_href(url)
    return f'<a href="{href}" rel="noopener noreferrer">{label}</a>' if href else label


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def torrent_links(t: dict[str, Any]) -> str:
    href = "../" + urllib.parse.quote(t["torrent_path"] or "")
    return (
        f'<span class="torrent"><bdi>{esc(t["name"])}</bdi> '
        f"({esc(format_size(t['data_size']))}, {esc(t['num_files'])} files): "
        f'{link(t["magnet_link"], "magnet")} · <a href="{esc(href)}">.torrent</a></span>'
    )


def chart(curve: list[tuple[int, float]], tiers: list[dict[str, Any]]) -> str:
    """Cumulative share of listening (y) against storage (x), the tier boundaries marked."""
    w, h, left, right, top, bottom = 1000, 380, 64, 24, 20, 46
    pw, ph = w - left - right, h - top - bottom
    max_x = max((p[0] for p in curve), default=0) or 1

    def x(v: float) -> float:
        return left + pw * v / max_x

    def y(v: float) -> float:
        return top + ph * (1 - v)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        'style="width:100%;height:auto" role="img" aria-labelledby="chart-title">',
        '<title id="chart-title">Share of all listening covered against storage needed</title>',
    ]
    for i in range(5):
        v = i / 4
        out.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" '
            'stroke="#e3e6ee"/>'
            f'<text x="{left - 8}" y="{y(v) + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#5a6478">{i * 25}%</text>'
        )
        anchor = "end" if i == 4 else "start" if i == 0 else "middle"
        out.append(
            f'<text x="{x(max_x * v):.1f}" y="{h - bottom + 18}" font-size="12" '
            f'text-anchor="{anchor}" fill="#5a6478">{esc(format_size(max_x * v))}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{h - 6}" font-size="13" text-anchor="middle" '
        'fill="#3b4458">storage needed (most-listened recordings first)</text>'
        f'<text x="14" y="{top + ph / 2}" font-size="13" text-anchor="middle" fill="#3b4458" '
        f'transform="rotate(-90 14 {top + ph / 2})">share of listening</text>'
    )
    prev = 0.0
    for n, t in enumerate(x for x in tiers if x.get("cumulative_bytes") is not None):
        end_x = t["cumulative_bytes"]
        colour = TIER_COLOURS[n % len(TIER_COLOURS)]
        width = max(x(end_x) - x(prev), 0)
        label = f"tier {esc(t['tier'])}" if width > 52 else esc(t["tier"])
        out.append(
            f'<rect x="{x(prev):.1f}" y="{top}" width="{width:.1f}" '
            f'height="{ph}" fill="{colour}" fill-opacity="0.08"/>'
            f'<line x1="{x(end_x):.1f}" y1="{top}" x2="{x(end_x):.1f}" y2="{top + ph}" '
            f'stroke="{colour}" stroke-dasharray="4 3"/>'
        )
        if width > 10:
            out.append(
                f'<text x="{x(prev) + width / 2:.1f}" y="{top + ph - 8}" font-size="13" '
                f'font-weight="600" text-anchor="middle" fill="{colour}">{label}</text>'
            )
        prev = end_x
    pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in curve)
    out.append(f'<polyline points="{pts}" fill="none" stroke="#1d2433" stroke-width="2"/>')
    out.append("</svg>")
    return "".join(out)


def legend(tiers: list[dict[str, Any]]) -> str:
    """Below the chart, in words: what keeping tiers 1..k costs and covers."""
    items = []
    for n, t in enumerate(x for x in tiers if x.get("cumulative_bytes") is not None):
        colour = TIER_COLOURS[n % len(TIER_COLOURS)]
        which = "tier 1" if n == 0 else f"tiers 1–{esc(t['tier'])}"
        items.append(
            f'<span class="key"><i style="background:{colour}"></i>{which}: '
            f"<b>{esc(pct(min(t['cumulative_share'] or 0.0, 1.0)))}</b> of listening in "
            f"<b>{esc(format_size(t['cumulative_bytes']))}</b></span>"
        )
    return f'<p class="legend">{"".join(items)}</p>' if items else ""


def render(d: dict[str, Any], generated_at: str) -> str:
    name = esc(d["name"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script, no outside request: the page must be safe with hostile titles.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{name}: Creative Commons music mirror</title>",
        f"<style>{CSS}</style></head><body><main>",
        f'<h1>{name} <span class="muted">· Creative Commons music mirror</span></h1>',
        '<p class="lede">A mirror of <b>Creative Commons and public-domain recordings</b> '
        "from the Internet Archive and the Free Music Archive. Every file's licence was "
        "checked against its source and its own tags before it was packed. The recordings "
        "are shared as BitTorrent packs in <b>tiers</b>: tier 1 holds the most-listened "
        "recordings, so even a small disk keeps most of what people play. Each pack carries "
        "ATTRIBUTION.md and MANIFEST.csv with the title, creator, source and licence of "
        "every file.</p>",
        '<div class="cards">',
        f'<div class="card"><b>{d["packed_items"]:,}</b><span>recordings in packs '
        f"(of {d['items']:,} catalogued)</span></div>",
        f'<div class="card"><b>{d["packed_files"]:,}</b><span>audio files</span></div>',
        f'<div class="card"><b>{esc(format_size(d["packed_bytes"]))}</b>'
        "<span>of audio</span></div>",
        f'<div class="card"><b>{d["torrents"]:,}</b><span>torrents in '
        f"{len(d['tiers'])} tiers</span></div>",
        f'<div class="card"><b>{len(d["licences"]):,}</b><span>licences</span></div>',
        "</div>",
        '<p class="help"><b>How to help:</b> open a magnet link (or download the .torrent) '
        "in any BitTorrent client and keep it seeding. Start with tier 1; if you have room "
        "for more, add the next tier. Operators can run <code>ccmirror seed-plan</code> "
        "to see which torrents need seeders most.</p>",
        "<h2>Coverage: how much listening a disk holds</h2>",
        '<p class="muted">Recordings sorted from most to least listened: the curve shows '
        "what share of all listening you cover when you keep the top of the list, against "
        "the storage it takes. Shaded bands are the tiers.</p>",
        chart(d["curve"], d["tiers"]),
        legend(d["tiers"]),
        "<h2>Tiers and torrents</h2>",
    ]
    if d["tiers"]:
        parts.append(
            "<table><thead><tr><th>tier</th><th>recordings</th><th>size</th>"
            "<th>share of listening</th><th>with the tiers above</th><th>torrents</th>"
            "</tr></thead><tbody>"
        )
        for t in d["tiers"]:
            links = "<br>".join(torrent_links(x) for x in t["torrents"]) or "not sealed yet"
            items = f"{t['items']:,}"
            if t["packed_items"] < t["items"]:
                items += f'<br><span class="muted">{t["packed_items"]:,} packed so far</span>'
            cum = "" if t["cumulative_share"] is None else pct(t["cumulative_share"])
            parts.append(
                f'<tr><td class="tier">{esc(t["tier"])}</td><td class="n">{items}</td>'
                f'<td class="n">{esc(format_size(t["bytes"]))}</td>'
                f'<td class="n">{esc(pct(t["share"]))}</td><td class="n">{esc(cum)}</td>'
                f"<td>{links}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No pack is sealed yet: run <code>ccmirror pack</code>.</p>")

    parts.append("<h2>Licences</h2>")
    if d["licences"]:
        parts.append(
            "<table><thead><tr><th>licence</th><th>id</th><th>files</th><th>size</th>"
            "</tr></thead><tbody>"
        )
        for lic in d["licences"]:
            parts.append(
                f'<tr><td class="t">{link(lic["url"], text(lic["name"]))}</td>'
                f'<td class="t"><code>{short(lic["id"])}</code></td>'
                f'<td class="n">{lic["files"]:,}</td>'
                f'<td class="n">{esc(format_size(lic["bytes"] or 0))}</td></tr>'
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No files are packed yet.</p>")

    if d["top"]:
        parts.append(
            "<h2>Most listened</h2><table><thead><tr><th>title</th><th>creator</th>"
            "<th>licence</th><th>tier</th><th>share of listening</th></tr></thead><tbody>"
        )
        for r in d["top"]:
            title = text(r["title"] or f"{r['source']}:{r['source_id']}")
            parts.append(
                f'<tr><td class="t">{link(r["source_url"], title)}</td>'
                f'<td class="t">{text(r["creator"])}</td>'
                f'<td class="t">{short(r["declared_licence_id"])}</td>'
                f'<td class="n">{esc(r["tier"] if r["tier"] is not None else "")}</td>'
                f'<td class="n">{esc(pct(r["share"]))}</td></tr>'
            )
        parts.append("</tbody></table>")

    parts.append("<h2>The catalogue itself</h2>")
    meta = d["metadata"]
    if meta:
        parts.append(
            "<p>The whole catalogue (items, files, checksums, licences, verdicts and their "
            "evidence, popularity, tiers, packs) as gzipped JSON lines and as a SQLite file, "
            f"so anyone can rebuild this mirror without harvesting: {torrent_links(meta)}</p>"
        )
    else:
        parts.append("<p>No metadata torrent yet.</p>")
    parts.append(
        '<p>Machine-readable lists: <a href="torrents.json">torrents.json</a> (every '
        f'torrent), <a href="withdrawn.json">withdrawn.json</a> '
        f"({count(d['withdrawn'], 'recording')} withdrawn on request).</p>"
    )
    if d["obsolete"]:
        parts.append(
            f'<p class="muted">{count(len(d["obsolete"]), "older torrent")} obsolete (their '
            "files were repacked, or a recording was withdrawn); they are listed in "
            "torrents.json with the reason.</p>"
        )
    parts.append(
        f'<p class="muted">Generated {esc(generated_at)} by ccmirror.</p></main></body></html>'
    )
    return "\n".join(parts) + "\n"
