"""Shared CLI pieces: options every command takes, opening the mirror, rendering.

The run's settings are in `context`, progress bars in `bars`, logging in `logs`; their
names are importable from here too."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from ccmirror.cli.bars import BarReporter, reporter
from ccmirror.cli.context import Settings, settings
from ccmirror.cli.logs import log_summary, setup_logging, summary_line
from ccmirror.errors import CCMirrorError, UsageError, WorkFailed
from ccmirror.manifest import load_manifest
from ccmirror.mirror import Mirror, lock_data_dir, open_mirror
from ccmirror.results import StageResult
from ccmirror.sizes import parse_size

log = logging.getLogger("ccmirror")

__all__ = [
    "SIZE",
    "BarReporter",
    "Settings",
    "command_name",
    "emit",
    "fail",
    "format_table",
    "lock_option",
    "log_summary",
    "manifest_argument",
    "mirror_for",
    "output_options",
    "reporter",
    "settings",
    "setup_logging",
    "summary_line",
]


def _set(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value not in (None, False):
            setattr(settings(ctx), attr, value)
            if attr in ("quiet", "verbose", "log_file", "debug"):
                try:
                    setup_logging(settings(ctx))
                except OSError as e:  # --log-file in a missing or unwritable folder: usage
                    settings(ctx).log_file = None
                    raise click.BadParameter(
                        f"cannot open {value}: {e.strerror or e}", ctx=ctx, param=_param
                    ) from None
        return value

    return callback


JSON_HELP = "Print exactly one JSON document on stdout."


def output_options(
    f: Callable[..., Any] | None = None, *, json_help: str = JSON_HELP
) -> Callable[..., Any]:
    """The global options (--data-dir, --json, --quiet, --verbose, --log-file, --debug),
    accepted before or after the command: `ccmirror --debug status M` and
    `ccmirror status M --debug` are the same. `json_help` for a command whose --json is
    not one document (seed prints JSON lines)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--debug",
            is_flag=True,
            expose_value=False,
            callback=_set("debug"),
            help="Show tracebacks and debug logs.",
        )(f)
        f = click.option(
            "--log-file",
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_set("log_file"),
            help="Also append timestamped log lines to this file (and a summary line at the end).",
        )(f)
        f = click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            callback=_set("verbose"),
            help="Log every step (INFO) even when not on a terminal.",
        )(f)
        f = click.option(
            "-q",
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_set("quiet"),
            help="Only errors on stderr; no progress, no table (for cron).",
        )(f)
        f = click.option(
            "--json",
            "json_",
            is_flag=True,
            expose_value=False,
            callback=_set("json"),
            help=json_help,
        )(f)
        return click.option(
            "--data-dir",
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=_set("data_dir"),
            help="Use this data directory instead of the manifest's data_dir.",
        )(f)

    return decorate(f) if f is not None else decorate


def lock_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        default=None,
        expose_value=False,
        callback=_set("lock_wait"),
        metavar="SECONDS",
        help="Wait this long for another run to release the lock (default 0: exit 3 at once).",
    )(f)


class SizeType(click.ParamType):
    """A size option: "50GiB", "2TB", "60KiB" or a byte count; a bad one is a usage error."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


SIZE = SizeType()


def manifest_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    """MANIFEST (--data-dir and the other global options come with `output_options`)."""
    return click.argument(
        "manifest", type=click.Path(dir_okay=False, path_type=str), metavar="MANIFEST"
    )(f)


@contextmanager
def mirror_for(manifest: str, *, write: bool) -> Iterator[Mirror]:
    """Open the mirror; writers hold the data dir's lock for the whole command."""
    s = settings()
    if write:
        m = load_manifest(manifest, s.data_dir)
        with lock_data_dir(m, s.lock_wait), open_mirror(manifest, s.data_dir) as mirror:
            yield mirror
    else:
        # A read-only command never creates a catalogue: a data dir without one is most
        # often a wrong --data-dir, and must not become an empty mirror there.
        m = load_manifest(manifest, s.data_dir)
        if m.data_dir.exists() and not m.data_dir.is_dir():
            raise UsageError(f"data directory {m.data_dir} is not a directory")
        if not (m.data_dir / "catalogue.sqlite").exists():
            raise UsageError(
                f"no catalogue in {m.data_dir} (wrong --data-dir? a new mirror starts with"
                f" 'ccmirror sync {manifest}')"
            )
        with open_mirror(manifest, s.data_dir, readonly=True) as mirror:
            yield mirror


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if n and _numeric(c) else c.ljust(w)
                for c, w in zip(row, widths, strict=True)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace(",", "").replace("-", "").isdigit()


def emit(
    result: dict[str, Any] | StageResult,
    table: Callable[[dict[str, Any]], str] | None = None,
    *,
    raise_failed: bool = True,
) -> None:
    """Render a command's result; exit 1 when it says some work failed.

    A typed result says so by its exit code; a plain dict by `failed`."""
    s = settings()
    failed = result.failed_count if isinstance(result, StageResult) else result.get("failed")
    if isinstance(result, StageResult):
        result = result.to_dict()
    s.result = result
    if s.json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    elif not s.quiet:
        text = table(result) if table else _default_table(result)
        if text:
            click.echo(text)
    if raise_failed and failed:
        raise WorkFailed(
            f"{command_name()}: finished, but {failed} failed (see the messages above or --json)"
        )


def command_name() -> str:
    """The command as typed, without the program name: "fetch", "licence inspect"."""
    ctx = click.get_current_context(silent=True)
    path = ctx.command_path if ctx is not None else "ccmirror"
    return path.split(" ", 1)[1] if " " in path else path


def fail(message: str, exit_code: int, level: int = logging.ERROR) -> CCMirrorError:
    """The one `ccmirror: ...` stderr line for a run that ends non-zero after printing its
    result; the same line goes to --log-file (raise what this returns)."""
    record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    return CCMirrorError(message, exit_code)


def _default_table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items() if not isinstance(v, dict | list)]
    return format_table(("", ""), rows) if rows else ""
