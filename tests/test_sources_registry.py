"""The source registry is the one list of kinds: the manifest, harvest and the catalogue's
source_kinds (which refuses items of any other kind) all read it."""

from __future__ import annotations

import inspect
import sqlite3
from dataclasses import dataclass

import pytest

from ccmirror.catalogue.db import connect, pending_migrations
from ccmirror.errors import ManifestError
from ccmirror.manifest import load_manifest
from ccmirror.sources import registry
from ccmirror.sources.registry import HARVEST_COUNTS, SOURCE_KINDS, SourceKind, harvest_counts


def _kinds(db):
    return {r[0] for r in db.execute("SELECT kind FROM source_kinds")}


def _insert(db, source, source_id="x"):
    db.execute(
        "INSERT INTO items (source, source_id, first_seen, harvested_at) VALUES (?, ?, 'n', 'n')",
        (source, source_id),
    )


def test_the_catalogue_knows_exactly_the_registered_kinds(tmp_path):
    db = connect(tmp_path / "catalogue.sqlite")
    assert _kinds(db) == set(SOURCE_KINDS) == {"ia", "fma"}


def test_an_unregistered_kind_is_refused_at_insert_and_update(tmp_path):
    db = connect(tmp_path / "catalogue.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="not a registered source kind"):
        _insert(db, "ftp")
    _insert(db, "ia")
    with pytest.raises(sqlite3.IntegrityError, match="not a registered source kind"):
        db.execute("UPDATE items SET source = 'ftp'")
    assert [tuple(r) for r in db.execute("SELECT source FROM items")] == [("ia",)]


@pytest.mark.parametrize("name", sorted(SOURCE_KINDS))
def test_every_kind_resolves_to_a_parser_and_a_harvester(name):
    kind = SOURCE_KINDS[name]
    assert kind.name == name
    params = inspect.signature(kind.harvester()).parameters
    assert list(params)[:2] == ["mirror", "source"]
    assert params["workers"].kind is params["reporter"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(kind.parser()).parameters) == ["sec", "base"]


def test_harvest_counts_start_at_zero():
    counts = harvest_counts()
    assert [k for k in counts if k in HARVEST_COUNTS] == list(HARVEST_COUNTS)
    assert all(counts[k] == 0 for k in HARVEST_COUNTS) and counts["refused"] == {}


def _manifest(tmp_path, kind):
    path = tmp_path / "m.toml"
    path.write_text(
        f'[mirror]\nname = "m"\ndata_dir = "data"\n\n[[source]]\nkind = "{kind}"\nquery = "x"\n'
    )
    return path


def test_an_unregistered_kind_is_refused_naming_the_registered_ones(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_manifest(_manifest(tmp_path, "ftp"))
    assert "source[0].kind" in str(e.value) and '"ia" or "fma"' in str(e.value)


@dataclass(frozen=True)
class ToyConfig:
    kind: str
    max_items: int
    downloads: int

    @property
    def where(self) -> str:
        return "toy"


def parse_toy(sec, base):
    sec.get("query", str, "")  # the one key _manifest writes
    return ToyConfig("toy", 0, 1)


def harvest_toy(mirror, source, *, workers=8, reporter=None):
    return harvest_counts()


def test_one_registry_line_adds_a_kind_with_no_migration(tmp_path, monkeypatch):
    # A catalogue made before the kind existed: then the kind is registered.
    connect(tmp_path / "catalogue.sqlite").close()
    toy = SourceKind("toy", f"{__name__}:parse_toy", f"{__name__}:harvest_toy")
    monkeypatch.setitem(registry.SOURCE_KINDS, "toy", toy)
    assert load_manifest(_manifest(tmp_path, "toy")).sources[0].kind == "toy"
    db = connect(tmp_path / "catalogue.sqlite")
    assert pending_migrations(db) == [] and _kinds(db) == {"ia", "fma", "toy"}
    _insert(db, "toy")
    with pytest.raises(sqlite3.IntegrityError):
        _insert(db, "toy2")
    assert db.execute("SELECT count(*) FROM items WHERE source = 'toy'").fetchone()[0] == 1
    # Read-only connections (status, search) read it without writing.
    ro = connect(tmp_path / "catalogue.sqlite", readonly=True)
    assert [tuple(r) for r in ro.execute("SELECT source FROM items")] == [("toy",)]
