"""Progress reporting from library code, which never prints.

Library functions take a `Reporter`; the CLI passes one that draws bars on a terminal
(and nothing in cron); tests and scripts pass `NullReporter()`.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, label: str, total: int | None = None, unit: str = "items") -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NullReporter:
    def start(self, label: str, total: int | None = None, unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
