"""`ccmirror tiers` and `ccmirror plan`."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.cli.common import (
    SIZE,
    emit,
    format_table,
    manifest_argument,
    mirror_for,
    output_options,
    settings,
)
from ccmirror.errors import UsageError
from ccmirror.manifest import load_manifest
from ccmirror.sizes import format_size


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _per_gb(share_per_byte: float | None) -> str:
    """Share of listening per GB held: what a compact tier multiplies."""
    return "-" if share_per_byte is None else f"{100 * share_per_byte * 1e9:.3g}%/GB"


def _tiers_table(r: dict[str, Any]) -> str:
    if not r["tiers"]:
        return "No items yet: run 'ccmirror harvest MANIFEST' first."
    rows = [
        (
            t["tier"],
            t["items"],
            t["files"],
            format_size(t["bytes"]),
            format_size(t["estimated_bytes"]),
            _pct(t["popularity_share"]),
            _pct(t["cumulative_share"]),
            format_size(t["cumulative_bytes"]),
            t["quality"],
            _per_gb(t["share_per_byte"]),
        )
        for t in r["tiers"]
    ]
    return format_table(
        (
            "tier", "items", "files", "bytes", "of it est.", "share", "cum. share", "cum. bytes", "quality",
            "share/GB",
        ),
        rows,
    )  # fmt: skip


@click.command()
@manifest_argument
@output_options
def tiers(manifest: str) -> None:
    """Show the popularity tiers: items, files, bytes and share of listening per tier.

    Tier k holds the items that bring each source's cumulative popularity up to the
    manifest's [tiers] shares[k]. Sizes of files not yet fetched are the source's figures,
    else estimates (bit rate x duration): the "of it est." column.

    \b
    Example:
      ccmirror tiers manifests/netlabels.toml --json
    """
    from ccmirror.tiers import tier_table  # here: `ccmirror --help` stays light

    with mirror_for(manifest, write=False) as mirror:
        emit(tier_table(mirror), _tiers_table)


def _plan_table(r: dict[str, Any]) -> str:
    rows = [
        (
            t["tier"],
            t["included"],
            f"{t['items']}/{t['tier_items']}",
            format_size(t["bytes"]),
            _pct(t["popularity_share"]),
            t["quality"],
            _per_gb(t["share_per_byte"]),
        )
        for t in r["tiers"]
    ]
    head = (
        f"Budget {format_size(r['budget'])}: {r['items']} items, {format_size(r['bytes'])}"
        + (f" ({format_size(r['estimated_bytes'])} estimated)," if r["estimated_bytes"] else ",")
        + f" {_pct(r['popularity_share'])} of listening ({r['note']})."
    )
    if not rows:
        return head
    columns = ("tier", "included", "items", "bytes", "share", "quality", "share/GB")
    return head + "\n\n" + format_table(columns, rows)


@click.command()
@manifest_argument
@click.option(
    "--budget",
    type=SIZE,
    metavar="SIZE",
    help="Disk you can give the mirror, e.g. 2TB (default: the manifest's [mirror] budget).",
)
@output_options
def plan(manifest: str, budget: int | None) -> None:
    """What to mirror with the disk you have: the tiers and items a budget holds and the
    share of listening they cover. Where the budget cuts a tier, that tier is filled by
    popularity per byte.

    \b
    Example:
      ccmirror plan manifests/netlabels.toml --budget 2TB

    Compact tiers count at their compact size (estimated from playing time x bitrate until
    the copies exist); sync and fetch fill the store with exactly this selection for the
    manifest's budget.
    """
    # The size first: a usage error needs no catalogue.
    if budget is None:
        budget = load_manifest(manifest, settings().data_dir).budget
    if budget is None:
        raise UsageError("plan: give --budget SIZE, or set [mirror] budget in the manifest")
    from ccmirror.tiers import plan as plan_budget

    with mirror_for(manifest, write=False) as mirror:
        emit(plan_budget(mirror, budget), _plan_table)


COMMANDS = [tiers, plan]
