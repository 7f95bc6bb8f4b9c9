"""Which torrents a follower takes: whole torrents within its space, most needed first.

Most needed: fewest seeders (a tracker scrape; unknown counts as none), then the lower
tier (the most listened material), then a spread that differs per volunteer (a hash of
this volunteer's id and the info-hash), so that volunteers with equal disks who plan at
the same moment, seeing the same counts, do not all take the same torrents. What a
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


def rank_key(c: Candidate, volunteer: str) -> tuple[int, int, int, str]:
    tier = NO_TIER if c.tier is None else c.tier
    return (c.seeders or 0, tier, spread(volunteer, c.btih), c.btih)


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
