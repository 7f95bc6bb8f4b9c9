"""Cover images on the pack pages: copies inside `public/covers/<pack>/<path>`.

`public/` is self-contained, so a pack page links a copy of each item's cover made here
(publish is the only writer of public/), never the pack's payload or the store. Only a
live sealed pack's images whose verdict allows them are copied (`catalogue.artwork.
pack_artwork`); covers of packs gone obsolete or withdrawn are removed with their pages.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ccmirror.catalogue.artwork import pack_artwork
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import atomic_write_bytes, safe_join
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror

log = logging.getLogger("ccmirror.publish")

COVERS_DIR = "covers"
MAX_PAGE_COVERS = 200  # images shown on one page at most (MANIFEST.csv lists them all)
_PREFERRED = ("cover", "front", "folder")  # an item's images named so come first


def _rank(r: Any) -> tuple[str, int, str]:
    base = r["path"].rsplit("/", 1)[-1].lower()
    return (r["source_id"], 0 if base.startswith(_PREFERRED) else 1, r["path"])


def copy_covers(mirror: Mirror, pack: str) -> list[dict[str, Any]]:
    """Copy the cover images of `pack` into public/covers/<pack>/ (by item, those named
    cover/front/folder first); return [{href (relative to public/packs/), title, path,
    size, ...}]. Stale copies in that folder are removed."""
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    rows = sorted(pack_artwork(mirror.db, pack, allowed), key=_rank)
    out_dir = mirror.public_dir / COVERS_DIR / pack
    kept: set[Path] = set()
    covers = []
    for r in rows[:MAX_PAGE_COVERS]:
        try:
            src = safe_join(mirror.packs_dir, pack, r["path"])
            dest = safe_join(out_dir, r["path"])
        except (UnsafeName, ValueError) as e:
            log.warning("publish: %s: cover %s not copied (%s)", pack, r["path"], e)
            continue
        try:
            if not (dest.is_file() and dest.stat().st_size == src.stat().st_size):
                # The bytes of a sealed pack (verified, publishable) never change.
                atomic_write_bytes(dest, src.read_bytes())
        except OSError as e:
            log.warning("publish: %s: cover %s not copied (%s)", pack, r["path"], e)
            continue
        kept.add(dest)
        href = f"../{COVERS_DIR}/{quote(pack)}/{quote(r['path'])}"
        covers.append({**dict(r), "href": href, "title": r["title"] or r["source_id"]})
    _prune_files(out_dir, kept)
    return covers


def _prune_files(folder: Path, keep: set[Path]) -> None:
    if not folder.is_dir():
        return
    for f in sorted(folder.rglob("*"), reverse=True):
        if f.is_symlink() or (f.is_file() and f not in keep):
            f.unlink()
        elif f.is_dir() and not any(f.iterdir()):
            f.rmdir()


def prune_covers(mirror: Mirror, packs: set[str]) -> None:
    """Remove public/covers/<pack>/ of every pack not in `packs` (no page any more)."""
    root = mirror.public_dir / COVERS_DIR
    if not root.is_dir():
        return
    for d in root.iterdir():
        if d.name not in packs:
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d)
            else:
                d.unlink()
