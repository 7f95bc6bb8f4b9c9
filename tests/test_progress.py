"""Progress and logs on a terminal; the log file's summary line; a host that never
answers gives "contacting ..." at once and one error line."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import subprocess
import sys

import click
import pytest

from ccmirror.cli import cli as group
from ccmirror.cli.common import BarReporter, settings, setup_logging, summary_line
from ccmirror.sources.ia import BACKOFF_FACTOR, CONNECT_TIMEOUT, retry_policy
from conftest import run_cli


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal, inside a CLI context (patched per test: pytest puts its own
    stderr back between the setup and the call)."""
    out = Terminal()
    monkeypatch.setenv("COLUMNS", "120")

    @contextlib.contextmanager
    def use():
        monkeypatch.setattr(sys, "stderr", out)
        with click.Context(group).scope():
            setup_logging(settings())
            try:
                yield out
            finally:
                logging.getLogger("ccmirror").handlers.clear()

    return use


def _frames(text: str) -> list[str]:
    return [f for f in re.split(r"[\r\n]", text) if f.strip()]


def test_bar_shows_sizes_rate_eta_and_never_passes_100(terminal):
    with terminal() as out:
        bar = BarReporter()
        bar.start("fetch", 3 * 1024 * 1024, "bytes")
        for _ in range(4):  # one more MiB than the estimate
            bar.advance(1024 * 1024)
        bar.finish()
    frames = _frames(out.getvalue())
    assert any(re.search(r"\d B/s|iB/s", f) and "ETA" in f for f in frames), frames
    assert any("4.0 MiB/4.0 MiB" in f and "100%" in f for f in frames), frames
    percents = [int(p) for f in frames for p in re.findall(r"(\d+)%\|", f)]
    assert percents and max(percents) == 100
    assert not any(re.search(r"\b\d{4,}/\d{4,}\b", f) for f in frames)  # no raw byte counts


def test_items_bar_counts_items(terminal):
    with terminal() as out:
        bar = BarReporter()
        bar.start("check", 2, "files")
        bar.advance(5)
        bar.finish()
    frames = _frames(out.getvalue())
    assert any("5/5 files" in f and "100%" in f for f in frames), frames


def test_a_log_line_is_never_glued_to_a_bar(terminal):
    with terminal() as out:
        bar = BarReporter()
        bar.start("pack", 100, "items")
        bar.advance(40)
        logging.getLogger("ccmirror.test").warning("a message in the middle")
        bar.advance(60)
        bar.finish()
    text = out.getvalue()
    i = text.index("a message in the middle")
    line_start = max(text.rfind("\n", 0, i), text.rfind("\r", 0, i))
    # The log line starts on a line of its own: the bar was cleared first.
    assert text[line_start + 1 : i].strip().endswith("WARNING"), text[line_start + 1 : i]
    assert text[i:].split("\n", 1)[0] == "a message in the middle"


def test_no_bar_off_a_terminal_or_with_quiet(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    with click.Context(group).scope():
        bar = BarReporter()
        bar.start("fetch", 10, "bytes")
        bar.advance(10)
        bar.finish()
    assert out.getvalue() == ""


def test_summary_line_counts():
    line = summary_line(
        "sync",
        1,
        {"exit_code": 1, "stages": {"fetch": {"ok": False, "fetched": 3, "failed": 2}}},
    )
    assert line == "summary: sync: exit 1; exit_code 1; fetch FAILED (fetched 3, failed 2)"


def test_every_log_file_run_ends_with_one_summary_line(tmp_path):
    log = tmp_path / "run.log"
    path = tmp_path / "m.toml"
    path.write_text(
        f'[mirror]\nname = "x"\ndata_dir = "{tmp_path / "d"}"\n'
        '[[source]]\nkind = "ia"\nquery = "q"\nendpoint = "http://127.0.0.1:9"\n'
    )
    runs = [
        (("sync", str(path), "--quiet"), 4),
        (("status", str(path)), 0),
        (("licence", "inspect", str(tmp_path / "missing.mp3")), 1),
        (("plan", str(path)), 2),  # a usage error ends with its line too
    ]
    for args, code in runs:
        r = run_cli(*args, "--log-file", str(log))
        assert r.returncode == code, r.stderr
        last = log.read_text().splitlines()[-1]
        assert re.search(rf"INFO summary: {args[0]}.*: exit {code}\b", last), last
    lines = log.read_text().splitlines()
    assert sum("summary:" in ln for ln in lines) == len(runs)
    assert "summary: sync: exit 4" in "\n".join(lines) and "harvest FAILED" in "\n".join(lines)


def test_a_host_that_never_answers_is_said_at_once_and_fails_in_one_line(tmp_path):
    # A listening socket whose backlog is full drops new SYNs: a connect that never
    # completes, as with no network at all.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fill.append(c)
    path = tmp_path / "m.toml"
    path.write_text(
        f'[mirror]\nname = "x"\ndata_dir = "{tmp_path / "d"}"\n'
        f'[[source]]\nkind = "ia"\nquery = "q"\nendpoint = "http://127.0.0.1:{port}"\n'
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccmirror", "sync", str(path), "--verbose"],
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        # The first line comes before any answer could.
        first = proc.stderr.readline()
        assert f"contacting 127.0.0.1:{port}..." in first
        _, rest = proc.communicate(timeout=120)
    finally:
        for c in fill:
            c.close()
        srv.close()
    assert proc.returncode == 4
    errors = [ln for ln in rest.splitlines() if "ERROR" in ln or ln.startswith("ccmirror:")]
    assert len(errors) == 1 and "cannot reach" in errors[0], rest


def test_connect_retries_end_within_ten_seconds():
    # What the line above takes against a host that never answers: every connect
    # attempt times out; urllib3 sleeps nothing before the first retry.
    r = retry_policy()
    attempts = r.connect + 1
    sleeps = sum(BACKOFF_FACTOR * 2 ** (k - 1) for k in range(2, attempts))
    assert attempts * CONNECT_TIMEOUT + sleeps <= 10
    assert r.read == r.total  # answers that fail (429/5xx, resets) are still retried
