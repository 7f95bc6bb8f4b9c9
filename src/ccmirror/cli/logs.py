"""Log lines on stderr (above a live bar) and in --log-file, and the run's summary line."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ccmirror.cli.context import CURRENT, Settings

log = logging.getLogger("ccmirror")


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
            tqdm = sys.modules.get("tqdm")  # imported with the first bar; none, no bar
            if tqdm is None:
                self.stream.write(self.format(record) + "\n")
                self.flush()
            else:
                tqdm.tqdm.write(self.format(record), file=self.stream)
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
    s = CURRENT[0]
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
