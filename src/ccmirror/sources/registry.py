"""The source kinds a manifest may name: the one list, read by the manifest, harvest and
the catalogue.

A kind is a `SourceKind`: its name, the parser of its `[[source]]` table and its
harvester, each named "module:function" and imported when first used, so reading a
manifest never imports a harvester (nor the harvester the manifest: no import cycle).
Adding a kind is its module and one line in `SOURCE_KINDS`, nothing else: each writable
`catalogue.db.connect` adds the registered kinds to the catalogue's `source_kinds`, and
triggers on `items` (migration 0046) refuse items of any kind not in it. 0001's CHECK on
`items.source` naming the kinds is gone: 0046 drops it by editing `sqlite_master` (no
row rewritten: 7 s on a 1M-item catalogue, 5 of them its quick_check, where rebuilding
`items` measured 94 s per million items).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ccmirror.manifest.section import Section
    from ccmirror.mirror import Mirror
    from ccmirror.progress import Reporter

__all__ = [
    "HARVEST_COUNTS",
    "SOURCE_KINDS",
    "Harvester",
    "SourceConfig",
    "SourceKind",
    "harvest_counts",
    "kind_names",
    "source_kind",
]

# The counts every harvester reports (harvest --json, per source and summed), in order.
HARVEST_COUNTS = (
    "found",
    "new",
    "updated",
    "unchanged",
    "dark",
    "empty",
    "missing",
    "files",
    "skipped",
    "failed",
)


def harvest_counts() -> dict[str, Any]:
    """A harvester's result before it starts: every count 0, nothing refused."""
    return {**dict.fromkeys(HARVEST_COUNTS, 0), "refused_items": 0, "refused": {}}


class SourceConfig(Protocol):
    """What a `[[source]]` table becomes (a frozen dataclass in ccmirror.manifest)."""

    kind: str
    max_items: int
    downloads: int  # downloads in flight (fetch)

    @property
    def where(self) -> str:
        """Where the source is read from, for messages and summaries."""
        ...


class Harvester(Protocol):
    """A kind's `harvest_source`: add or update the source's items and files in the
    catalogue; return `harvest_counts()` filled in, plus the kind's own keys. Raise
    SourceUnreachable when the source cannot be read at all."""

    def __call__(
        self,
        mirror: Mirror,
        source: Any,
        *,
        workers: int = 8,
        reporter: Reporter | None = None,
    ) -> dict[str, Any]: ...


class TableParser(Protocol):
    def __call__(self, sec: Section, base: Path) -> SourceConfig: ...


@dataclass(frozen=True)
class SourceKind:
    name: str
    parse: str  # "module:function", a TableParser: the [[source]] table -> its config
    harvest: str  # "module:function", a Harvester

    def parser(self) -> TableParser:
        return _resolve(self.parse)

    def harvester(self) -> Harvester:
        return _resolve(self.harvest)


SOURCE_KINDS: dict[str, SourceKind] = {
    k.name: k
    for k in (
        SourceKind(
            "ia", "ccmirror.manifest.sources:parse_ia", "ccmirror.sources.ia:harvest_source"
        ),
        SourceKind(
            "fma", "ccmirror.manifest.sources:parse_fma", "ccmirror.sources.fma:harvest_source"
        ),
    )
}


def kind_names() -> tuple[str, ...]:
    return tuple(SOURCE_KINDS)


def source_kind(name: str) -> SourceKind:
    """The registered kind `name`; KeyError for one that is not."""
    return SOURCE_KINDS[name]


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
