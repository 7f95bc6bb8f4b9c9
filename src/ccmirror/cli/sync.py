"""`ccmirror sync`: the cron command."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from ccmirror.cli.common import (
    SIZE,
    fail,
    format_table,
    lock_option,
    manifest_argument,
    mirror_for,
    output_options,
    reporter,
    settings,
)
from ccmirror.errors import EXIT_UNREACHABLE
from ccmirror.sizes import format_size

# The numbers worth a glance per stage, in this order; the rest is in --json.
_HEADLINE = (
    "found",
    "new",
    "updated",
    "fetched",
    "bytes",
    "checked",
    "quarantined",
    "assigned_files",
    "sealed",
    "torrents",
    "failed",
    "refused_items",
    "skipped_budget",
    "pending_files",
    "pending_bytes",
    "would_fetch_files",
    "would_fetch_bytes",
    "files_to_check",
    "files_to_pack",
    "would_seal_packs_estimate",
)


def _summary(stage: dict[str, Any]) -> str:
    if "error" in stage:
        return f"error: {stage['error']}"
    errors = [f"{s['kind']} {s['where']}" for s in stage.get("sources", []) if "error" in s]
    if errors:
        return "error: " + "; ".join(errors)
    if stage.get("skipped"):
        return f"skipped: {stage['skipped']}"
    parts = []
    for key in _HEADLINE:
        value = stage.get(key)
        if isinstance(value, dict | list):
            value = (
                len(value)
                if isinstance(value, list)
                else sum(v for v in value.values() if isinstance(v, int))
            )
        if isinstance(value, int) and not isinstance(value, bool) and value:
            shown = format_size(value) if key.endswith("bytes") or key == "bytes" else value
            parts.append(f"{key} {shown}")
    if stage.get("open_packs"):
        parts.append(f"open {', '.join(stage['open_packs'])}")
    if stage.get("would_publish"):
        parts.append("would publish")
    if stage.get("note") and not parts:
        parts.append(stage["note"])
    return ", ".join(parts) or "nothing to do"


def _follow_table(r: dict[str, Any]) -> str:
    rows = [
        (p["rank"], p["name"], p["tier"], format_size(p["data_size"]),
         "?" if p["seeders"] is None else p["seeders"], "held" if p["held"] else "")
        for p in r["plan"]
    ]  # fmt: skip
    out = [format_table(("rank", "torrent", "tier", "size", "seeders", ""), rows)] if rows else []
    out.append(
        f"{r['listed']} listed, {r['planned']} planned ({format_size(r['planned_bytes'])} of"
        f" {format_size(r['space'])}), {r['not_fitting']} do not fit"
    )
    if not r["dry_run"]:
        out.append(
            f"downloaded {len(r['downloaded'])} ({format_size(r['bytes'])}), incomplete"
            f" {len(r['incomplete'])}, refused {len(r['quarantined']) + len(r['refused_torrents'])},"
            f" dropped {len(r['dropped'])}, withdrawn files deleted {r['withdrawn_files_deleted']};"
            f" exit {r['exit_code']}"
        )
    return "\n".join(out)


def _table(result: dict[str, Any]) -> str:
    if result.get("follower"):
        return _follow_table(result)
    rows = []
    for name, stage in result["stages"].items():
        state = "plan" if result.get("dry_run") else ("ok" if stage.get("ok") else "FAILED")
        seconds = "" if result.get("dry_run") else f"{stage.get('seconds', 0):.1f}s"
        rows.append((name, state, seconds, _summary(stage)))
    head = format_table(("stage", "state", "time", "summary"), rows)
    if result.get("dry_run"):
        return f"dry run for {result['data_dir']} (nothing was changed):\n{head}"
    tail = f"exit {result['exit_code']}"
    if result.get("unreachable"):
        tail += "; unreachable: " + "; ".join(result["unreachable"])
    return f"{head}\n{tail}"


@click.command()
@manifest_argument
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what a run would do, from the catalogue; touch nothing (no lock, no writes).",
)
@click.option(
    "--max-bytes",
    type=SIZE,
    metavar="SIZE",
    help="Download at most this much in this run (e.g. 20GiB); the rest waits for the next.",
)
@lock_option
@output_options
def sync(manifest: str, dry_run: bool, max_bytes: int | None) -> None:
    """Harvest, fetch, check, pack and publish in one locked, idempotent run (for cron).

    Silent unless something needs attention: warnings and errors go to stderr (and to
    --log-file) as timestamped lines; the summary table is shown on a terminal or with -v.
    A second run with nothing new changes nothing. When a stage fails the later stages
    still run on what succeeded.

    \b
    Exit codes:
      0  done
      1  finished, but some work failed (it is retried by the next run)
      2  usage or manifest error
      3  another run holds the lock (see --lock-wait)
      4  a source could not be reached at all (what was already fetched
         is still checked, packed and published)

    \b
    Examples:
      ccmirror sync manifests/netlabels.toml --dry-run
      ccmirror sync manifests/netlabels.toml --max-bytes 20GiB --quiet --log-file sync.log
    """
    from ccmirror.dryrun import sync_dry_run
    from ccmirror.sync import sync as run_sync

    budget = max_bytes
    s = settings()
    if dry_run:
        from ccmirror.manifest import load_manifest

        m = load_manifest(manifest, s.data_dir)
        if m.is_follower:
            with mirror_for(manifest, write=False) as mirror:
                result = run_sync(mirror, dry_run=True)
        else:
            result = sync_dry_run(m, max_bytes=budget)
    else:
        with mirror_for(manifest, write=True) as mirror:
            result = run_sync(mirror, max_bytes=budget, reporter=reporter())
    code = int(result.get("exit_code", 0))
    s.result = result
    if s.json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    elif not s.quiet and (dry_run or s.verbose or sys.stdout.isatty()):
        click.echo(_table(result))
    if code:
        # One `ccmirror:` line, even with --quiet: cron mails it. A source down entirely is
        # an error; failed work that the next run retries is a warning (in --log-file).
        detail = "; ".join(result.get("unreachable") or []) or "failed: " + ", ".join(
            result.get("failed_stages") or []
        )
        raise fail(
            f"sync: exit {code} ({detail})",
            code,
            logging.ERROR if code == EXIT_UNREACHABLE else logging.WARNING,
        )


COMMANDS = [sync]
