"""What a manifest says, as frozen dataclasses (DESIGN §2), and the defaults it starts from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Never mirrored, whatever the manifest says: rights disputed (78rpm, georgeblood) or
# trading-only, not CC (etree).
ALWAYS_EXCLUDED = ("78rpm", "georgeblood", "etree")
DEFAULT_IA_ENDPOINT = "https://archive.org"
DEFAULT_SHARES = (0.5, 0.9, 0.99, 1.0)
DEFAULT_TRACKERS = ("udp://tracker.opentrackr.org:1337/announce",)
NAME_RE = re.compile(r"^[a-z0-9-]+$")
TORRENT_FORMATS = ("v1", "hybrid", "v2")
QUALITIES = ("original", "compact")
DEFAULT_COMPACT_BITRATE = 96_000  # bit/s: Opus at 96 kbit/s is transparent for most music
DEFAULT_DOWNLOADS = 8  # a source's downloads in flight (fetch), 1 to MAX_DOWNLOADS
MAX_DOWNLOADS = 16  # the most requests fetch ever has in flight to one host


@dataclass(frozen=True)
class IASource:
    query: str
    endpoint: str = DEFAULT_IA_ENDPOINT
    files: str | tuple[str, ...] = "original"
    exclude_collections: tuple[str, ...] = ALWAYS_EXCLUDED
    max_items: int = 0
    kind: str = "ia"
    downloads: int = DEFAULT_DOWNLOADS

    @property
    def where(self) -> str:
        """Where this source is read from, for messages and summaries."""
        return self.endpoint


@dataclass(frozen=True)
class FMASource:
    metadata: str  # absolute path, or http(s) URL
    audio_root: str | None = None  # absolute path of a tree or fma_full.zip
    audio_base_url: str | None = None
    max_items: int = 0
    kind: str = "fma"
    downloads: int = DEFAULT_DOWNLOADS

    @property
    def where(self) -> str:
        return self.metadata


Source = IASource | FMASource


@dataclass(frozen=True)
class LicenceConfig:
    allow: tuple[str, ...] | None = None  # None: the default policy (DESIGN §5)
    deny: tuple[str, ...] = ()
    require_embedded: bool = False


@dataclass(frozen=True)
class TiersConfig:
    shares: tuple[float, ...] = DEFAULT_SHARES
    quality: tuple[str, ...] = ()  # one per tier; () or a missing entry: "original"

    def quality_of(self, tier: int) -> str:
        """A 1-based tier's quality; tiers past the list (the tail after the last share,
        or a list shorter than shares) take the last entry given."""
        if not self.quality:
            return "original"
        return self.quality[min(tier, len(self.quality)) - 1] if tier >= 1 else "original"

    @property
    def compact_tiers(self) -> tuple[int, ...]:
        """1-based tiers whose quality is compact (one more tier than shares when the last
        share is below 1.0: the tail beyond it)."""
        top = len(self.shares) + (self.shares[-1] < 1.0)
        return tuple(k for k in range(1, top + 1) if self.quality_of(k) == "compact")


@dataclass(frozen=True)
class CompactConfig:
    bitrate: int = DEFAULT_COMPACT_BITRATE  # bit/s of local Opus copies


@dataclass(frozen=True)
class TorrentsConfig:
    pack_size: int = 50 * 1024**3
    format: str = "v1"
    piece_size: int | None = None  # None: automatic
    trackers: tuple[str, ...] = DEFAULT_TRACKERS
    web_seeds: tuple[str, ...] = ()
    scrape: bool = False  # publish asks the trackers for swarm counts (torrents.json)
    artwork: bool = True  # an IA item's original cover images go into its pack
    max_artwork_size: int = 10 * 1024**2  # artwork bytes per item; larger images skipped


@dataclass(frozen=True)
class FollowConfig:
    """A follower's `[follow]`: a primary's torrents.json and the space offered to it."""

    torrents: str  # http(s) URL, or an absolute path
    space: int
    dht: bool = True  # find peers through the DHT too (off: trackers and web seeds only)
    time_limit: int = 3600  # seconds one sync spends downloading; the rest resumes next run


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    data_dir: Path
    sources: tuple[Source, ...]
    licence: LicenceConfig = field(default_factory=LicenceConfig)
    tiers: TiersConfig = field(default_factory=TiersConfig)
    torrents: TorrentsConfig = field(default_factory=TorrentsConfig)
    public_url: str | None = None  # makes torrents.json `url`s absolute
    follow: FollowConfig | None = None  # a follower: no sources, packs from a primary's list
    contact: str | None = None  # shown on every public page as "takedown and contact"
    budget: int | None = None  # [mirror] budget in bytes; None: no limit
    compact: CompactConfig = field(default_factory=CompactConfig)

    @property
    def is_follower(self) -> bool:
        return self.follow is not None
