"""The source registry is the one list of kinds: the manifest, harvest and the catalogue's
CHECK on items.source all agree with it."""

from __future__ import annotations

import inspect

import pytest

from ccmirror.catalogue.db import connect, schema_source_kinds
from ccmirror.errors import CCMirrorError, ManifestError
from ccmirror.manifest import load_manifest
from ccmirror.sources import registry
from ccmirror.sources.registry import HARVEST_COUNTS, SOURCE_KINDS, SourceKind, harvest_counts


def test_the_schema_allows_exactly_the_registered_kinds(tmp_path):
    db = connect(tmp_path / "catalogue.sqlite")
    assert schema_source_kinds(db) == tuple(SOURCE_KINDS) == ("ia", "fma")


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


def test_one_registry_line_adds_a_kind_and_the_catalogue_asks_for_its_migration(
    tmp_path, monkeypatch
):
    # A kind that reads an IA-shaped table: the manifest takes it from the registry alone.
    extra = SourceKind(
        "ia2", "ccmirror.manifest.sources:parse_ia", registry.SOURCE_KINDS["ia"].harvest
    )
    monkeypatch.setitem(registry.SOURCE_KINDS, "ia2", extra)
    m = load_manifest(_manifest(tmp_path, "ia2"))
    assert m.sources[0].query == "x"
    # The schema's CHECK does not know it yet: connecting says so, before any harvest.
    with pytest.raises(CCMirrorError) as e:
        connect(tmp_path / "catalogue.sqlite")
    assert "ia2" in str(e.value) and "migration" in str(e.value)
