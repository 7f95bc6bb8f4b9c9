"""`ccmirror init`: a new mirror's manifest from the templates shipped in the package."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.cli.common import emit, output_options, settings
from ccmirror.init import TEMPLATES, init_manifest


def _table(r: dict[str, Any]) -> str:
    lines = [f"Wrote {r['manifest']} ({r['source']} source); data_dir = {r['data_dir']}."]
    lines += ["Edit it (docs/manifest.md lists every key), then:"]
    lines += [f"  {c}" for c in r["next"]]
    return "\n".join(lines)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option(
    "--source",
    type=click.Choice(sorted(TEMPLATES)),
    default="ia",
    show_default=True,
    help="ia: the Internet Archive's netlabels collection; fma: the FMA dataset.",
)
@output_options
def init(file: str, source: str) -> None:
    """Write a commented manifest to FILE to start a mirror of your own.

    The text is the netlabels (ia) or FMA (fma) manifest shipped with ccmirror, with
    data_dir set from --data-dir when given. An existing FILE is never overwritten (exit 2).

    \b
    Examples:
      ccmirror init mirror.toml --data-dir /srv/ccmirror
      ccmirror init fma.toml --source fma
      ccmirror sync mirror.toml --dry-run
    """
    emit(init_manifest(file, source, settings().data_dir), _table)


COMMANDS = [init]
