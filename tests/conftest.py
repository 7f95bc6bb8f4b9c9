"""Shared fixtures. Keep this generic: feature fixtures live in their own test modules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def write_manifest(tmp_path: Path, data_dir: Path):
    """Write a manifest; `body` is TOML after the [mirror] table (sources etc.)."""

    def write(body: str, name: str = "test", filename: str = "mirror.toml") -> Path:
        path = tmp_path / filename
        head = f'[mirror]\nname = "{name}"\ndata_dir = "{data_dir}"\n\n'
        path.write_text(head + textwrap.dedent(body), encoding="utf-8")
        return path

    return write


def run_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """Run the real console entry point in a child process."""
    full_env = dict(os.environ)
    full_env.pop("CCMIRROR_DATA_DIR", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ccmirror", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=kw.pop("timeout", 300),
        **kw,
    )


@pytest.fixture
def cli():
    return run_cli
