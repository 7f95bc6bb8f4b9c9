"""Mirror manifests (DESIGN §2): TOML in, frozen dataclasses out.

Every problem is a ManifestError naming the file and the key (exit 2): unknown keys,
wrong types, bad sizes, missing files. The dataclasses live in model.py, typed table access
in section.py, the per-table parsers in sources.py and tables.py; this module reads the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ccmirror.errors import ManifestError
from ccmirror.manifest.model import (
    ALWAYS_EXCLUDED,
    DEFAULT_COMPACT_BITRATE,
    DEFAULT_DOWNLOADS,
    DEFAULT_IA_ENDPOINT,
    DEFAULT_SHARES,
    DEFAULT_TRACKERS,
    MAX_DOWNLOADS,
    NAME_RE,
    QUALITIES,
    TORRENT_FORMATS,
    CompactConfig,
    FMASource,
    FollowConfig,
    IASource,
    LicenceConfig,
    Manifest,
    Source,
    TiersConfig,
    TorrentsConfig,
)
from ccmirror.manifest.section import Section, recording_keys
from ccmirror.manifest.sources import parse_sources
from ccmirror.manifest.tables import (
    parse_bitrate,
    parse_compact,
    parse_contact,
    parse_follow,
    parse_licence,
    parse_public_url,
    parse_tiers,
    parse_torrents,
)

__all__ = [
    "ALWAYS_EXCLUDED",
    "DEFAULT_COMPACT_BITRATE",
    "DEFAULT_DOWNLOADS",
    "DEFAULT_IA_ENDPOINT",
    "DEFAULT_SHARES",
    "DEFAULT_TRACKERS",
    "MAX_DOWNLOADS",
    "NAME_RE",
    "QUALITIES",
    "TORRENT_FORMATS",
    "CompactConfig",
    "FMASource",
    "FollowConfig",
    "IASource",
    "LicenceConfig",
    "Manifest",
    "ManifestError",
    "Source",
    "TiersConfig",
    "TorrentsConfig",
    "load_manifest",
    "parse_bitrate",
    "recording_keys",
    "resolve_data_dir",
]


def resolve_data_dir(manifest_path: Path, configured: str, override: str | None) -> Path:
    """--data-dir beats CCMIRROR_DATA_DIR beats the manifest's data_dir."""
    chosen = override or os.environ.get("CCMIRROR_DATA_DIR") or configured
    p = Path(os.path.expanduser(chosen))
    if not p.is_absolute():
        base = Path.cwd() if (override or os.environ.get("CCMIRROR_DATA_DIR")) else None
        p = (base or manifest_path.parent) / p
    return Path(os.path.abspath(p))


def load_manifest(path: str | os.PathLike[str], data_dir: str | None = None) -> Manifest:
    """Read and validate a manifest. `data_dir` is the --data-dir override, if any."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(path, None, "no such manifest file") from None
    except IsADirectoryError:
        raise ManifestError(path, None, "is a directory, not a manifest file") from None
    except UnicodeDecodeError as e:
        raise ManifestError(path, None, f"not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(path, None, f"not valid TOML: {e}") from None
    except OSError as e:
        raise ManifestError(path, None, f"cannot read: {e.strerror}") from None

    top = Section(path, "", raw)
    mirror = Section(path, "mirror", top.get("mirror", dict, required=True))
    name = mirror.get("name", str, required=True)
    if not NAME_RE.match(name):
        raise mirror.fail("name", f"must match [a-z0-9-]+, not {name!r}")
    configured = mirror.get("data_dir", str, None)
    if configured is None and not (data_dir or os.environ.get("CCMIRROR_DATA_DIR")):
        raise mirror.fail("data_dir", "is required (or pass --data-dir / CCMIRROR_DATA_DIR)")
    public_url = parse_public_url(mirror)
    contact = parse_contact(mirror)
    budget = mirror.size("budget", None)
    mirror.finish()
    raw_follow = top.get("follow", dict, None)
    follow = parse_follow(path, raw_follow) if raw_follow is not None else None
    raw_sources = top.get("source", list, None)
    if follow is not None and raw_sources is not None:
        raise ManifestError(path, "source", "a follower ([follow]) has no [[source]]")
    manifest = Manifest(
        path=path.resolve(),
        name=name,
        data_dir=resolve_data_dir(path.resolve(), configured or ".", data_dir),
        sources=() if follow is not None else parse_sources(path, raw_sources),
        licence=parse_licence(path, top.get("licence", dict, None)),
        tiers=parse_tiers(path, top.get("tiers", dict, None)),
        torrents=parse_torrents(path, top.get("torrents", dict, None)),
        public_url=public_url,
        follow=follow,
        contact=contact,
        budget=budget,
        compact=parse_compact(path, top.get("compact", dict, None)),
    )
    top.finish()
    return manifest
