"""Typed, key-recording access to one TOML table: every problem is a ManifestError naming the key."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ccmirror.errors import ManifestError
from ccmirror.sizes import parse_size

# Set by `recording_keys()`: every section key the loader reads is added, as "torrents.format"
# or "source.query" (docs/manifest.md must name exactly these; a test checks).
_KEYS_READ: ContextVar[set[str] | None] = ContextVar("ccmirror_manifest_keys", default=None)


@contextmanager
def recording_keys() -> Iterator[set[str]]:
    """Collect the dotted names of the keys read by the loads inside the block."""
    keys: set[str] = set()
    token = _KEYS_READ.set(keys)
    try:
        yield keys
    finally:
        _KEYS_READ.reset(token)


class Section:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, path: Path, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ManifestError(path, prefix, "must be a table")
        self.path, self.prefix, self.data = path, prefix, data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.path, self.key(name), problem)

    def get(self, name: str, typ: type | tuple[type, ...], default: Any = None, required=False):
        self.seen.add(name)
        recorder = _KEYS_READ.get()
        if recorder is not None and self.prefix:
            recorder.add(re.sub(r"\[\d+\]", "", self.key(name)))
        if name not in self.data:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.data[name]
        # bool is an int in Python; TOML true is never a number here.
        if isinstance(value, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
            raise self.fail(name, f"must be {_typename(typ)}, not a boolean")
        if not isinstance(value, typ):
            raise self.fail(name, f"must be {_typename(typ)}, not {type(value).__name__}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return tuple(value)

    def size(self, name: str, default: int | None) -> int | None:
        value = self.get(name, (str, int), None)
        if value is None:
            return default
        try:
            return parse_size(value)
        except ValueError as e:
            raise self.fail(name, str(e)) from None

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _typename(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names.update({list: "a list", dict: "a table"})
    types = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(names.get(t, t.__name__) for t in types)


def local_path(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))
