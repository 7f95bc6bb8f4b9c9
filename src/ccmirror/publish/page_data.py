"""What the index page shows, read from the catalogue (and torrents.json for magnets).

Kept apart from the HTML so the numbers can be tested without parsing markup.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Callable
from typing import Any

from ccmirror.catalogue.listening import coverage_curves, top_items
from ccmirror.catalogue.site import (
    items_ok,
    packed_items_per_tier,
    packed_licences,
    packed_totals,
    sealed_packs,
    withdrawal_count,
)
from ccmirror.catalogue.tiers import ranking
from ccmirror.licence import publishable_verdicts
from ccmirror.licence.normalise import licence_info
from ccmirror.magnet import magnet_link
from ccmirror.mirror import Mirror
from ccmirror.tiers import sizing, tier_summary

CHART_POINTS = 400
TOP_ITEMS = 10


def licence_name(licence_id: str) -> tuple[str, str | None]:
    """A readable name and canonical URL; the id itself for an id CC's table lacks."""
    info = licence_info(licence_id)
    if not info:
        return licence_id, None
    return info["name"] or licence_id, info["url"]


def contact_link(contact: str | None) -> dict[str, str] | None:
    """`[mirror] contact` as a link: an e-mail address becomes a mailto: link."""
    if not contact:
        return None
    if contact.startswith("mailto:"):
        return {"href": contact, "label": urllib.parse.unquote(contact[7:].split("?")[0])}
    if "@" in contact and "://" not in contact:
        return {"href": "mailto:" + contact, "label": contact}
    return {"href": contact, "label": contact}


def _torrent(
    row: sqlite3.Row,
    by_name: dict[str, dict[str, Any]],
    trackers: list[str],
    published: set[str] | frozenset[str] = frozenset(),
) -> dict:
    entry = by_name.get(row["name"], {})
    btih = entry.get("btih") or row["info_hash_v1"] or (row["info_hash_v2"] or "")[:40]
    fallback = magnet_link(
        row["name"],
        row["info_hash_v1"],
        row["info_hash_v2"],
        json.loads(row["trackers"]) if row["trackers"] else trackers,
        size=row["data_size"],
        web_seeds=json.loads(row["web_seeds"] or "[]"),
    )
    name = urllib.parse.quote(row["name"], safe="")
    live = not row["obsolete"] and not row["is_metadata"]
    return {
        # Links relative to public/: the site is served alone (DESIGN §3).
        "torrent_href": f"torrents/{name}.torrent" if row["name"] in published else None,
        "page_href": f"packs/{name}.html" if live else None,
        "name": row["name"],
        "tier": row["tier"],
        "btih": btih,
        "magnet_link": entry.get("magnet_link") or fallback,
        "torrent_path": row["torrent_path"],
        "data_size": row["data_size"] or 0,
        "num_files": row["num_files"] or 0,
        "obsolete": bool(row["obsolete"]),
        "obsolete_reason": row["obsolete_reason"],
        "sealed_at": row["sealed_at"],
    }


def page_data(
    mirror: Mirror,
    torrents: list[dict[str, Any]],
    published: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """What the index shows; `published`: the packs whose .torrent is in public/torrents/."""
    db = mirror.db
    by_name = {t.get("name"): t for t in torrents if isinstance(t, dict)}
    trackers = list(mirror.manifest.torrents.trackers)
    verdicts = publishable_verdicts(mirror.manifest.licence.require_embedded)

    def torrent(p: sqlite3.Row) -> dict[str, Any]:
        return _torrent(p, by_name, trackers, published)

    # The ranking's figures from SQLite: no object per item (issue 12).
    rk, sz = ranking(db, mirror.manifest.tiers.shares), sizing(mirror)
    packs = sealed_packs(db)
    live = [p for p in packs if not p["is_metadata"] and not p["obsolete"]]
    tiers = _tiers(tier_summary(mirror, rk), live, packed_items_per_tier(db), torrent)
    packed_files, packed_items, packed_bytes = packed_totals(db)
    # The most listened recordings that can be published, by their share of the mirror's
    # listening (raw counts of different sources are not comparable).
    top = top_items(db, rk, sz, verdicts, TOP_ITEMS)
    curve, curve_originals = coverage_curves(db, rk, sz, CHART_POINTS)
    meta = [p for p in packs if p["is_metadata"] and not p["obsolete"]]
    return {
        "name": mirror.name,
        "items": items_ok(db),
        "packed_items": packed_items,
        "packed_files": packed_files,
        "packed_bytes": packed_bytes,
        "torrents": len(live),
        "obsolete": [torrent(p) for p in packs if p["obsolete"] and not p["is_metadata"]],
        "tiers": [tiers[k] for k in sorted(tiers)],
        "shares": list(mirror.manifest.tiers.shares),
        "licences": _licences(db),
        "curve": curve,
        # With compact tiers: the same ranking kept as originals, to show what they gain.
        "curve_originals": curve_originals if mirror.manifest.tiers.compact_tiers else None,
        "top": top,
        "metadata": torrent(meta[-1]) if meta else None,
        "withdrawn": withdrawal_count(db),
    }


def _tiers(
    summary: list[dict[str, Any]],
    live: list[sqlite3.Row],
    packed_items: dict[int, int],
    torrent: Callable[[sqlite3.Row], dict[str, Any]],
) -> dict[int, dict[str, Any]]:
    """Tier -> its row on the page: the ranking's figures and its live torrents."""
    tiers: dict[int, dict[str, Any]] = {}
    for t in summary:
        tiers[t["tier"]] = {
            "tier": t["tier"],
            "items": t["items"],
            "packed_items": packed_items.get(t["tier"], 0),
            "bytes": 0,
            "share": t["popularity_share"],
            "cumulative_share": t["cumulative_share"],
            "cumulative_bytes": t["cumulative_bytes"],
            "torrents": [],
        }
    for p in live:
        t = tiers.setdefault(
            p["tier"],
            {
                "tier": p["tier"],
                "items": 0,
                "packed_items": packed_items.get(p["tier"], 0),
                "bytes": 0,
                "share": 0.0,
                "cumulative_share": None,
                "cumulative_bytes": None,
                "torrents": [],
            },
        )
        t["bytes"] += p["data_size"] or 0
        t["torrents"].append(torrent(p))
    return tiers


def _licences(db: sqlite3.Connection) -> list[dict[str, Any]]:
    licences = []
    for r in packed_licences(db):
        lid = r["licence_id"] or "unknown"
        name, url = licence_name(lid)
        licences.append(
            {"id": lid, "name": name, "url": url or r["url"], "files": r["n"], "bytes": r["bytes"]}
        )
    return licences
