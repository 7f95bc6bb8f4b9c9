"""Benchmark: 500 volunteers follow a 5,000-torrent list; how well is it kept alive?

Torrents have Zipf popularity (rank r listened ~ 1/r) and tiers by cumulative listening
share (0.5, 0.9, 0.99, 1.0, the default); sizes spread below the 50 GiB pack cap.
Volunteers' disks are log-normal (many small, a few large: a realistic spread), scaled so
their total is FACTOR x the data. They join in batches that see the same (stale) scrape
counts, as volunteers who plan at about the same time do; each runs the follower's own
planner (`ccmirror.follow.plan.choose`, counts = copies held by earlier volunteers).

Printed side by side for the same volunteers and list:
  ours     fewest seeders against the copies a tier wants, then tier, then spread
  flat     fewest seeders (plain counts), then tier, then spread
  popular  everyone takes the most popular torrents first (the naive baseline)
Copies per torrent (min, median, per tier), torrents with no copy, and the share of
listening held by at least 3 volunteers. Target: at FACTOR 2, every torrent >= 1 copy
and tier 1 >= 3.

    .venv/bin/python bench/volunteers.py [--factor 2] [--volunteers 500] [--torrents 5000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

from ccmirror.follow import plan as follow_plan
from ccmirror.follow.plan import Candidate, choose

GiB = 1024**3
SHARES = (0.5, 0.9, 0.99, 1.0)


def make_list(n: int, rng: random.Random) -> tuple[list[Candidate], list[float]]:
    weights = [1.0 / r for r in range(1, n + 1)]
    total = sum(weights)
    shares = [w / total for w in weights]
    torrents, cum, tier = [], 0.0, 1
    for i, share in enumerate(shares):
        while tier < len(SHARES) and cum >= SHARES[tier - 1] - 1e-12:
            tier += 1
        cum += share
        size = int(min(50.0, max(2.0, rng.lognormvariate(3.5, 0.35))) * GiB)
        torrents.append(Candidate(f"{i:040x}", size, tier, 0))
    return torrents, shares


def make_disks(n: int, data: int, factor: float, rng: random.Random) -> list[int]:
    raw = [rng.lognormvariate(0.0, 1.2) for _ in range(n)]  # median:mean about 1:2
    scale = factor * data / sum(raw)
    return [int(x * scale) for x in raw]


def simulate(
    torrents: list[Candidate],
    disks: list[int],
    pick: Callable[[list[Candidate], int, str], list[Candidate]],
    batch: int,
) -> list[int]:
    copies = [0] * len(torrents)
    index = {t.btih: i for i, t in enumerate(torrents)}
    for start in range(0, len(disks), batch):
        seen = list(copies)  # one scrape snapshot for the whole batch
        cands = [Candidate(t.btih, t.data_size, t.tier, seen[i]) for i, t in enumerate(torrents)]
        for v in range(start, min(start + batch, len(disks))):
            for c in pick(cands, disks[v], f"volunteer-{v:04d}"):
                copies[index[c.btih]] += 1
    return copies


def ours(cands: list[Candidate], space: int, vid: str) -> list[Candidate]:
    return choose(cands, space, vid).chosen


def flat(cands: list[Candidate], space: int, vid: str) -> list[Candidate]:
    saved = follow_plan.TIER_COPIES
    follow_plan.TIER_COPIES = ()  # every tier wants one copy: plain seeder counts
    try:
        return choose(cands, space, vid).chosen
    finally:
        follow_plan.TIER_COPIES = saved


def popular(cands: list[Candidate], space: int, _vid: str) -> list[Candidate]:
    out, used = [], 0
    for c in cands:  # the list is in popularity order
        if used + c.data_size <= space:
            out.append(c)
            used += c.data_size
    return out


def report(name: str, torrents: list[Candidate], shares: list[float], copies: list[int]) -> dict:
    tiers = sorted({t.tier for t in torrents})
    by_tier = {k: [c for t, c in zip(torrents, copies, strict=True) if t.tier == k] for k in tiers}
    held3 = sum(s for s, c in zip(shares, copies, strict=True) if c >= 3)
    return {
        "name": name,
        "min": min(copies),
        "median": statistics.median(copies),
        "zero": sum(1 for c in copies if c == 0),
        "tiers": {k: (min(v), statistics.median(v), len(v)) for k, v in by_tier.items()},
        "listening_3plus": held3,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volunteers", type=int, default=500)
    ap.add_argument("--torrents", type=int, default=5000)
    ap.add_argument("--factor", type=float, default=2.0, help="total volunteer space / data")
    ap.add_argument("--batch", type=int, default=25, help="volunteers per scrape snapshot")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    torrents, shares = make_list(args.torrents, rng)
    data = sum(t.data_size for t in torrents)
    disks = make_disks(args.volunteers, data, args.factor, rng)
    print(
        f"{args.torrents} torrents, {data / 1024**4:.1f} TiB; {args.volunteers} volunteers,"
        f" disks median {statistics.median(disks) / GiB:.0f} GiB, mean"
        f" {statistics.mean(disks) / GiB:.0f} GiB, max {max(disks) / 1024**4:.1f} TiB;"
        f" total {args.factor:g}x the data; batches of {args.batch}"
    )
    tiers = sorted({t.tier for t in torrents})
    print("tiers: " + ", ".join(
        f"{k}: {sum(1 for t in torrents if t.tier == k)} torrents" for k in tiers
    ))  # fmt: skip
    rows = []
    for name, pick in (("ours", ours), ("flat", flat), ("popular", popular)):
        t0 = time.monotonic()
        copies = simulate(torrents, disks, pick, args.batch)
        r = report(name, torrents, shares, copies)
        r["seconds"] = time.monotonic() - t0
        rows.append(r)
    head = f"{'':8} {'min':>4} {'median':>6} {'no copy':>8} {'listening>=3':>13}  per tier (min/median)"
    print(head)
    for r in rows:
        per = "  ".join(f"t{k} {a}/{b:g}" for k, (a, b, _n) in r["tiers"].items())
        print(
            f"{r['name']:8} {r['min']:>4} {r['median']:>6g} {r['zero']:>8}"
            f" {r['listening_3plus'] * 100:>12.1f}%  {per}   ({r['seconds']:.1f}s)"
        )
    mine = rows[0]
    ok = mine["min"] >= 1 and mine["tiers"][1][0] >= 3
    print(
        f"target (every torrent >= 1 copy, tier 1 >= 3) at {args.factor:g}x:"
        f" {'met' if ok else 'NOT met'} by ours"
    )
    return 0 if ok or args.factor < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
