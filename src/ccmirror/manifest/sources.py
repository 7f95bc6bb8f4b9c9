"""The `[[source]]` tables: one parser per source kind (`ccmirror.sources.registry` names
them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccmirror.errors import ManifestError
from ccmirror.manifest.model import (
    ALWAYS_EXCLUDED,
    DEFAULT_DOWNLOADS,
    DEFAULT_IA_ENDPOINT,
    MAX_DOWNLOADS,
    FMASource,
    IASource,
    Source,
)
from ccmirror.manifest.section import Section, is_url, local_path
from ccmirror.sources.registry import SOURCE_KINDS, source_kind


def parse_ia(sec: Section, base: Path) -> IASource:
    """A `kind = "ia"` table: an Internet Archive search."""
    query = sec.get("query", str, required=True)
    if not query.strip():
        raise sec.fail("query", "must not be empty")
    endpoint = sec.get("endpoint", str, DEFAULT_IA_ENDPOINT).rstrip("/")
    if not is_url(endpoint):
        raise sec.fail("endpoint", f"must be an http(s) URL, not {endpoint!r}")
    files = sec.get("files", (str, list), "original")
    if isinstance(files, str):
        if files != "original":
            raise sec.fail("files", 'must be "original" or a list of IA format names')
    else:
        files = sec.strings("files")
        if not files:
            raise sec.fail("files", "must not be an empty list")
    extra = sec.strings("exclude_collections")
    max_items = sec.get("max_items", int, 0)
    if max_items < 0:
        raise sec.fail("max_items", "must be 0 (no limit) or more")
    excluded = tuple(dict.fromkeys(ALWAYS_EXCLUDED + extra))
    return IASource(query, endpoint, files, excluded, max_items, downloads=_downloads(sec))


def parse_fma(sec: Section, base: Path) -> FMASource:
    """A `kind = "fma"` table: the FMA dataset's metadata and audio."""
    metadata = sec.get("metadata", str, required=True)
    if not is_url(metadata):
        p = local_path(base, metadata)
        if not p.exists():
            raise sec.fail("metadata", f"no such file: {p}")
        metadata = str(p)
    audio_root = sec.get("audio_root", str)
    if audio_root is not None:
        p = local_path(base, audio_root)
        if not p.exists():
            raise sec.fail("audio_root", f"no such file or folder: {p}")
        audio_root = str(p)
    audio_base_url = sec.get("audio_base_url", str)
    if audio_base_url is not None and not is_url(audio_base_url):
        raise sec.fail("audio_base_url", "must be an http(s) URL")
    if audio_root is None and audio_base_url is None:
        raise sec.fail("audio_root", "one of audio_root or audio_base_url is required")
    max_items = sec.get("max_items", int, 0)
    if max_items < 0:
        raise sec.fail("max_items", "must be 0 (no limit) or more")
    return FMASource(metadata, audio_root, audio_base_url, max_items, downloads=_downloads(sec))


def _downloads(sec: Section) -> int:
    n = sec.get("downloads", int, DEFAULT_DOWNLOADS)
    if not 1 <= n <= MAX_DOWNLOADS:
        raise sec.fail("downloads", f"must be 1 to {MAX_DOWNLOADS} (downloads in flight)")
    return n


def parse_sources(path: Path, raw: Any) -> tuple[Source, ...]:
    if raw is None:
        raise ManifestError(path, "source", "at least one [[source]] is required")
    if not isinstance(raw, list) or not raw:
        raise ManifestError(path, "source", "must be an array of tables ([[source]])")
    out: list[Source] = []
    for i, table in enumerate(raw):
        sec = Section(path, f"source[{i}]", table)
        kind = sec.get("kind", str, required=True)
        if kind not in SOURCE_KINDS:
            names = " or ".join(f'"{k}"' for k in SOURCE_KINDS)
            raise sec.fail("kind", f"must be {names}, not {kind!r}")
        out.append(source_kind(kind).parser()(sec, path.parent))
        sec.finish()
    return tuple(out)
