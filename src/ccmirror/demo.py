"""`ccmirror demo`: the whole job against a local sample archive, with no network at all.

Builds the sample (`ccmirror.sample.demo_items`) under DIR, serves it with the loopback IA
server (a real HTTP server on 127.0.0.1), writes `DIR/demo.toml` pointing at it, runs the
real `sync` under the data dir's lock, and gathers what a newcomer should look at. The
manifest's trackers are on 127.0.0.1 and need not exist: nothing leaves the machine.

Re-running in the same DIR reuses the sample audio and the mirror; the server gets a new
port each time, which the manifest (rewritten) and the harvest pick up.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ccmirror.catalogue.demo import live_packs, packed_names, sample_files, sample_item
from ccmirror.errors import UsageError
from ccmirror.fsutil import atomic_write_text
from ccmirror.lock import DataLock
from ccmirror.mirror import Mirror, open_mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.sample.demo_items import MARKER, build_sample, sample_summary
from ccmirror.tiers import tier_table

log = logging.getLogger("ccmirror.demo")

DEMO_NAME = "demo"
DEMO_TRACKERS = ("udp://127.0.0.1:6969/announce", "http://127.0.0.1:6969/announce")
# Small packs, so the few megabytes of sample fill several packs and tiers.
DEMO_PACK_SIZE = "256KiB"
ATTRIBUTION_LINES = 24
HEADER = "# Written by `ccmirror demo`"


def demo_manifest(folder: Path, endpoint: str) -> str:
    """The demo mirror's manifest (TOML), pointing at `endpoint`."""
    trackers = ", ".join(json.dumps(t) for t in DEMO_TRACKERS)
    return f"""\
{HEADER}: a mirror of the local sample archive.
# Try the other commands on it, e.g. `ccmirror status {folder / "demo.toml"}`.
[mirror]
name = "{DEMO_NAME}"
data_dir = {json.dumps(str(folder / "data"))}

[[source]]
kind = "ia"
query = "mediatype:audio"
endpoint = {json.dumps(endpoint)}

[tiers]
shares = [0.5, 0.9, 0.99, 1.0]

[torrents]
pack_size = "{DEMO_PACK_SIZE}"
trackers = [{trackers}]
"""


def demo(
    folder: str | Path = "ccmirror-demo",
    *,
    lock_wait: float = 0.0,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Build, serve and sync the sample in `folder`; return what to look at (JSON-ready).

    The result has `sync` (the sync summary, with its `exit_code`), `tiers`, `packs`,
    `magnet`, `attribution` (the start of one pack's ATTRIBUTION.md), `index_html`,
    `sample` (each item with what it shows and what became of it) and `next` (commands).
    """
    from ccmirror.sample.archive import IAServer
    from ccmirror.sync import sync

    reporter = reporter or NullReporter()
    folder = Path(folder).expanduser().resolve()
    _check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = build_sample(folder / "sample")
    manifest_path = folder / "demo.toml"
    server = IAServer()
    for item in items:
        item.add_to(server)
    server.start()
    try:
        atomic_write_text(manifest_path, demo_manifest(folder, server.url))
        with DataLock(folder / "data", lock_wait), open_mirror(manifest_path) as mirror:
            log.info("demo: serving %d sample items on %s", len(items), server.url)
            result = sync(mirror, reporter=reporter)
            return {
                "folder": str(folder),
                "manifest": str(manifest_path),
                "data_dir": str(mirror.data_dir),
                "server": server.url,
                "sync": result,
                "exit_code": result["exit_code"],
                "tiers": _tiers(mirror),
                "packs": _packs(mirror),
                "magnet": _magnet(mirror),
                "attribution": _attribution(mirror),
                "index_html": _public(mirror, "index.html"),
                "torrents_json": _public(mirror, "torrents.json"),
                "sample": _outcomes(mirror, sample_summary(items)),
                "next": _next(manifest_path, mirror),
            }
    finally:
        server.stop()


def _check_folder(folder: Path) -> None:
    """Refuse a DIR that holds someone else's files where the demo writes (`demo ~`)."""
    problems = []
    manifest = folder / "demo.toml"
    if manifest.is_file() and not manifest.read_text("utf-8", "replace").startswith(HEADER):
        problems.append(f"{manifest} exists and was not written by ccmirror demo")
    sample = folder / "sample"
    ours = sample.is_dir() and (
        (sample / MARKER).exists() or all(p.name.startswith("demo-") for p in sample.iterdir())
    )
    if sample.is_dir() and not ours:
        problems.append(f"{sample} exists and is not a ccmirror demo sample")
    data = folder / "data"
    if data.is_dir() and any(data.iterdir()) and not (data / "catalogue.sqlite").exists():
        problems.append(f"{data} exists and is not a ccmirror data directory")
    for p in (manifest, sample, data):
        if p.exists() and not (p.is_dir() if p is not manifest else p.is_file()):
            problems.append(f"{p} is in the way")
    if problems:
        raise UsageError(
            "; ".join(problems) + "; pass an empty or new DIR (e.g. ccmirror demo ./ccmirror-demo)"
        )


def _tiers(mirror: Mirror) -> list[dict[str, Any]]:
    return list(tier_table(mirror)["tiers"])


def _packs(mirror: Mirror) -> list[dict[str, Any]]:
    return [dict(r) for r in live_packs(mirror.db)]


def _torrents(mirror: Mirror) -> list[dict[str, Any]]:
    try:
        data = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []


def _magnet(mirror: Mirror) -> dict[str, Any] | None:
    for t in _torrents(mirror):
        if not t.get("is_metadata") and not t.get("obsolete") and t.get("magnet_link"):
            return {"name": t.get("name"), "magnet_link": t["magnet_link"]}
    return None


def _attribution(mirror: Mirror) -> dict[str, Any] | None:
    for pack in _packs(mirror):
        if pack["status"] != "sealed":
            continue
        path = mirror.packs_dir / pack["name"] / "ATTRIBUTION.md"
        try:
            lines = path.read_text("utf-8").splitlines()
        except OSError:
            continue
        return {
            "path": str(path),
            "head": "\n".join(lines[:ATTRIBUTION_LINES]),
            "more_lines": max(0, len(lines) - ATTRIBUTION_LINES),
        }
    return None


def _public(mirror: Mirror, name: str) -> str | None:
    path = mirror.public_dir / name
    return str(path) if path.exists() else None


def _outcomes(mirror: Mirror, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What became of each sample item: its status and its files' states and verdicts."""
    for row in rows:
        item = sample_item(mirror.db, row["identifier"])
        if item is None:
            row["outcome"] = "not harvested"
            continue
        parts = [item["status"] + (f" ({item['reason']})" if item["reason"] else "")]
        files = sample_files(mirror.db, item["id"])
        packed = packed_names(mirror.db, item["id"])
        for f in files:
            state = f["verdict"] or f["status"]
            if f["status"] in ("failed", "refused") and f["reason"]:
                state = f"{f['status']}: {f['reason']}"
            if f["name"] in packed:
                state += ", packed"
            parts.append(f"{f['name']}: {state}")
        row["outcome"] = "; ".join(parts)
    return rows


def _next(manifest: Path, mirror: Mirror) -> list[str]:
    m = str(manifest)
    return [
        f"ccmirror status {m}",
        f"ccmirror tiers {m}",
        f"ccmirror search {m} lanterns",
        f"ccmirror licence inspect {mirror.packs_dir}/*/ia/*/*",
        f"ccmirror sync {m} --dry-run",
        f"ccmirror seed {m}",
        f"xdg-open {mirror.public_dir / 'index.html'}",
    ]
