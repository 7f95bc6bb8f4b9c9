"""`publish`: torrents.json, the metadata torrent, index.html and withdrawn.json."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ccmirror.catalogue import utcnow
from ccmirror.fsutil import atomic_write_text
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.publish.index_html import render
from ccmirror.publish.metadata import publish_metadata
from ccmirror.publish.page_data import page_data
from ccmirror.withdraw import purge_withdrawn, write_withdrawn_json

log = logging.getLogger("ccmirror.publish")

_GENERATED = re.compile(r"Generated [^<]* by ccmirror\.")


def write_index_html(
    mirror: Mirror, torrents: list[dict[str, Any]] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Render public/index.html from the catalogue (magnets from torrents.json)."""
    if torrents is None:
        try:
            torrents = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
        except (OSError, ValueError):
            torrents = []
    data = page_data(mirror, torrents)
    index = mirror.public_dir / "index.html"
    page = render(data, utcnow())
    try:
        old = index.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        old = None
    # Only the "Generated <time>" line differs: the page says nothing new, leave it be.
    if old is None or _GENERATED.sub("", old) != _GENERATED.sub("", page):
        atomic_write_text(index, page)
    return index, data


def publish(mirror: Mirror, *, reporter: Reporter | None = None) -> dict[str, Any]:
    """Write everything under `public/`; safe to run as often as cron likes."""
    from ccmirror.publish.torrents_json import write_torrents_json

    reporter = reporter or NullReporter()
    reporter.start("publish", 4, "steps")
    # A takedown interrupted by a crash is finished here, before anything is published.
    purged = purge_withdrawn(mirror)
    withdrawn = write_withdrawn_json(mirror)
    reporter.advance()
    metadata = publish_metadata(mirror)
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
        "packed_files": data["packed_files"],
        "packed_bytes": data["packed_bytes"],
    }
