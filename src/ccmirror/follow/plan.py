"""Which torrents a follower takes: whole torrents within its space, most needed first.

Most needed: fewest seeders (a tracker scrape; unknown counts as none), counted against
the copies a tier wants (`TIER_COPIES`: tier 1 and the metadata torrent 3, tier 2 two,
the rest one, so 2 seeders of a tier-1 torrent weigh like 2/3 of one elsewhere), then the
lower tier (the most listened material), then a spread that differs per volunteer (a hash
of this volunteer's id and the info-hash), so that volunteers with equal disks who plan at
the same moment, seeing the same counts, do not all take the same torrents. The effect:
every torrent gets a first copy (most listened first), then tier 1 gets its third before
anything gets a second; with plain seeder counts, copies even out and tier 1 stays at the
average (2 at twice the data: bench/volunteers.py shows both). What a
follower already holds stays chosen (no churn: bytes already fetched are not thrown away
for a torrent that ranks a little higher today). Obsolete and embargoed torrents are never
taken. Pure functions: `bench/volunteers.py` runs the same code for 500 volunteers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ccmirror.fsutil import atomic_write_text

TIER_COPIES = (3, 3, 2)  # copies wanted by tier 0 (metadata), 1, 2; later tiers want 1
NO_TIER = 1_000_000  # a list without tiers (Anna's Archive's): after every tiered torrent
VOLUNTEER_FILE = "follow/volunteer-id"


@dataclass(frozen=True)
class Candidate:
    btih: str
    data_size: int
    tier: int | None = None
    seeders: int | None = None  # None: no tracker answered


@dataclass
class Choice:
    chosen: list[Candidate] = field(default_factory=list)
    not_fitting: list[Candidate] = field(default_factory=list)
    used: int = 0
    over_space: int = 0  # bytes held beyond the space (kept, never deleted for it)


def volunteer_id(data_dir: Path) -> str:
    """This follower's id: random once, then kept in the data dir (the spread's seed)."""
    path = data_dir / VOLUNTEER_FILE
    try:
        value = path.read_text("ascii").strip()
        if len(value) >= 16 and all(c in "0123456789abcdef" for c in value):
            return value
    except (OSError, UnicodeDecodeError):
        pass
    value = secrets.token_hex(16)
    os.makedirs(path.parent, exist_ok=True)
    atomic_write_text(path, value + "\n")
    return value


def spread(volunteer: str, btih: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{volunteer}:{btih}".encode()).digest()[:8], "big")


def copies_wanted(tier: int | None) -> int:
    if tier is None or tier < 0 or tier >= len(TIER_COPIES):
        return 1
    return TIER_COPIES[tier]


def rank_key(c: Candidate, volunteer: str) -> tuple[float, int, int, str]:
    tier = NO_TIER if c.tier is None else c.tier
    need = (c.seeders or 0) / copies_wanted(c.tier)
    return (need, tier, spread(volunteer, c.btih), c.btih)


def choose(
    candidates: Iterable[Candidate],
    space: int,
    volunteer: str,
    held: Mapping[str, int] | None = None,
) -> Choice:
    """Rank `candidates` (live torrents only) and take whole ones within `space`.

    `held`: btih -> bytes of what this follower already holds; those stay chosen first.
    """
    held = held or {}
    ranked = sorted(candidates, key=lambda c: rank_key(c, volunteer))
    out = Choice()
    for c in ranked:
        if c.btih in held:
            out.chosen.append(c)
            out.used += c.data_size
    out.over_space = max(0, out.used - space)
    for c in ranked:
        if c.btih in held:
            continue
        if out.used + c.data_size <= space:
            out.chosen.append(c)
            out.used += c.data_size
        else:
            out.not_fitting.append(c)
    return out
