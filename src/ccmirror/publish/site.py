"""The public site: index.html, one page per pack, and the .torrent files beside them.

`public/` is self-contained (DESIGN §3): every link on its pages resolves inside it, so it
can be served alone; nothing in it comes from store/, quarantine/ or the catalogue file.
A page whose only change would be its "Generated" line is left untouched, so an idle
publish changes no mtime.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror.catalogue import utcnow
from ccmirror.catalogue.site import sealed_packs
from ccmirror.fsutil import atomic_write_bytes, atomic_write_text, safe_join
from ccmirror.mirror import Mirror
from ccmirror.publish.covers import copy_covers, prune_covers
from ccmirror.publish.page_data import contact_link, page_data
from ccmirror.publish.pages import render_index, render_pack

log = logging.getLogger("ccmirror.publish")

_GENERATED = re.compile(r"Generated [^<]* by ccmirror\.")
# Pack names are [a-z0-9-] (DESIGN §6); anything else never becomes a file name here.
_PACK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Part of sync's publish fingerprint: a new layout of public/ is published by the next sync.
SITE_LAYOUT = "site-2"
MAX_PAGE_FILES = 20_000  # a pack page lists at most this many files (the CSV has them all)


def write_page(path: Path, page: str) -> bool:
    """Write a page unless only its "Generated <time>" line would change."""
    try:
        old = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        old = None
    if old is not None and _GENERATED.sub("", old) == _GENERATED.sub("", page):
        return False
    return atomic_write_text(path, page)


def _sealed(mirror: Mirror) -> list[sqlite3.Row]:
    return sealed_packs(mirror.db)


def copy_torrents(mirror: Mirror, packs: list[sqlite3.Row]) -> set[str]:
    """public/torrents/<name>.torrent for every sealed pack whose .torrent exists; stale
    copies (a pack no longer sealed) are removed. Returns the names copied."""
    out_dir = mirror.public_dir / "torrents"
    copied: set[str] = set()
    for p in packs:
        if not _PACK_NAME.match(p["name"] or ""):
            continue
        try:
            data = mirror.abspath(p["torrent_path"] or f"torrents/{p['name']}.torrent").read_bytes()
        except (OSError, ValueError) as e:
            log.warning("publish: %s has no .torrent to publish (%s)", p["name"], e)
            continue
        atomic_write_bytes(out_dir / f"{p['name']}.torrent", data)
        copied.add(p["name"])
    _prune(out_dir, ".torrent", copied)
    return copied


def _prune(folder: Path, suffix: str, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        if f.name.endswith(suffix) and f.name[: -len(suffix)] not in keep and f.is_file():
            f.unlink()


def _clock(seconds: str | None) -> str:
    """MANIFEST.csv's duration_s as a playing time ("3:05", "1:02:03"); "" when absent."""
    try:
        total = round(float(seconds or ""))
    except ValueError:
        return ""
    if total <= 0:
        return ""
    h, rest = divmod(total, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def manifest_rows(path: Path, limit: int = MAX_PAGE_FILES) -> tuple[list[dict[str, Any]], str]:
    """The audio files a pack's MANIFEST.csv lists: title, creator, licence, size, links."""
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                if len(rows) >= limit:
                    break
                if r.get("kind") == "artwork":
                    continue  # shown under "Cover art" (copy_covers)
                try:
                    size = int(r.get("size") or 0)
                except ValueError:
                    size = 0
                rows.append(
                    {
                        "path": r.get("path") or "",
                        "title": r.get("title") or "",
                        "creator": r.get("creator") or "",
                        "album": r.get("album") or "",
                        "licence_id": r.get("licence_id") or "",
                        "licence_url": r.get("licence_url") or "",
                        "source_url": r.get("source_url") or "",
                        "size": size,
                        # Packs sealed before per-recording metadata have neither column.
                        "genre": r.get("genre") or "",
                        "duration": _clock(r.get("duration_s")),
                    }
                )
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return rows, f"MANIFEST.csv could not be read ({type(e).__name__})"
    return rows, ""


def write_pack_pages(
    mirror: Mirror, data: dict[str, Any], now: str, contact: dict | None
) -> list[Path]:
    """public/packs/<name>.html for every live pack; pages of packs gone obsolete are
    removed (a withdrawn recording's title leaves the site at once)."""
    out_dir = mirror.public_dir / "packs"
    written: list[Path] = []
    names: set[str] = set()
    for tier in data["tiers"]:
        for t in tier["torrents"]:
            if not t.get("page_href"):
                continue
            try:
                csv_path = safe_join(mirror.packs_dir, t["name"], "MANIFEST.csv")
            except ValueError:
                continue
            files, error = manifest_rows(csv_path)
            page = {
                "name": t["name"],
                "tier": t["tier"],
                "sealed_at": t.get("sealed_at"),
                "torrent": {**t, "page_href": None},
                "files": files,
                "error": error,
                "covers": copy_covers(mirror, t["name"]),
            }
            path = out_dir / f"{t['name']}.html"
            write_page(path, render_pack(page, mirror.name, now, contact))
            written.append(path)
            names.add(t["name"])
    _prune(out_dir, ".html", names)
    prune_covers(mirror, names)
    return written


def write_site(
    mirror: Mirror, torrents: list[dict[str, Any]] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Render the whole public site from the catalogue (magnets from torrents.json)."""
    if torrents is None:
        try:
            torrents = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
        except (OSError, ValueError):
            torrents = []
    copied = copy_torrents(mirror, _sealed(mirror))
    data = page_data(mirror, torrents, published=copied)
    contact = contact_link(getattr(mirror.manifest, "contact", None))
    now = utcnow()
    pages = write_pack_pages(mirror, data, now, contact)
    index = mirror.public_dir / "index.html"
    write_page(index, render_index(data, now, contact))
    data["pack_pages"] = len(pages)
    data["torrent_files"] = len(copied)
    return index, data
