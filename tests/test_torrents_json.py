"""torrents.json carries Anna's Archive's fields with their names and JSON types."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from ccmirror.errors import ManifestError
from ccmirror.manifest import load_manifest
from ccmirror.packs import pack
from ccmirror.publish.run import publish
from packhelpers import sample_mirror, write_manifest
from trackerhelpers import announce_seeder, free_port, opentracker, wait_for

# Anna's Archive's torrents.json, field by field (as published at /dyn/torrents.json).
AA_TYPES = {
    "url": str,
    "top_level_group_name": str,
    "group_name": str,
    "display_name": str,
    "added_to_torrents_list_at": str,
    "is_metadata": bool,
    "btih": str,
    "magnet_link": str,
    "torrent_size": int,
    "num_files": int,
    "data_size": int,
    "aa_currently_seeding": bool,
    "obsolete": bool,
    "embargo": bool,
    "seeders": int,
    "leechers": int,
    "completed": int,
    "stats_scraped_at": (str, type(None)),  # null until scraped, as Anna's Archive's own
    "partially_broken": bool,
    "random": str,
}


def _list(m):
    return json.loads((m.public_dir / "torrents.json").read_text("utf-8"))


def test_every_entry_has_annas_archive_fields_and_types(tmp_path):
    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    publish(m)
    doc = _list(m)
    assert doc and any(t["is_metadata"] for t in doc)
    for t in doc:
        for key, typ in AA_TYPES.items():
            assert isinstance(t[key], typ), (key, t[key])
            if typ is int:
                assert not isinstance(t[key], bool), key
        # Ours stay beside them.
        assert {"name", "tier", "torrent_path", "popularity_share", "licences"} <= set(t)
        assert t["url"] == f"torrents/{t['name']}.torrent"  # relative to torrents.json
        assert t["display_name"] == f"{t['name']}.torrent"
        assert t["top_level_group_name"] == "test"
        assert t["group_name"] == ("metadata" if t["is_metadata"] else f"tier{t['tier']}")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", t["added_to_torrents_list_at"])
        assert re.fullmatch(r"[0-9a-f]{40}", t["btih"])
        assert t["magnet_link"].startswith(f"magnet:?xt=urn:btih:{t['btih']}")
        assert re.fullmatch(r"[2-9A-HJ-NP-Za-km-z]{22}", t["random"])
        # No scrape asked for: counts 0, never scraped.
        assert (t["seeders"], t["leechers"], t["completed"]) == (0, 0, 0)
        assert t["stats_scraped_at"] is None
        assert t["aa_currently_seeding"] is (m.packs_dir / t["name"]).is_dir()
    assert len({t["random"] for t in doc}) == len(doc)
    # The same list again: the same bytes (random is derived, not drawn).
    before = (m.public_dir / "torrents.json").read_bytes()
    publish(m)
    assert (m.public_dir / "torrents.json").read_bytes() == before


def test_public_url_makes_urls_absolute(tmp_path):
    path = write_manifest(tmp_path)
    text = path.read_text().replace(
        "[mirror]\n", '[mirror]\npublic_url = "https://mirror.example.org/cc"\n'
    )
    path.write_text(text)
    assert load_manifest(path).public_url == "https://mirror.example.org/cc/"
    m = sample_mirror(tmp_path, pack_size="300KiB")
    m.manifest = dataclasses.replace(m.manifest, public_url="https://mirror.example.org/cc/")
    pack(m, seal_partial=True)
    publish(m)
    for t in _list(m):
        assert t["url"] == f"https://mirror.example.org/cc/torrents/{t['name']}.torrent"


def test_bad_public_url_and_scrape_are_manifest_errors(tmp_path):
    path = write_manifest(tmp_path)
    good = path.read_text()
    path.write_text(good.replace("[mirror]\n", '[mirror]\npublic_url = "ftp://x"\n'))
    with pytest.raises(ManifestError, match="public_url"):
        load_manifest(path)
    path.write_text(good.replace("[torrents]\n", '[torrents]\nscrape = "yes"\n'))
    with pytest.raises(ManifestError, match="torrents.scrape"):
        load_manifest(path)
    path.write_text(good.replace("[torrents]\n", "[torrents]\nscrape = true\n"))
    assert load_manifest(path).torrents.scrape is True


def test_scrape_true_fills_swarm_counts_from_a_real_tracker(tmp_path):
    port = free_port()
    announce = f"http://127.0.0.1:{port}/announce"
    m = sample_mirror(tmp_path, pack_size="300KiB", trackers=(announce,))
    pack(m, seal_partial=True)
    publish(m)
    names = {t["name"]: t["btih"] for t in _list(m) if not t["obsolete"]}
    m.manifest = dataclasses.replace(
        m.manifest, torrents=dataclasses.replace(m.manifest.torrents, scrape=True)
    )
    with opentracker(list(names.values()), port):
        wait_for(lambda: announce_seeder(announce, names["test-t1-0001"]), 10, "the tracker")
        publish(m)
    doc = {t["name"]: t for t in _list(m)}
    assert doc["test-t1-0001"]["seeders"] == 1
    assert all(doc[n]["seeders"] == 0 for n in names if n != "test-t1-0001")
    for n in names:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", doc[n]["stats_scraped_at"])
