"""Shape checks on what the IA API answers, before the harvester reads it."""

from __future__ import annotations

import logging
from typing import Any

from ccmirror.errors import UnsafeName
from ccmirror.fsutil import safe_relpath

log = logging.getLogger("ccmirror.sources.ia")


def safe_identifier(ident: str) -> bool:
    """An identifier usable as a folder name and a URL path part (IA's are [A-Za-z0-9._-])."""
    if "/" in ident:
        return False
    try:
        safe_relpath(ident)
    except UnsafeName:
        return False
    return True


def checked_metadata(identifier: str, meta: Any) -> dict[str, Any]:
    """The item document, if it has the shape the harvest reads; ValueError otherwise (the
    item is then failed and retried, never recorded from half a document). File entries
    that are not objects are dropped: one odd entry must not cost the item."""
    if not isinstance(meta, dict):
        raise ValueError(f"malformed item metadata: a JSON {type(meta).__name__}, not an object")
    if meta.get("error") and not meta.get("metadata") and not meta.get("files"):
        # archive.org answers some failed reads with HTTP 200 and {"error": "..."}: a
        # failed read (retried by the next run), never an item without a licence.
        raise ValueError(f"the archive answered an error: {str(meta['error'])[:200]}")
    if not isinstance(meta.get("metadata") or {}, dict):
        raise ValueError("malformed item metadata: 'metadata' is not an object")
    files = meta.get("files") or []
    if not isinstance(files, list):
        raise ValueError("malformed item metadata: 'files' is not a list")
    kept = [f for f in files if isinstance(f, dict)]
    if len(kept) != len(files):
        log.warning(
            "ia: %s: %d file entries that are not objects ignored",
            identifier,
            len(files) - len(kept),
        )
        meta = {**meta, "files": kept}
    return meta
