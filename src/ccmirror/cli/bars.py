"""Progress bars on stderr (tqdm), the CLI's `Reporter`. tqdm is imported with the first
bar: `ccmirror --help`, --quiet and cron runs (no terminal) never load it."""

from __future__ import annotations

import functools
import shutil
import sys
import threading
from typing import Any

from ccmirror.cli.context import settings
from ccmirror.sizes import format_size


@functools.cache
def _bar_class() -> type:
    """tqdm with our size format (KiB, MiB: binary, as everywhere else) and rate."""
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
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

    return _Bar


_WITH_TOTAL = "{desc} {percentage:3.0f}%|{bar:24}| {done}/{all} {unit}  {speed}  ETA {remaining}"
_NO_TOTAL = "{desc} {done} {unit}  {speed}  {elapsed}"


class BarReporter:
    """A progress bar on stderr, only on a terminal, never with --quiet: sizes in human
    units with rate and ETA, never past 100% (a low estimate grows to what was done).

    tqdm rather than click's bar: it is already installed (internetarchive depends on it),
    it formats rate and ETA, and `tqdm.write` lets a log line pass above a live bar
    instead of being glued to it (see `_BarSafeHandler`)."""

    def __init__(self) -> None:
        self._bar: Any = None  # the tqdm bar while one is shown
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
                self._bar = _bar_class()(
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
