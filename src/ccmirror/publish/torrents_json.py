"""`public/torrents.json` (DESIGN §6): one object per sealed torrent, packs and metadata.

Every object carries our own fields and, with the same names and JSON types, those of
Anna's Archive's torrents.json, so tools written for that list (seeding planners, mirror
dashboards) read ours unchanged. Their counts (`seeders`, `leechers`, `completed`) are
integers, 0 and `stats_scraped_at: null` when no scrape was asked for (as Anna's Archive
publishes a torrent it has not scraped yet); `[torrents] scrape = true` fills them from a
tracker scrape at publish time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.packs import pack_licence_counts, sealed_packs_listed
from ccmirror.fsutil import atomic_write_json
from ccmirror.magnet import magnet_link
from ccmirror.mirror import Mirror
from ccmirror.seedplan import scrape

# The alphabet of the short UUIDs Anna's Archive puts in `random` (shortuuid's base57).
_B57 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def random_field(btih: str | None, name: str) -> str:
    """A 22-character base57 string like Anna's Archive's `random`, derived from the
    info-hash so the published list keeps its bytes from one run to the next."""
    n = int.from_bytes(hashlib.sha256(f"ccmirror:{btih or name}".encode()).digest()[:16], "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 57)
        out.append(_B57[r])
    return "".join(out)


def torrent_url(mirror: Mirror, name: str) -> str:
    """The .torrent's URL: absolute under `[mirror] public_url`, else relative to
    torrents.json (public/torrents/<name>.torrent)."""
    rel = f"torrents/{quote(name, safe='')}.torrent"
    return f"{mirror.manifest.public_url}{rel}" if mirror.manifest.public_url else rel


def _aa_fields(mirror: Mirror, p: Any, magnet: str, stats: dict[str, Any]) -> dict[str, Any]:
    payload = mirror.packs_dir / p["name"]
    return {
        "url": torrent_url(mirror, p["name"]),
        "top_level_group_name": mirror.name,
        "group_name": "metadata" if p["is_metadata"] else f"tier{p['tier']}",
        "display_name": f"{p['name']}.torrent",
        "added_to_torrents_list_at": (p["sealed_at"] or p["created_at"] or "")[:10],
        "is_metadata": bool(p["is_metadata"]),
        "btih": p["info_hash_v1"],
        "magnet_link": magnet,
        "torrent_size": p["torrent_size"] or 0,
        "num_files": p["num_files"] or 0,
        "data_size": p["data_size"] or 0,
        # This mirror seeds what it still holds (`ccmirror seed` serves packs/).
        "aa_currently_seeding": bool(not p["obsolete"] and payload.is_dir()),
        "obsolete": bool(p["obsolete"]),
        "embargo": False,
        "seeders": stats.get("seeders") or 0,
        "leechers": stats.get("leechers") or 0,
        "completed": stats.get("completed") or 0,
        "stats_scraped_at": stats.get("at"),
        "partially_broken": False,
        "random": random_field(p["info_hash_v1"] or p["info_hash_v2"], p["name"]),
    }


def _swarm_stats(mirror: Mirror, packs: list[Any]) -> dict[str, dict[str, Any]]:
    """name -> {seeders, leechers, at} from a tracker scrape, when the manifest asks."""
    if not mirror.manifest.torrents.scrape:
        return {}
    files = [
        (p["name"], mirror.data_dir / p["torrent_path"])
        for p in packs
        if not p["obsolete"] and p["torrent_path"]
    ]
    files = [(n, f) for n, f in files if f.is_file()]
    counts = scrape(files)
    at = utcnow().rstrip("Z")  # Anna's Archive's form: 2025-08-14T12:11:10
    return {name: {**c, "at": at} for name, c in counts.items() if c.get("seeders") is not None}


def torrents_list(mirror: Mirror) -> list[dict[str, Any]]:
    """The torrents.json entries, packs by tier and sequence, metadata torrents last."""
    db = mirror.db
    licences = pack_licence_counts(db)
    packs = sealed_packs_listed(db)
    stats = _swarm_stats(mirror, packs)
    out = []
    for p in packs:
        # The trackers written into the torrent (0004); the manifest's for older rows.
        raw = p["trackers"] if "trackers" in p.keys() else None  # noqa: SIM118 (sqlite3.Row)
        trackers = json.loads(raw) if raw else list(mirror.manifest.torrents.trackers)
        magnet = magnet_link(
            p["name"],
            p["info_hash_v1"],
            p["info_hash_v2"],
            trackers,
            size=p["data_size"],
            web_seeds=json.loads(p["web_seeds"] or "[]"),
        )
        out.append(
            {
                "name": p["name"],
                "tier": p["tier"],
                "btmh": f"1220{p['info_hash_v2']}" if p["info_hash_v2"] else None,
                "torrent_path": p["torrent_path"],
                "popularity_share": p["popularity"],
                "licences": licences.get(p["id"], {}),
                "added_at": p["sealed_at"],
                "format": p["format"],
                **_aa_fields(mirror, p, magnet, stats.get(p["name"], {})),
            }
        )
    return out


def write_torrents_json(mirror: Mirror) -> Path:
    """Write public/torrents.json atomically; return its path."""
    path = mirror.public_dir / "torrents.json"
    atomic_write_json(path, torrents_list(mirror))
    return path
