"""Mirror manifests (DESIGN §2): TOML in, frozen dataclasses out.

Every problem is a ManifestError naming the file and the key (exit 2): unknown keys,
wrong types, bad sizes, missing files.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccmirror.errors import ManifestError
from ccmirror.sizes import parse_size

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


# Set by `recording_keys()`: every section key the loader reads is added, as "torrents.format"
# or "source.query" (docs/manifest.md must name exactly these; a test checks).
_KEYS_READ: ContextVar[set[str] | None] = ContextVar("ccmirror_manifest_keys", default=None)


@contextmanager
def recording_keys() -> Iterator[set[str]]:
    """Collect the dotted names of the keys read by the loads inside the block."""
    keys: set[str] = set()
    token = _KEYS_READ.set(keys)
    try:
        yield keys
    finally:
        _KEYS_READ.reset(token)


class _Section:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, path: Path, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ManifestError(path, prefix, "must be a table")
        self.path, self.prefix, self.data = path, prefix, data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.path, self.key(name), problem)

    def get(self, name: str, typ: type | tuple[type, ...], default: Any = None, required=False):
        self.seen.add(name)
        recorder = _KEYS_READ.get()
        if recorder is not None and self.prefix:
            recorder.add(re.sub(r"\[\d+\]", "", self.key(name)))
        if name not in self.data:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.data[name]
        # bool is an int in Python; TOML true is never a number here.
        if isinstance(value, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
            raise self.fail(name, f"must be {_typename(typ)}, not a boolean")
        if not isinstance(value, typ):
            raise self.fail(name, f"must be {_typename(typ)}, not {type(value).__name__}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return tuple(value)

    def size(self, name: str, default: int | None) -> int | None:
        value = self.get(name, (str, int), None)
        if value is None:
            return default
        try:
            return parse_size(value)
        except ValueError as e:
            raise self.fail(name, str(e)) from None

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _typename(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names.update({list: "a list", dict: "a table"})
    types = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(names.get(t, t.__name__) for t in types)


def _local_path(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _ia_source(sec: _Section) -> IASource:
    query = sec.get("query", str, required=True)
    if not query.strip():
        raise sec.fail("query", "must not be empty")
    endpoint = sec.get("endpoint", str, DEFAULT_IA_ENDPOINT).rstrip("/")
    if not _is_url(endpoint):
        raise sec.fail("endpoint", f"must be an http(s) URL, not {endpoint!r}")
    files = sec.get("files", (str, list), "original")
    if isinstance(files, str):
        if files != "original":
            raise sec.fail("files", 'must be "original" or a list of IA format names')
    else:
        files = sec.strings("files")
        if not files:
            raise sec.fail("files", "must not be an empty list")
    extra = sec.strings("exclude_collections")
    max_items = sec.get("max_items", int, 0)
    if max_items < 0:
        raise sec.fail("max_items", "must be 0 (no limit) or more")
    excluded = tuple(dict.fromkeys(ALWAYS_EXCLUDED + extra))
    return IASource(query, endpoint, files, excluded, max_items, downloads=_downloads(sec))


def _fma_source(sec: _Section, base: Path) -> FMASource:
    metadata = sec.get("metadata", str, required=True)
    if not _is_url(metadata):
        p = _local_path(base, metadata)
        if not p.exists():
            raise sec.fail("metadata", f"no such file: {p}")
        metadata = str(p)
    audio_root = sec.get("audio_root", str)
    if audio_root is not None:
        p = _local_path(base, audio_root)
        if not p.exists():
            raise sec.fail("audio_root", f"no such file or folder: {p}")
        audio_root = str(p)
    audio_base_url = sec.get("audio_base_url", str)
    if audio_base_url is not None and not _is_url(audio_base_url):
        raise sec.fail("audio_base_url", "must be an http(s) URL")
    if audio_root is None and audio_base_url is None:
        raise sec.fail("audio_root", "one of audio_root or audio_base_url is required")
    max_items = sec.get("max_items", int, 0)
    if max_items < 0:
        raise sec.fail("max_items", "must be 0 (no limit) or more")
    return FMASource(metadata, audio_root, audio_base_url, max_items, downloads=_downloads(sec))


def _downloads(sec: _Section) -> int:
    n = sec.get("downloads", int, DEFAULT_DOWNLOADS)
    if not 1 <= n <= MAX_DOWNLOADS:
        raise sec.fail("downloads", f"must be 1 to {MAX_DOWNLOADS} (downloads in flight)")
    return n


def _sources(path: Path, raw: Any) -> tuple[Source, ...]:
    if raw is None:
        raise ManifestError(path, "source", "at least one [[source]] is required")
    if not isinstance(raw, list) or not raw:
        raise ManifestError(path, "source", "must be an array of tables ([[source]])")
    out: list[Source] = []
    for i, table in enumerate(raw):
        sec = _Section(path, f"source[{i}]", table)
        kind = sec.get("kind", str, required=True)
        if kind == "ia":
            out.append(_ia_source(sec))
        elif kind == "fma":
            out.append(_fma_source(sec, path.parent))
        else:
            raise sec.fail("kind", f'must be "ia" or "fma", not {kind!r}')
        sec.finish()
    return tuple(out)


def _licence(path: Path, raw: Any) -> LicenceConfig:
    sec = _Section(path, "licence", raw if raw is not None else {})
    allow = sec.strings("allow", default=()) if "allow" in sec.data else None
    if allow is not None and not allow:
        raise sec.fail("allow", "must not be empty (leave it out for the default)")
    cfg = LicenceConfig(allow, sec.strings("deny"), sec.get("require_embedded", bool, False))
    sec.finish()
    return cfg


def _tiers(path: Path, raw: Any) -> TiersConfig:
    sec = _Section(path, "tiers", raw if raw is not None else {})
    shares = sec.get("shares", list, None)
    values = DEFAULT_SHARES
    if shares is not None:
        if not shares or not all(
            isinstance(s, int | float) and not isinstance(s, bool) for s in shares
        ):
            raise sec.fail("shares", "must be a non-empty list of numbers")
        values = tuple(float(s) for s in shares)
        if any(not 0 < s <= 1 for s in values):
            raise sec.fail("shares", "each share must be above 0 and at most 1.0")
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise sec.fail("shares", "must be strictly increasing, e.g. [0.5, 0.9, 1.0]")
    quality = sec.strings("quality")
    for q in quality:
        if q not in QUALITIES:
            raise sec.fail("quality", f'each entry must be "original" or "compact", not {q!r}')
    # One more tier than shares when the last share is below 1.0 (the tail beyond it).
    most = len(values) + (values[-1] < 1.0)
    if len(quality) > most:
        raise sec.fail("quality", f"has {len(quality)} entries for {most} tiers")
    cfg = TiersConfig(values, quality)
    sec.finish()
    return cfg


def parse_bitrate(value: str | int) -> int:
    """ "96k", "96kbit", "128000" or 96000 -> bit/s; 6-512 kbit/s (what Opus encodes)."""
    if isinstance(value, int):
        rate = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(k|kbit|kbps|kbit/s|)\s*", value.lower())
        if not m:
            raise ValueError(f'not a bitrate: {value!r} (e.g. "96k")')
        rate = int(float(m.group(1)) * (1000 if m.group(2) else 1))
    if not 6_000 <= rate <= 512_000:
        raise ValueError(f"must be between 6k and 512k, not {value!r}")
    return rate


def _compact(path: Path, raw: Any) -> CompactConfig:
    sec = _Section(path, "compact", raw if raw is not None else {})
    value = sec.get("bitrate", (str, int), None)
    cfg = CompactConfig()
    if value is not None:
        try:
            cfg = CompactConfig(parse_bitrate(value))
        except ValueError as e:
            raise sec.fail("bitrate", str(e)) from None
    sec.finish()
    return cfg


def _torrents(path: Path, raw: Any) -> TorrentsConfig:
    sec = _Section(path, "torrents", raw if raw is not None else {})
    pack_size = sec.size("pack_size", TorrentsConfig.pack_size)
    if not pack_size:
        raise sec.fail("pack_size", "must be more than 0")
    fmt = sec.get("format", str, "v1")
    if fmt not in TORRENT_FORMATS:
        raise sec.fail("format", f"must be one of {', '.join(TORRENT_FORMATS)}, not {fmt!r}")
    piece = sec.get("piece_size", (str, int), "auto")
    piece_size: int | None = None
    if piece != "auto":
        piece_size = sec.size("piece_size", None)
        if piece_size is None or piece_size < 16384 or piece_size & (piece_size - 1):
            raise sec.fail("piece_size", '"auto" or a power of two of at least 16KiB')
    trackers = sec.strings("trackers", DEFAULT_TRACKERS)
    for t in trackers:
        if not re.match(r"^(udp|https?)://", t):
            raise sec.fail("trackers", f"not a tracker URL: {t!r}")
    web_seeds = sec.strings("web_seeds")
    for w in web_seeds:
        if not _is_url(w):
            raise sec.fail("web_seeds", f"not an http(s) URL: {w!r}")
    scrape = sec.get("scrape", bool, False)
    sec.finish()
    return TorrentsConfig(pack_size, fmt, piece_size, trackers, web_seeds, scrape)


def _follow(path: Path, raw: Any) -> FollowConfig:
    sec = _Section(path, "follow", raw)
    torrents = sec.get("torrents", str, required=True).strip()
    if not torrents:
        raise sec.fail("torrents", "must be the URL or path of a primary's torrents.json")
    if not _is_url(torrents):
        if "://" in torrents:
            raise sec.fail("torrents", f"must be an http(s) URL or a path, not {torrents!r}")
        torrents = str(_local_path(path.parent, torrents))
    space = sec.size("space", None)
    if space is None:
        raise sec.fail("space", 'is required: the disk you offer, e.g. "2TB"')
    if space <= 0:
        raise sec.fail("space", "must be more than 0")
    dht = sec.get("dht", bool, True)
    time_limit = sec.get("time_limit", int, FollowConfig.time_limit)
    if time_limit <= 0:
        raise sec.fail("time_limit", "must be a number of seconds above 0")
    sec.finish()
    return FollowConfig(torrents, space, dht, time_limit)


def _public_url(sec: _Section) -> str | None:
    value = sec.get("public_url", str, None)
    if value is None:
        return None
    if not _is_url(value.strip()):
        raise sec.fail("public_url", f"must be an http(s) URL, not {value!r}")
    return value.strip().rstrip("/") + "/"


_EMAIL_RE = re.compile(r"^(mailto:)?[^@\s/:]+@[^@\s/]+\.[^@\s/]+$")


def _contact(sec: _Section) -> str | None:
    value = sec.get("contact", str, None)
    if value is None:
        return None
    value = value.strip()
    if not (_EMAIL_RE.match(value.split("?")[0]) or _is_url(value)):
        raise sec.fail("contact", f"must be an e-mail address or an http(s) URL, not {value!r}")
    return value


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

    top = _Section(path, "", raw)
    mirror = _Section(path, "mirror", top.get("mirror", dict, required=True))
    name = mirror.get("name", str, required=True)
    if not NAME_RE.match(name):
        raise mirror.fail("name", f"must match [a-z0-9-]+, not {name!r}")
    configured = mirror.get("data_dir", str, None)
    if configured is None and not (data_dir or os.environ.get("CCMIRROR_DATA_DIR")):
        raise mirror.fail("data_dir", "is required (or pass --data-dir / CCMIRROR_DATA_DIR)")
    public_url = _public_url(mirror)
    contact = _contact(mirror)
    budget = mirror.size("budget", None)
    mirror.finish()
    raw_follow = top.get("follow", dict, None)
    follow = _follow(path, raw_follow) if raw_follow is not None else None
    raw_sources = top.get("source", list, None)
    if follow is not None and raw_sources is not None:
        raise ManifestError(path, "source", "a follower ([follow]) has no [[source]]")
    manifest = Manifest(
        path=path.resolve(),
        name=name,
        data_dir=resolve_data_dir(path.resolve(), configured or ".", data_dir),
        sources=() if follow is not None else _sources(path, raw_sources),
        licence=_licence(path, top.get("licence", dict, None)),
        tiers=_tiers(path, top.get("tiers", dict, None)),
        torrents=_torrents(path, top.get("torrents", dict, None)),
        public_url=public_url,
        follow=follow,
        contact=contact,
        budget=budget,
        compact=_compact(path, top.get("compact", dict, None)),
    )
    top.finish()
    return manifest
