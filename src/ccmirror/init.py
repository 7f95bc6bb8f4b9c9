"""`ccmirror init`: a new mirror's manifest, written from the templates shipped in the
package (`ccmirror/data/manifests/`: the netlabels and FMA manifests of the repo).

The file is created, never replaced: an existing path is a usage error (exit 2).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from ccmirror.errors import UsageError
from ccmirror.fsutil import fsync_dir, fsync_file

TEMPLATES = {"ia": "netlabels.toml", "fma": "fma.toml"}
_DATA_DIR_LINE = re.compile(r'^data_dir = "[^"\n]*"$', re.M)


def template_text(source: str) -> str:
    """The shipped manifest for a source kind ("ia" or "fma")."""
    if source not in TEMPLATES:
        raise UsageError(f"init: --source must be one of {', '.join(TEMPLATES)}, not {source!r}")
    from importlib import resources  # here: the read-only commands' start-up stays light

    ref = resources.files("ccmirror") / "data" / "manifests" / TEMPLATES[source]
    return ref.read_text(encoding="utf-8")


def toml_string(value: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_manifest(source: str, data_dir: str | None) -> str:
    """The template, with `data_dir` set to `data_dir` (made absolute) when given."""
    text = template_text(source)
    if data_dir is not None:
        value = os.path.abspath(os.path.expanduser(data_dir))
        text, n = _DATA_DIR_LINE.subn(lambda _m: f"data_dir = {toml_string(value)}", text, 1)
        if n != 1:  # the shipped template lost its data_dir line: a packaging bug
            raise UsageError(f"init: template {TEMPLATES[source]} has no data_dir line")
    return text


def init_manifest(
    path: str | os.PathLike[str], source: str = "ia", data_dir: str | None = None
) -> dict[str, Any]:
    """Write a commented manifest at `path`; refuse (exit 2) when `path` exists."""
    target = Path(path)
    text = render_manifest(source, data_dir)
    if target.exists() or target.is_symlink():
        raise UsageError(f"init: {target} already exists; not overwritten (choose another name)")
    if not target.parent.is_dir():
        raise UsageError(f"init: no such folder: {target.parent}")
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(part, "x", encoding="utf-8") as f:
            f.write(text)
        fsync_file(part)
        # link(2) never replaces: a file created meanwhile is refused, not clobbered.
        os.link(part, target)
    except FileExistsError:
        raise UsageError(f"init: {target} already exists; not overwritten") from None
    finally:
        part.unlink(missing_ok=True)
    fsync_dir(target.parent)
    return {
        "manifest": str(target),
        "source": source,
        "data_dir": tomllib.loads(text)["mirror"]["data_dir"],
        "next": [
            f"ccmirror sync {target} --dry-run",
            f"ccmirror sync {target}",
        ],
    }
