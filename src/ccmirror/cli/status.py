"""`ccmirror status`."""

from __future__ import annotations

import shlex
from typing import Any

import click

from ccmirror.cli.common import emit, format_table, manifest_argument, mirror_for, output_options
from ccmirror.sizes import format_size


def _packs(p: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in p.items() if n) or "-"


def _tiers(tiers: list[dict[str, Any]]) -> str:
    rows = [
        (
            t["tier"],
            t["items"],
            t["files"],
            format_size(t["bytes_stored"]),
            t["packed_files"],
            ", ".join(f"{k} {n}" for k, n in t["verdicts"].items()) or "-",
            _packs(t["packs"]),
        )
        for t in tiers
    ]
    return format_table(("tier", "items", "files", "stored", "packed", "verdicts", "packs"), rows)


def _table(r: dict[str, Any], manifest: str = "MANIFEST") -> str:
    rows: list[tuple[Any, ...]] = [("items", k, v, "") for k, v in sorted(r["items"].items())]
    rows += [
        ("files", k, v["files"], format_size(v["bytes"])) for k, v in sorted(r["files"].items())
    ]
    rows += [("verdict", k, v, "") for k, v in sorted(r["verdicts"].items())]
    if not rows:
        return "The catalogue is empty: run 'ccmirror harvest MANIFEST' first."
    out = [format_table(("what", "status", "count", "bytes"), rows)]
    if r.get("tiers"):
        out += ["", _tiers(r["tiers"])]
    p, t = r["packs"], r["torrents"]
    line = f"Packs: {_packs(p)}. Torrents: {t['published']} published"
    if t["published"]:
        line += f" ({format_size(t['data_bytes'])}"
        line += f", {t['metadata']} metadata)" if t["metadata"] else ")"
    if t["obsolete"]:
        line += f", {t['obsolete']} obsolete"
    broken = [f"{t[k]} {k}" for k in ("missing", "damaged") if t.get(k)]
    if broken:
        line += (
            f"; .torrent files {' and '.join(broken)}"
            f" (run 'ccmirror pack {shlex.quote(manifest)}' to rebuild them)"
        )
    out += ["", line + "."]
    b = r.get("budget") or {}
    if b:
        limit = format_size(b["budget"]) if b.get("budget") is not None else "no limit"
        text = (
            f"Budget: {limit}; the store holds {format_size(b['store_bytes'])}, covering"
            f" {100 * b['covered_share']:.1f}% of listening"
        )
        if b.get("note"):
            text += f" ({b['note']})"
        out.append(text + ".")
    return "\n".join(out)


def _follow_table(r: dict[str, Any]) -> str:
    rows = [
        (t["name"], t["tier"] if t["tier"] is not None else "-", t["state"],
         format_size(t["data_size"]), t["reason"] or "")
        for t in r["torrents"]
    ]  # fmt: skip
    head = (
        format_table(("torrent", "tier", "state", "size", "note"), rows)
        if rows
        else ("Nothing followed yet: run 'ccmirror sync MANIFEST'.")
    )
    line = (
        f"Following {r['list']}: {r['held']} torrents held ({format_size(r['held_bytes'])} of"
        f" {format_size(r['space'])})"
    )
    if r["quarantined"]:
        line += f"; {len(r['quarantined'])} refused (under quarantine/follow/)"
    return f"{head}\n\n{line}."


@click.command()
@manifest_argument
@output_options
def status(manifest: str) -> None:
    """Show what the mirror holds: items and files by status and verdict, bytes stored,
    and per tier: items, files, bytes stored, verdicts, files packed, packs; then packs
    and torrents overall; then the budget, the bytes the store holds and the share of
    listening they cover.

    \b
    Example:
      ccmirror status manifests/netlabels.toml --json
    """
    from ccmirror.budget import status as mirror_status  # here: `--help` stays light

    with mirror_for(manifest, write=False) as mirror:
        if mirror.manifest.is_follower:
            from ccmirror.follow import follow_status  # a follower's only: libtorrent's side

            emit(follow_status(mirror), _follow_table)
            return
        emit(mirror_status(mirror), lambda r: _table(r, manifest))


COMMANDS = [status]
