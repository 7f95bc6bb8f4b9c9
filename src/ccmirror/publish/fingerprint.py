"""What publish last published, as a fingerprint in `<data_dir>/sync-state.json`: sync
publishes only when it changed, and the dry run says whether it would."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from ccmirror.catalogue.site import published_state
from ccmirror.mirror import Mirror
from ccmirror.publish.site import SITE_LAYOUT

__all__ = ["STATE_FILE", "publish_fingerprint", "read_state"]

STATE_FILE = "sync-state.json"


def read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def publish_fingerprint(mirror: Mirror) -> str:
    """A digest of everything publish renders: packs, item and file states, the manifest.

    A few aggregate queries (milliseconds on a large catalogue); any change to a pack,
    an item's status, a file's verdict or the manifest's bytes changes it.
    """
    h = hashlib.sha256(SITE_LAYOUT.encode())
    with contextlib.suppress(OSError):
        h.update(mirror.manifest.path.read_bytes())
    for rows in published_state(mirror.db):
        h.update(repr(rows).encode())
    return h.hexdigest()
