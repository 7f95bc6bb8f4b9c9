"""The verdict of a cover image (`files.kind = 'artwork'`): the item's licence, declared.

An image published with an item is part of that item, under the item's licence; JPEG and
PNG files carry no licence tags this mirror reads, so the verdict is always `declared`
(never `verified`), with a reason saying so. Under `[licence] require_embedded` that is
not publishable: artwork is then never packed (harvest does not even fetch it, see
`catalogue.artwork`). Bytes that are not a JPEG or PNG image are `unreadable`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ccmirror.licence.normalise import by_id
from ccmirror.licence.verdict import Verdict

R_ARTWORK = "artwork: an image states no licence; it is the item's, as the source declares it"
R_ARTWORK_EMBEDDED = R_ARTWORK + " (never packed under require_embedded: no embedded proof)"
R_NOT_IMAGE = "artwork: not a JPEG or PNG image"
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
ARTWORK_NAME = re.compile(r"\.(jpe?g|png)$", re.IGNORECASE)


def is_image(path: Path) -> bool:
    """Whether the file starts as a JPEG or a PNG does."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head.startswith(_MAGIC)


def artwork_verdict(
    path: Path,
    *,
    size: int | None,
    declared_id: str | None,
    declared_reason: str | None,
    require_embedded: bool,
    source_evidence: list[dict[str, str]],
) -> Verdict:
    """The verdict of the image at `path` of an item declaring `declared_id`."""
    v = Verdict("unreadable", R_NOT_IMAGE, evidence=list(source_evidence))
    declared = by_id(declared_id)
    if declared is not None:
        v.licence_id, v.licence_url = declared.id, declared.url
    actual = path.stat().st_size
    if size is not None and size != actual:
        v.error = f"size {actual} differs from catalogue size {size}"
        v.evidence.append({"tag": "catalogue:size", "value": v.error})
        return v
    try:
        image = is_image(path)
    except OSError as e:
        v.error = f"{type(e).__name__}: {e}"
        return v
    if not image:
        v.error = R_NOT_IMAGE
        return v
    if declared_reason is not None or declared is None:
        v.verdict, v.reason = "rejected", declared_reason or "not a recognised CC licence"
        return v
    v.verdict = "declared"
    v.reason = R_ARTWORK_EMBEDDED if require_embedded else R_ARTWORK
    return v
