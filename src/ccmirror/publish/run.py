"""`publish`: torrents.json, the metadata torrent, index.html and withdrawn.json.

The one writer of public/: pack and withdraw change the catalogue, then ask for the parts
they changed to be rendered now (`refresh_torrents`, `refresh_after_withdrawal`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ccmirror.mirror import Mirror
from ccmirror.packs.rebuild import repair_torrents
from ccmirror.progress import NullReporter, Reporter
from ccmirror.publish.metadata import publish_metadata
from ccmirror.publish.site import write_site
from ccmirror.publish.torrents_json import write_torrents_json
from ccmirror.publish.withdrawn import write_withdrawn_json
from ccmirror.purge import purge_withdrawn

log = logging.getLogger("ccmirror.publish")


def write_index_html(
    mirror: Mirror, torrents: list[dict[str, Any]] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Render the public site (index.html, pack pages, .torrent copies) from the catalogue."""
    return write_site(mirror, torrents)


def refresh_torrents(mirror: Mirror) -> Path:
    """torrents.json again (pack: new and obsolete packs listed at once)."""
    return write_torrents_json(mirror)


def refresh_after_withdrawal(mirror: Mirror) -> dict[str, str]:
    """withdrawn.json, torrents.json and the pages again: a takedown shows at once."""
    withdrawn = write_withdrawn_json(mirror)
    torrents_json = write_torrents_json(mirror)
    index, _ = write_index_html(mirror)
    rel = mirror.data_dir
    return {
        "withdrawn_json": str(withdrawn.relative_to(rel)),
        "torrents_json": str(torrents_json.relative_to(rel)),
        "index_html": str(index.relative_to(rel)),
    }


def publish(mirror: Mirror, *, reporter: Reporter | None = None) -> dict[str, Any]:
    """Write everything under `public/`; safe to run as often as cron likes."""
    reporter = reporter or NullReporter()
    reporter.start("publish", 4, "steps")
    # A takedown interrupted by a crash is finished here, before anything is published.
    purged = purge_withdrawn(mirror)
    withdrawn = write_withdrawn_json(mirror)
    reporter.advance()
    metadata = publish_metadata(mirror)
    # After the metadata torrent: one whose payload was gone has just been replaced.
    repair = repair_torrents(mirror)
    reporter.advance()
    tj = write_torrents_json(mirror)
    torrents = json.loads(tj.read_text("utf-8"))
    reporter.advance()
    index, data = write_index_html(mirror, torrents)
    reporter.advance()
    reporter.finish()
    rel = mirror.data_dir
    return {
        "torrents_json": str(tj.relative_to(rel)),
        "torrents": sum(1 for t in torrents if not t.get("obsolete")),
        "obsolete_torrents": sum(1 for t in torrents if t.get("obsolete")),
        "index_html": str(index.relative_to(rel)),
        "withdrawn_json": str(withdrawn.relative_to(rel)),
        "withdrawn": data["withdrawn"],
        "withdrawn_files_deleted": purged,
        "metadata": metadata,
        "repaired": repair["repaired"],
        "failed": len(repair["failed"]),
        "packed_files": data["packed_files"],
        "packed_bytes": data["packed_bytes"],
        "pack_pages": data["pack_pages"],
        "torrent_files": data["torrent_files"],
    }
