"""`ccmirror check` and `ccmirror licence inspect`."""

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
    settings,
)


def _check_table(r: dict[str, Any]) -> str:
    rows = [(lic, v, n) for lic, by in r["licences"].items() for v, n in sorted(by.items())]
    head = (
        f"checked {r['checked']}, unchanged {r['unchanged']}, quarantined {r['quarantined']}"
        + (f", missing {r['missing']}" if r["missing"] else "")
        + (f", failed {r['failed']}" if r["failed"] else "")
    )
    if not rows:
        return head + "\nNo fetched files yet: run 'ccmirror fetch MANIFEST' first."
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(r["verdicts"].items()))
    return "\n".join([head, f"verdicts: {verdicts}", "", format_table(("licence", "verdict", "files"), rows)])  # fmt: skip


@click.command()
@manifest_argument
@lock_option
@output_options
def check(manifest: str) -> None:
    """Decide a licence verdict for every fetched file (source licence + the file's own tags).

    Files already judged and unchanged are not read again. Conflict and unreadable files are
    moved to <data_dir>/quarantine/ with a <file>.reason.json beside them (never deleted).

    \b
    Example:
      ccmirror check manifests/netlabels.toml --json
    """
    from ccmirror.licence.check import check as run_check

    with mirror_for(manifest, write=True) as mirror:
        result = run_check(mirror, reporter=reporter())
    emit(result, _check_table)


@click.group()
def licence() -> None:
    """Licence tools that need no catalogue.

    \b
    Example:
      ccmirror licence inspect song.mp3 --manifest manifests/netlabels.toml
    """


def _inspect_table(r: dict[str, Any]) -> str:
    rows = [
        (
            f["path"],
            f["verdict"],
            f["licence_id"] or "-",
            f.get("embedded_pictures") or 0,
            f["error"] or f["reason"],
        )
        for f in r["files"]
    ]
    return format_table(("file", "verdict", "licence", "pictures", "reason"), rows)


@licence.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--manifest",
    "manifest",
    type=click.Path(dir_okay=False, path_type=str),
    help="Judge with this manifest's [licence] policy instead of the default.",
)
@output_options
def inspect(files: tuple[str, ...], manifest: str | None) -> None:
    """Show the licence evidence in audio files' own tags and the verdict it gives.

    No catalogue is needed; a missing or damaged file is reported (verdict unreadable) and
    the others are still read.

    \b
    Example:
      ccmirror licence inspect song.mp3 album/*.flac --json
    """
    from ccmirror.licence import inspect as run_inspect
    from ccmirror.manifest import load_manifest

    config = load_manifest(manifest, settings().data_dir).licence if manifest else None
    emit(run_inspect(files, config), _inspect_table)


COMMANDS = [check, licence]
