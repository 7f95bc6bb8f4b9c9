"""`ccmirror pack`."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.cli.common import (
    emit,
    format_table,
    lock_option,
    manifest_argument,
    mirror_for,
    output_options,
    reporter,
)
from ccmirror.sizes import format_size


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"Assigned {r['assigned_files']} files of {r['assigned_items']} items;"
        f" sealed {len(r['sealed'])} packs; {len(r['open'])} open."
    ]
    if r["sealed"]:
        rows = [
            (s["name"], s["files"], format_size(s["bytes"]), s["btih"] or s["btmh"])
            for s in r["sealed"]
        ]
        lines += ["", format_table(("sealed", "files", "bytes", "info-hash"), rows)]
    if r["open"]:
        rows = [(o["name"], o["files"]) for o in r["open"]]
        lines += ["", format_table(("open", "files"), rows)]
        lines += ["", "Open packs are sealed when full, or now with --seal-partial."]
    if r["repaired"]:
        lines += ["", "Rebuilt (same info-hash): " + ", ".join(r["repaired"])]
    if r["failed"]:
        lines += ["", f"{r['failed']} files could not be packed (see the log); retry later."]
    return "\n".join(lines)


@click.command()
@manifest_argument
@click.option(
    "--seal-partial",
    is_flag=True,
    help="Also seal each tier's last, not yet full pack (so a small mirror gets torrents).",
)
@output_options
@lock_option
def pack(manifest: str, seal_partial: bool) -> None:
    """Put checked, publishable files into tiered packs; seal full packs into .torrent files.

    A sealed pack never changes: new files go into new packs. Payloads are hard links
    under <data_dir>/packs/<pack>/, torrents go to <data_dir>/torrents/, and
    public/torrents.json is refreshed.

    \b
    Example:
      ccmirror pack manifests/netlabels.toml --seal-partial
    """
    from ccmirror.packs import pack as run_pack  # here: `ccmirror --help` never loads libtorrent

    with mirror_for(manifest, write=True) as mirror:
        emit(run_pack(mirror, seal_partial=seal_partial, reporter=reporter()), _table)


COMMANDS = [pack]
