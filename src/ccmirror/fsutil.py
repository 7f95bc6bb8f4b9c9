"""Filesystem helpers: safe names from sources, atomic writes, hashing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from ccmirror.errors import UnsafeName, UsageError

CHUNK = 1024 * 1024
# 255 bytes (ext4, xfs, btrfs) less room for the ".part" a download is written to: a
# longer name could never be fetched and would fail on every run instead of being refused.
MAX_NAME_BYTES = 255 - len(".part")


def safe_relpath(name: str) -> PurePosixPath:
    """Validate a relative name from a source (may contain '/' sub-folders).

    Refuses rather than "cleans": absolute paths, '..' or '.' parts, empty parts,
    backslashes, NUL and other control characters.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeName("empty file name")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise UnsafeName(f"control character in file name {name!r}")
    if "\\" in name:
        raise UnsafeName(f"backslash in file name {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeName(f"absolute file name {name!r}")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafeName(f"file name {name!r} has a {part or 'empty'!r} path part")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise UnsafeName(f"file name part too long in {name[:80]!r}...")
    return PurePosixPath(*parts)


def safe_join(base: Path, *names: str) -> Path:
    """Join validated names under `base`; refuse anything that resolves outside it."""
    path = base
    for name in names:
        path = path.joinpath(*safe_relpath(name).parts)
    if _no_link_below(base, path):
        return path  # validated parts, none of them a link: it cannot resolve elsewhere
    base_real = os.path.realpath(base)
    real = os.path.realpath(path)
    if os.path.commonpath([base_real, real]) != base_real:
        raise UnsafeName(f"{'/'.join(names)!r} would land outside {base}")
    return path


def _no_link_below(base: Path, path: Path) -> bool:
    """No part of `path` below `base` is a symbolic link (one lstat per part; a part that
    does not exist ends the walk: nothing below it does). Then, its parts validated (no
    '..'), `path` resolves inside wherever `base` resolves, and the two realpath walks over
    every part of both (about 12 lstat for a store file) are not needed."""
    here = str(base)
    for part in path.parts[len(base.parts) :]:
        here = os.path.join(here, part)
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return False
        except OSError:
            return True  # as realpath: what cannot be looked at is not followed either
    return True


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory (and its parents) or say plainly why it cannot be used:
    a file in its place or a folder we may not write is a setup error (exit 2)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"data directory {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"data directory {path} is not a directory") from None
    except OSError as e:
        raise UsageError(f"cannot create data directory {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"data directory {path} is not writable")
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def promote(part: Path, final: Path) -> None:
    """fsync a finished `.part` file, rename it into place, fsync the folder."""
    fsync_file(part)
    os.replace(part, final)
    fsync_dir(final.parent)


def atomic_write_bytes(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically; leave an identical file untouched (so an idle run
    changes no mtime). Returns whether it wrote."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    fsync_dir(path.parent)
    return True


def atomic_write_text(path: Path, text: str) -> bool:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> bool:
    return atomic_write_text(
        path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    )


def hash_file(path: Path, algorithms: Iterable[str] = ("md5", "sha1")) -> dict[str, str]:
    """Hash a file once with several algorithms."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}
