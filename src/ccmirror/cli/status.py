"""`ccmirror status`."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.catalogue.queries import status_counts
from ccmirror.cli.common import emit, format_table, manifest_argument, mirror_for, output_options
from ccmirror.sizes import format_size


def _table(r: dict[str, Any]) -> str:
    rows: list[tuple[Any, ...]] = [("items", k, v, "") for k, v in sorted(r["items"].items())]
    rows += [
        ("files", k, v["files"], format_size(v["bytes"])) for k, v in sorted(r["files"].items())
    ]
    rows += [("verdict", k, v, "") for k, v in sorted(r["verdicts"].items())]
    if not rows:
        return "The catalogue is empty: run 'ccmirror harvest MANIFEST' first."
    return format_table(("what", "status", "count", "bytes"), rows)


@click.command()
@manifest_argument
@output_options
def status(manifest: str) -> None:
    """Show what the mirror holds: items and files by status, verdicts, bytes stored.

    \b
    Example:
      ccmirror status manifests/netlabels.toml --json
    """
    with mirror_for(manifest, write=False) as mirror:
        emit(status_counts(mirror.db), _table)


COMMANDS = [status]
