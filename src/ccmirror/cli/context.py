"""The run's settings (the global options), shared by every command, the bars and the logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click


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
        CURRENT[0] = root.obj
    return root.obj


# The settings of the run in progress, for the summary line written after click returns.
CURRENT: list[Settings | None] = [None]
