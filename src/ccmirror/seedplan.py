"""`seed-plan`: which torrents most need seeders, within the space a volunteer offers.

Swarm counts come from a tracker scrape done by libtorrent: each torrent is added to a
private, paused session (no DHT, no local discovery, no port mapping, nothing checked on
disk) and scraped. A torrent whose trackers do not answer keeps unknown counts and still
ranks: after the ones known to have no seeder, before those that have some.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ccmirror.catalogue.packs import live_popularity, live_torrents
from ccmirror.errors import UsageError
from ccmirror.mirror import Mirror
from ccmirror.sizes import format_size, parse_size

log = logging.getLogger("ccmirror.seedplan")

SCRAPE_TIMEOUT = 20.0  # seconds for all scrapes together; trackers answer in well under one


def _session() -> Any:
    import libtorrent as lt

    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": lt.alert_category.tracker | lt.alert_category.error,
            "user_agent": "ccmirror-seed-plan",
            "ssrf_mitigation": False,
        }
    )


def scrape(
    torrents: list[tuple[str, Path]], timeout: float = SCRAPE_TIMEOUT, scratch: Path | None = None
) -> dict[str, dict[str, Any]]:
    """name -> {"seeders", "leechers", "error"}; counts are None when no tracker answered."""
    import libtorrent as lt

    params: list[tuple[str, Any]] = []
    errors: dict[str, str] = {}
    for name, path in torrents:
        try:
            params.append((name, lt.load_torrent_file(str(path))))
        except (RuntimeError, OSError) as e:
            errors[name] = f"cannot read {path.name}: {e}"
    return _scrape(params, errors, timeout, scratch)


def scrape_hashes(
    torrents: list[tuple[str, str, list[str]]], timeout: float = SCRAPE_TIMEOUT
) -> dict[str, dict[str, Any]]:
    """The same scrape from (name, v1 info-hash hex, trackers) alone, no .torrent file
    needed: a follower ranks a primary's whole list before it fetches any torrent."""
    import libtorrent as lt

    params: list[tuple[str, Any]] = []
    errors: dict[str, str] = {}
    for name, btih, trackers in torrents:
        try:
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(btih)))
            atp.trackers = list(trackers)
            atp.name = name
        except (RuntimeError, ValueError, TypeError) as e:
            errors[name] = f"not an info-hash: {btih!r} ({e})"
            continue
        params.append((name, atp))
    return _scrape(params, errors, timeout, None)


def _scrape(
    torrents: list[tuple[str, Any]],
    errors: dict[str, str],
    timeout: float,
    scratch: Path | None,
) -> dict[str, dict[str, Any]]:
    import libtorrent as lt

    out: dict[str, dict[str, Any]] = {
        name: {"seeders": None, "leechers": None, "error": errors.get(name)}
        for name in [n for n, _ in torrents] + list(errors)
    }
    if not torrents:
        return out
    # Paused torrents never touch their save path; this one does not even exist.
    scratch = scratch or Path("/nonexistent-ccmirror-seed-plan")
    ses = _session()
    by_hash: dict[str, str] = {}
    pending: dict[str, int] = {}  # name -> trackers not yet answered
    for name, params in torrents:
        trackers = list(params.trackers)
        if not trackers:
            out[name]["error"] = "no tracker in the torrent"
            continue
        params.save_path = str(scratch)
        # Paused, not auto-managed: never announce, connect to peers or touch the disk.
        params.flags = (params.flags & ~lt.torrent_flags.auto_managed) | (
            lt.torrent_flags.paused | lt.torrent_flags.upload_mode
        )
        try:
            handle = ses.add_torrent(params)
        except RuntimeError as e:  # e.g. the same info-hash twice in one list
            out[name]["error"] = f"cannot scrape: {e}"
            continue
        by_hash[str(handle.info_hashes().get_best())] = name
        pending[name] = len(trackers)
        for idx in range(len(trackers)):
            handle.scrape_tracker(idx)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.scrape_reply_alert | lt.scrape_failed_alert):
                name = by_hash.get(str(a.handle.info_hashes().get_best()))
                if name is None or name not in pending:
                    continue
                rec = out[name]
                if isinstance(a, lt.scrape_reply_alert):
                    # Several trackers: the largest swarm any of them reports.
                    rec["seeders"] = max(rec["seeders"] or 0, a.complete)
                    rec["leechers"] = max(rec["leechers"] or 0, a.incomplete)
                    rec["error"] = None
                elif _not_listed(a):
                    # The tracker answered without the torrent: nobody announced it yet.
                    rec["seeders"] = max(rec["seeders"] or 0, 0)
                    rec["leechers"] = max(rec["leechers"] or 0, 0)
                    rec["error"] = None
                elif rec["seeders"] is None:
                    rec["error"] = a.error_message() or str(a.error.message())
                pending[name] -= 1
                if pending[name] <= 0:
                    del pending[name]
    for name in pending:
        if out[name]["seeders"] is None and not out[name]["error"]:
            out[name]["error"] = f"no tracker answered within {timeout:.0f}s"
    del ses
    return out


def _not_listed(alert: Any) -> bool:
    """A scrape reply whose `files` dictionary lacks our info-hash (opentracker's answer for
    a torrent no peer has announced); libtorrent reports it as a failure."""
    try:
        err = alert.error
        return err.category().name() == "libtorrent" and "'hash' entry" in err.message()
    except (AttributeError, RuntimeError):
        return False


def _rank_key(t: dict[str, Any]) -> tuple[float, float, str]:
    seeders = t["seeders"]
    # Unknown counts rank between "no seeder" and "one seeder": it may well be nobody.
    need = 0.5 if seeders is None else float(seeders)
    return (need, -(t["popularity_share"] or 0.0), t["name"])


def seed_plan(
    mirror: Mirror, space: int | str, *, timeout: float = SCRAPE_TIMEOUT
) -> dict[str, Any]:
    """The torrents most in need of seeders that fit in `space` bytes."""
    try:
        budget = parse_size(space)
    except ValueError as e:
        raise UsageError(f"--budget: {e}") from None
    db = mirror.db
    total = live_popularity(db)
    rows = live_torrents(db)
    files = []
    missing = []
    for r in rows:
        path = mirror.data_dir / r["torrent_path"]
        if path.is_file():
            files.append((r["name"], path))
        else:
            missing.append(r["name"])
    counts = scrape(files, timeout=timeout)
    candidates = []
    for r in rows:
        c = counts.get(r["name"], {"seeders": None, "leechers": None, "error": "no .torrent"})
        candidates.append(
            {
                "name": r["name"],
                "tier": r["tier"],
                "is_metadata": bool(r["is_metadata"]),
                "btih": r["info_hash_v1"] or r["info_hash_v2"],
                "torrent_path": r["torrent_path"],
                "data_size": r["data_size"] or 0,
                "popularity_share": (r["popularity"] or 0) / total if total else 0.0,
                "seeders": c["seeders"],
                "leechers": c["leechers"],
                "error": c["error"],
            }
        )
    candidates.sort(key=_rank_key)
    chosen, left = [], budget
    for c in candidates:
        if c["data_size"] <= left:
            chosen.append(c)
            left -= c["data_size"]
    for rank, c in enumerate(chosen, start=1):
        c["rank"] = rank
    return {
        "space": budget,
        "space_human": format_size(budget),
        "used": budget - left,
        "torrents_considered": len(candidates),
        "torrents_chosen": len(chosen),
        "unknown_counts": sum(1 for c in candidates if c["seeders"] is None),
        "plan": chosen,
        "not_fitting": [c["name"] for c in candidates if c not in chosen],
    }
