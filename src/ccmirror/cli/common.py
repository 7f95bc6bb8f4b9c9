"""Shared CLI pieces: options every command takes, rendering, progress bars, logging."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from tqdm import tqdm

from ccmirror.errors import CCMirrorError, UsageError, WorkFailed
from ccmirror.manifest import load_manifest
from ccmirror.mirror import Mirror, lock_data_dir, open_mirror
from ccmirror.results import StageResult
from ccmirror.sizes import format_size, parse_size

log = logging.getLogger("ccmirror")


@dataclass
class Settings:
    data_dir: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    debug: bool = False
    log_file: str | None = None
    lock_wait: float = 0.0
    result: dict[str, Any] | None = None  # what the command reported (the log's summary line)


def settings(ctx: click.Context | None = None) -> Settings:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
        _CURRENT[0] = root.obj
    return root.obj


# The settings of the run in progress, for the summary line written after click returns.
_CURRENT: list[Settings | None] = [None]


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


class _Bar(tqdm):
    """tqdm with our size format (KiB, MiB: binary, as everywhere else) and rate."""

    def __init__(self, *args: Any, sizes: bool = False, **kw: Any) -> None:
        self._sizes = sizes
        super().__init__(*args, **kw)

    @property
    def format_dict(self) -> dict[str, Any]:
        d = super().format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        rate = d["rate"] or (n / elapsed if elapsed else 0.0)
        if self._sizes:
            d["done"] = format_size(int(n))
            d["all"] = format_size(int(total)) if total else "?"
            d["speed"] = f"{format_size(int(rate))}/s"
        else:
            d["done"], d["all"] = f"{int(n):,}", f"{int(total):,}" if total else "?"
            d["speed"] = f"{rate:.1f} {d['unit']}/s"
        return d


_WITH_TOTAL = "{desc} {percentage:3.0f}%|{bar:24}| {done}/{all} {unit}  {speed}  ETA {remaining}"
_NO_TOTAL = "{desc} {done} {unit}  {speed}  {elapsed}"


class BarReporter:
    """A progress bar on stderr, only on a terminal, never with --quiet: sizes in human
    units with rate and ETA, never past 100% (a low estimate grows to what was done).

    tqdm rather than click's bar: it is already installed (internetarchive depends on it),
    it formats rate and ETA, and `tqdm.write` lets a log line pass above a live bar
    instead of being glued to it (see `_BarSafeHandler`)."""

    def __init__(self) -> None:
        self._bar: _Bar | None = None
        self._lock = threading.Lock()

    @staticmethod
    def wanted() -> bool:
        s = settings()
        return sys.stderr.isatty() and not s.quiet

    def start(self, label: str, total: int | None = None, unit: str = "items") -> None:
        self.finish()
        if self.wanted():
            sizes = unit == "bytes"
            with self._lock:
                self._bar = _Bar(
                    total=total or None,
                    desc=f"{label:<10}",
                    unit="" if sizes else unit,
                    sizes=sizes,
                    file=sys.stderr,
                    bar_format=_WITH_TOTAL if total else _NO_TOTAL,
                    # A terminal that reports no size (0 columns) still gets a bar.
                    ncols=shutil.get_terminal_size().columns or 80,
                    mininterval=0.2,
                    leave=True,
                )

    def advance(self, n: int = 1) -> None:
        with self._lock:
            bar = self._bar
            if bar is None:
                return
            if bar.total is not None and bar.n + n > bar.total:
                bar.total = bar.n + n  # the estimate was low: 100%, never 102%
            bar.update(n)

    def finish(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


def reporter() -> BarReporter:
    return BarReporter()


class _OneLineFormatter(logging.Formatter):
    """Log lines without the traceback a library attached (exc_info): tracebacks reach
    stderr only with --debug; --log-file keeps them for the operator."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _BarSafeHandler(logging.StreamHandler):
    """stderr lines that pass above a live progress bar (tqdm.write clears and redraws
    it), never glued to its end."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def _not_repeated_at_exit(record: logging.LogRecord) -> bool:
    """A line the run's final `ccmirror:` line says again stays out of stderr (the log
    file keeps it): cron mails one line, not the same error twice."""
    return not getattr(record, "repeated_at_exit", False)


def summary_line(command: str, code: int, result: dict[str, Any] | None) -> str:
    """One line for the log file at the end of every run: the exit code and the counts."""
    parts = [f"{command}: exit {code}"]
    for key, value in (result or {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} {value}")
        elif key == "stages" and isinstance(value, dict):
            for stage, out in value.items():
                counts = [
                    f"{k} {v}"
                    for k, v in (out or {}).items()
                    if isinstance(v, int) and not isinstance(v, bool) and v and k != "seconds"
                ]
                state = "" if (out or {}).get("ok", True) else " FAILED"
                parts.append(f"{stage}{state}" + (f" ({', '.join(counts)})" if counts else ""))
    return "summary: " + "; ".join(parts)


def log_summary(command: str, code: int) -> None:
    """Write the summary line to --log-file (only there: stderr already had its say)."""
    s = _CURRENT[0]
    if s is None or not s.log_file:
        return
    record = log.makeRecord(
        log.name, logging.INFO, __file__, 0, summary_line(command, code, s.result), (), None
    )
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def setup_logging(s: Settings) -> None:
    """Timestamped lines on stderr; INFO on a terminal, WARNING in cron, ERROR with -q."""
    root = logging.getLogger("ccmirror")
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    err = _BarSafeHandler(sys.stderr)
    err.addFilter(_not_repeated_at_exit)
    err.setFormatter(fmt if s.debug else _OneLineFormatter(fmt._fmt, fmt.datefmt))
    if s.quiet:
        err.setLevel(logging.ERROR)
    elif s.verbose or s.debug:
        err.setLevel(logging.DEBUG if s.debug else logging.INFO)
    else:
        err.setLevel(logging.INFO if sys.stderr.isatty() else logging.WARNING)
    root.addHandler(err)
    if s.log_file:
        fh = logging.FileHandler(s.log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        fh.setLevel(logging.INFO)
        root.addHandler(fh)
    root.setLevel(logging.DEBUG)
    root.propagate = False
