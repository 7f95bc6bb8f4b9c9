"""`public/torrents.json` (DESIGN §6): one object per sealed torrent, packs and metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ccmirror.fsutil import atomic_write_json
from ccmirror.mirror import Mirror
from ccmirror.packs.torrent import magnet_link


def torrents_list(mirror: Mirror) -> list[dict[str, Any]]:
    """The torrents.json entries, packs by tier and sequence, metadata torrents last."""
    db = mirror.db
    licences: dict[int, dict[str, int]] = {}
    for r in db.execute(
        "SELECT pf.pack_id, coalesce(f.licence_id, i.declared_licence_id, 'unknown') AS lid,"
        " count(*) AS n FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        " JOIN items i ON i.id = f.item_id GROUP BY pf.pack_id, lid ORDER BY lid"
    ):
        licences.setdefault(r["pack_id"], {})[r["lid"]] = r["n"]
    out = []
    for p in db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' ORDER BY is_metadata, tier, seq, id"
    ):
        # The trackers written into the torrent (0004); the manifest's for older rows.
        raw = p["trackers"] if "trackers" in p.keys() else None  # noqa: SIM118 (sqlite3.Row)
        trackers = json.loads(raw) if raw else list(mirror.manifest.torrents.trackers)
        out.append(
            {
                "name": p["name"],
                "tier": p["tier"],
                "btih": p["info_hash_v1"],
                "btmh": f"1220{p['info_hash_v2']}" if p["info_hash_v2"] else None,
                "magnet_link": magnet_link(
                    p["name"], p["info_hash_v1"], p["info_hash_v2"], trackers
                ),
                "torrent_path": p["torrent_path"],
                "torrent_size": p["torrent_size"],
                "num_files": p["num_files"],
                "data_size": p["data_size"],
                "popularity_share": p["popularity"],
                "licences": licences.get(p["id"], {}),
                "added_at": p["sealed_at"],
                "obsolete": bool(p["obsolete"]),
                "is_metadata": bool(p["is_metadata"]),
                "format": p["format"],
            }
        )
    return out


def write_torrents_json(mirror: Mirror) -> Path:
    """Write public/torrents.json atomically; return its path."""
    path = mirror.public_dir / "torrents.json"
    atomic_write_json(path, torrents_list(mirror))
    return path
