"""`ccmirror harvest` and `ccmirror fetch`."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.cli.common import (
    SIZE,
    emit,
    fail,
    format_table,
    lock_option,
    manifest_argument,
    mirror_for,
    output_options,
    reporter,
)
from ccmirror.errors import EXIT_UNREACHABLE
from ccmirror.sizes import format_size
from ccmirror.sources.registry import HARVEST_COUNTS


def _harvest_table(r: dict[str, Any]) -> str:
    rows: list[tuple[Any, ...]] = [(k, r.get(k, 0)) for k in HARVEST_COUNTS]
    rows += [(f"refused: {reason}", n) for reason, n in r.get("refused", {}).items()]
    text = format_table(("items", "count"), rows)
    for warning in r.get("warnings", []):
        text += f"\nwarning: {warning}"
    return text


def _fetch_table(r: dict[str, Any]) -> str:
    rows: list[tuple[Any, ...]] = [
        (k, r[k])
        for k in (
            "considered",
            "fetched",
            "adopted",
            "failed",
            "refused",
            "deferred",
            "skipped_budget",
            "skipped_unreachable",
        )
    ]
    rows.append(("bytes added", format_size(r["bytes"])))
    rows.append(("store", format_size(r["store_bytes"])))
    if r.get("max_bytes") is not None:
        rows.append(("budget", format_size(r["max_bytes"])))
    text = format_table(("files", "count"), rows)
    if r.get("failures"):
        text += "\n\n" + format_table(
            ("item", "file", "reason"),
            [(f["source_id"], f["name"], f["reason"]) for f in r["failures"]],
        )
    return text


@click.command()
@manifest_argument
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Item metadata requests in flight at most (16 at most to one host; halved on 429/503).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Read every row of an FMA dataset even when its inputs are unchanged since the"
    " last complete harvest (that pass is otherwise skipped, its counts reported).",
)
@lock_option
@output_options
def harvest(manifest: str, workers: int, full: bool) -> None:
    """Discover the manifest's items and files into the catalogue.

    Searches each source, reads the metadata of new or changed items (unchanged ones are
    not read again), records dark, empty and refused items (excluded collections, licences
    the policy does not allow) with their reason. Nothing is downloaded. An FMA dataset
    whose metadata, audio and licence policy are unchanged since its last complete
    harvest, with nothing written to its items since, is not read again (`skipped_pass`
    in --json says so); --full reads it anyway.

    \b
    Example:
      ccmirror harvest manifests/netlabels.toml --workers 8 --json
    """
    from ccmirror.harvest import harvest as run

    with mirror_for(manifest, write=True) as mirror:
        result = run(
            mirror, workers=workers, reporter=reporter(), raise_unreachable=False, full=full
        )
    # The document is printed on every exit, a source that never answered included (exit 4).
    unreachable = result.get("unreachable") or []
    if unreachable:
        result["exit_code"] = EXIT_UNREACHABLE
    emit(result, _harvest_table, raise_failed=not unreachable)
    if unreachable:
        raise fail("; ".join(unreachable), EXIT_UNREACHABLE)


@click.command()
@manifest_argument
@click.option(
    "--max-bytes",
    type=SIZE,
    metavar="SIZE",
    help="Download at most SIZE in this run (e.g. 20GiB); the rest waits for the next run.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Downloads in flight at most in all (default: each source's `downloads`, 8;"
    " never more than 16 to one host).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try files that failed before now, ignoring their backoff.",
)
@lock_option
@output_options
def fetch(manifest: str, max_bytes: int | None, workers: int | None, retry_failed: bool) -> None:
    """Download and verify the harvested files, most popular items first.

    Each file is resumed if interrupted, checked against its size and checksums, and
    renamed into store/ only when it matches (bad bytes go to quarantine/).

    A file that failed is tried again on the next run. If it fails again, it waits: 1 hour
    after its last attempt, then 2, 4, 8 hours ... at most 7 days, doubling with each
    failed run. Until then it is counted as `deferred`, which is not an error;
    --retry-failed tries such files now. A source that did not answer at all does not
    count towards a file's backoff.

    Exit 1 when a download tried in this run failed; exit 4 when the source never
    answered and nothing could be fetched.

    \b
    Examples:
      ccmirror fetch manifests/netlabels.toml --max-bytes 20GiB
      ccmirror fetch manifests/netlabels.toml --retry-failed
    """
    from ccmirror.fetch import fetch as run

    with mirror_for(manifest, write=True) as mirror:
        result = run(
            mirror,
            max_bytes=max_bytes,
            workers=workers,
            reporter=reporter(),
            retry_failed=retry_failed,
        )
    emit(result, _fetch_table)


COMMANDS = [harvest, fetch]
