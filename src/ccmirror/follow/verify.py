"""Trust, but verify: a followed pack is seeded only after our own checks pass.

Every file the torrent holds must be listed in its MANIFEST.csv (or be ATTRIBUTION.md or
MANIFEST.csv), every listed file must be there with its size and sha256, and every audio
file goes through our own licence check against the licence MANIFEST.csv claims for it,
under this follower's `[licence]` policy (a cover image, `kind` artwork, must be a JPEG or
PNG by name and content, and takes the claimed licence as declared). A primary cannot make a volunteer republish a
recording whose own tags say "All rights reserved".
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from ccmirror.errors import UnsafeName
from ccmirror.fsutil import CHUNK, safe_relpath
from ccmirror.licence import publishable
from ccmirror.licence.artwork import ARTWORK_NAME, artwork_verdict
from ccmirror.licence.normalise import by_id, normalise_url
from ccmirror.licence.policy import Policy
from ccmirror.licence.tags import read_tags_apart
from ccmirror.licence.verdict import decide
from ccmirror.manifest import LicenceConfig

OWN_FILES = ("ATTRIBUTION.md", "MANIFEST.csv")
# A metadata torrent (the catalogue dump) holds these and nothing else: no audio, so no
# licence to check; a list calling an audio pack "metadata" does not skip the checks.
METADATA_FILES = ("catalogue.sqlite", "catalogue.jsonl.gz")
MANIFEST_MAX_BYTES = 256 * 1024**2


def torrent_files(ti: Any) -> dict[str, int]:
    """Path inside the pack folder -> size, pad files left out (they are never on disk)."""
    fs = ti.layout()  # files() is deprecated in libtorrent 2.1
    out = {}
    for i in range(fs.num_files()):
        if fs.file_flags(i) & fs.flag_pad_file:
            continue
        path = fs.file_path(i).replace("\\", "/")
        out[path.split("/", 1)[1] if "/" in path else path] = fs.file_size(i)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest_rows(root: Path) -> list[dict[str, str]]:
    path = root / "MANIFEST.csv"
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise ValueError("MANIFEST.csv is implausibly large")
    text = path.read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    for col in ("path", "size", "sha256", "licence_id", "licence_url"):
        if rows and col not in rows[0]:
            raise ValueError(f"MANIFEST.csv has no {col} column")
    return rows


def _licence_problem(path: Path, row: dict[str, str], policy: Policy, strict: bool) -> str | None:
    claimed = by_id(row.get("licence_id") or None) or normalise_url(row.get("licence_url"))
    reason = policy.judge(claimed.id) if claimed is not None else "not a recognised CC licence"
    if row.get("kind") == "artwork":  # a cover image: no tags; it must be a JPEG or PNG
        v = artwork_verdict(
            path,
            size=None,
            declared_id=claimed.id if claimed else None,
            declared_reason=reason,
            require_embedded=strict,
            source_evidence=[],
        )
        if not ARTWORK_NAME.search(path.name):
            return f"{row['path']}: listed as artwork, but not named as a JPEG or PNG image"
    else:
        v = decide(
            read_tags_apart(path),
            policy,
            declared_id=claimed.id if claimed else None,
            declared_reason=reason,
            source=True,
        )
    if publishable(v.verdict, strict):
        return None
    said = row.get("licence_id") or row.get("licence_url") or "no licence"
    return f"{row['path']}: {v.verdict} ({v.reason}; MANIFEST.csv claims {said})"


def verify_pack(
    root: Path, ti: Any, licence: LicenceConfig, *, is_metadata: bool = False
) -> list[str]:
    """What is wrong with the downloaded pack at `root` (empty: it may be seeded)."""
    files = torrent_files(ti)
    if is_metadata:
        others = sorted(set(files) - set(METADATA_FILES))
        return [f"{f}: not a catalogue dump file in a metadata torrent" for f in others]
    if "MANIFEST.csv" not in files:
        return ["the torrent has no MANIFEST.csv"]
    try:
        rows = manifest_rows(root)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
        return [f"MANIFEST.csv cannot be read: {e}"]
    problems: list[str] = []
    listed: set[str] = set()
    policy = Policy.from_config(licence)
    for row in rows:
        rel = row.get("path") or ""
        try:
            safe = str(safe_relpath(rel))
        except UnsafeName:
            problems.append(f"MANIFEST.csv names an unsafe path: {rel!r}")
            continue
        listed.add(safe)
        if safe not in files:
            problems.append(f"{safe}: in MANIFEST.csv but not in the torrent")
            continue
        path = root / safe
        try:
            size = path.stat().st_size
            if str(size) != (row.get("size") or "").strip():
                problems.append(f"{safe}: {size} bytes, MANIFEST.csv says {row.get('size')}")
                continue
            if _sha256(path) != (row.get("sha256") or "").strip().lower():
                problems.append(f"{safe}: sha256 differs from MANIFEST.csv")
                continue
        except OSError as e:
            problems.append(f"{safe}: cannot be read ({e.strerror or e})")
            continue
        problem = _licence_problem(path, row, policy, licence.require_embedded)
        if problem:
            problems.append(problem)
    for extra in sorted(set(files) - listed - set(OWN_FILES)):
        problems.append(f"{extra}: in the torrent but not in MANIFEST.csv")
    return problems
