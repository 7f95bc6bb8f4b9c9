"""The manifest's other tables: [licence], [tiers], [compact], [torrents], [follow], and
[mirror]'s public_url and contact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ccmirror.manifest.model import (
    DEFAULT_SHARES,
    DEFAULT_TRACKERS,
    QUALITIES,
    TORRENT_FORMATS,
    CompactConfig,
    FollowConfig,
    LicenceConfig,
    TiersConfig,
    TorrentsConfig,
)
from ccmirror.manifest.section import Section, is_url, local_path


def parse_licence(path: Path, raw: Any) -> LicenceConfig:
    sec = Section(path, "licence", raw if raw is not None else {})
    allow = sec.strings("allow", default=()) if "allow" in sec.data else None
    if allow is not None and not allow:
        raise sec.fail("allow", "must not be empty (leave it out for the default)")
    cfg = LicenceConfig(allow, sec.strings("deny"), sec.get("require_embedded", bool, False))
    sec.finish()
    return cfg


def parse_tiers(path: Path, raw: Any) -> TiersConfig:
    sec = Section(path, "tiers", raw if raw is not None else {})
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


def parse_compact(path: Path, raw: Any) -> CompactConfig:
    sec = Section(path, "compact", raw if raw is not None else {})
    value = sec.get("bitrate", (str, int), None)
    cfg = CompactConfig()
    if value is not None:
        try:
            cfg = CompactConfig(parse_bitrate(value))
        except ValueError as e:
            raise sec.fail("bitrate", str(e)) from None
    sec.finish()
    return cfg


def parse_torrents(path: Path, raw: Any) -> TorrentsConfig:
    sec = Section(path, "torrents", raw if raw is not None else {})
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
        if not is_url(w):
            raise sec.fail("web_seeds", f"not an http(s) URL: {w!r}")
    scrape = sec.get("scrape", bool, False)
    artwork = sec.get("artwork", bool, True)
    max_artwork = sec.size("max_artwork_size", TorrentsConfig.max_artwork_size)
    sec.finish()
    return TorrentsConfig(
        pack_size, fmt, piece_size, trackers, web_seeds, scrape, artwork, max_artwork or 0
    )


def parse_follow(path: Path, raw: Any) -> FollowConfig:
    sec = Section(path, "follow", raw)
    torrents = sec.get("torrents", str, required=True).strip()
    if not torrents:
        raise sec.fail("torrents", "must be the URL or path of a primary's torrents.json")
    if not is_url(torrents):
        if "://" in torrents:
            raise sec.fail("torrents", f"must be an http(s) URL or a path, not {torrents!r}")
        torrents = str(local_path(path.parent, torrents))
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


def parse_public_url(sec: Section) -> str | None:
    value = sec.get("public_url", str, None)
    if value is None:
        return None
    if not is_url(value.strip()):
        raise sec.fail("public_url", f"must be an http(s) URL, not {value!r}")
    return value.strip().rstrip("/") + "/"


_EMAIL_RE = re.compile(r"^(mailto:)?[^@\s/:]+@[^@\s/]+\.[^@\s/]+$")


def parse_contact(sec: Section) -> str | None:
    value = sec.get("contact", str, None)
    if value is None:
        return None
    value = value.strip()
    if not (_EMAIL_RE.match(value.split("?")[0]) or is_url(value)):
        raise sec.fail("contact", f"must be an e-mail address or an http(s) URL, not {value!r}")
    return value
