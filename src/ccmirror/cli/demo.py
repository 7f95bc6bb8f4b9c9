"""`ccmirror demo`: the whole pipeline on a local sample archive, no network needed."""

from __future__ import annotations

import json
from typing import Any

import click

from ccmirror.cli.common import (
    fail,
    format_table,
    lock_option,
    output_options,
    reporter,
    settings,
)
from ccmirror.sizes import format_size


def _render(r: dict[str, Any]) -> str:
    out: list[str] = []
    sync = r["sync"]
    state = "ok" if not sync.get("failed") else "failed: " + ", ".join(sync["failed_stages"])
    out.append(f"ccmirror demo: synced a local sample archive served at {r['server']} ({state})")
    out.append(f"  manifest  {r['manifest']}")
    out.append(f"  data dir  {r['data_dir']}")

    out.append("\nThe sample items, most popular first, and what became of them:")
    for s in r["sample"]:
        out.append(f"  {s['identifier']} ({s['downloads']} downloads): {s['note']}")
        out.append(f"      -> {s.get('outcome', '?')}")

    if r["tiers"]:
        out.append("\nTiers (most listened first; an operator with little disk keeps tier 1):")
        rows = [
            (
                t["tier"],
                t["items"],
                t["files"],
                format_size(t["bytes"]),
                f"{100 * t['popularity_share']:.1f}%",
                f"{100 * t['cumulative_share']:.1f}%",
            )
            for t in r["tiers"]
        ]
        head = ("tier", "items", "files", "size", "share", "cumulative")
        out.append(_indent(format_table(head, rows)))

    if r["packs"]:
        out.append(f"\nPacks (payloads in {r['data_dir']}/packs, torrents in .../torrents):")
        rows = [
            (
                p["name"],
                p["tier"],
                p["status"],
                p["num_files"] or "",
                format_size(p["data_size"] or 0),
                p["info_hash_v1"] or "",
            )
            for p in r["packs"]
        ]
        out.append(_indent(format_table(("pack", "tier", "state", "files", "size", "btih"), rows)))

    if r["magnet"]:
        out.append(f"\nMagnet link of {r['magnet']['name']}:\n  {r['magnet']['magnet_link']}")
    if r["attribution"]:
        a = r["attribution"]
        out.append(f"\nThe start of {a['path']}:")
        out.append(_indent(a["head"], "  | "))
        if a["more_lines"]:
            out.append(f"  | ... ({a['more_lines']} more lines)")
    if r["index_html"]:
        out.append(f"\nThe mirror's web page: {r['index_html']}")
    if r["torrents_json"]:
        out.append(f"Every torrent, for machines: {r['torrents_json']}")
    out.append("\nTry next:")
    out.extend(f"  {c}" for c in r["next"])
    return "\n".join(out)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


@click.command()
@click.argument(
    "folder",
    required=False,
    default="ccmirror-demo",
    metavar="[DIR]",
    type=click.Path(file_okay=False),
)
@lock_option
@output_options
def demo(folder: str) -> None:
    """Run the whole job (harvest, fetch, check, pack, publish) on a local sample archive.

    Builds a small archive of real encoded audio in DIR (default ./ccmirror-demo), with a
    few licence problems on purpose, serves it on 127.0.0.1 with a built-in IA-compatible
    server, runs the real `sync` against it and shows the tiers, the packs, a magnet link
    and an ATTRIBUTION.md. Needs no network at all; re-running in the same DIR is fine.
    The sample server runs only while the demo does: afterwards the read-only commands
    (status, tiers, search, seed) work on DIR/demo.toml, and `sync` on it exits 4
    (source unreachable) until the demo serves it again.

    \b
    Example:
      ccmirror demo /tmp/ccmirror-demo
      ccmirror status /tmp/ccmirror-demo/demo.toml
    """
    from ccmirror.demo import demo as run_demo

    s = settings()
    result = run_demo(folder, lock_wait=s.lock_wait, reporter=reporter())
    s.result = result.get("sync")
    if s.json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    elif not s.quiet:
        click.echo(_render(result))
    if result["exit_code"]:
        code = int(result["exit_code"])
        raise fail(f"demo: its sync exited {code} (see the messages above)", code)


COMMANDS = [demo]
