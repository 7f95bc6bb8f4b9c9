"""publish (torrents.json, metadata dump and torrent) and seed-plan (real opentracker)."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import time

import libtorrent as lt
import pytest

from ccmirror.catalogue import transaction
from ccmirror.errors import UsageError
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.publish.metadata import write_dump
from ccmirror.publish.run import publish
from ccmirror.seedplan import seed_plan
from conftest import run_cli
from packhelpers import add_file, add_item, make_mirror, sample_mirror, write_manifest
from trackerhelpers import announce_seeder, free_port, opentracker, wait_for


def _torrents(m):
    return json.loads((m.public_dir / "torrents.json").read_text("utf-8"))


def test_publish_writes_torrents_json_and_metadata_torrent(tmp_path):
    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    r = publish(m)
    meta = r["metadata"]
    assert meta["created"] and meta["name"] == "test-metadata-0001"
    torrents = _torrents(m)
    packs = [t for t in torrents if not t["is_metadata"]]
    metas = [t for t in torrents if t["is_metadata"]]
    assert r["torrents"] == len(packs) + 1 and len(metas) == 1
    assert metas[0]["btih"] == meta["btih"] and metas[0]["tier"] == 0
    assert metas[0]["magnet_link"].startswith(f"magnet:?xt=urn:btih:{meta['btih']}")
    for key in (
        "name",
        "tier",
        "btih",
        "magnet_link",
        "torrent_path",
        "torrent_size",
        "num_files",
        "data_size",
        "popularity_share",
        "licences",
        "added_at",
        "obsolete",
        "is_metadata",
    ):
        assert all(key in t for t in torrents), key

    # The torrent is real: libtorrent reads it and its two files hash to the payload.
    ti = lt.torrent_info(str(m.data_dir / meta["torrent_path"]))
    assert str(ti.info_hashes().v1) == meta["btih"]
    fs = ti.layout()
    names = sorted(fs.file_path(i) for i in range(ti.num_files()))
    assert names == ["test-metadata-0001/catalogue.jsonl.gz", "test-metadata-0001/catalogue.sqlite"]
    show = subprocess.run(
        ["transmission-show", str(m.data_dir / meta["torrent_path"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert show.returncode == 0 and meta["btih"] in show.stdout.lower()

    # The dump rebuilds the catalogue: every item, file, pack and pack_file row.
    root = m.packs_dir / meta["name"]
    lines = [
        json.loads(x)
        for x in gzip.decompress((root / "catalogue.jsonl.gz").read_bytes()).decode().splitlines()
    ]
    by_table: dict[str, list] = {}
    for line in lines:
        by_table.setdefault(line["table"], []).append(line["row"])
    for table in ("items", "files", "packs", "pack_files"):
        n = m.db.execute(
            f"SELECT count(*) FROM {table}" + (" WHERE is_metadata = 0" if table == "packs" else "")
        ).fetchone()[0]
        assert len(by_table[table]) == n, table
    item = next(i for i in by_table["items"] if i["source_id"] == "ia-item-1")
    assert (
        item["popularity"] == 1000 and item["tier"] == 1 and isinstance(item["collections"], list)
    )
    assert any(f["evidence"] == [] and f["verdict"] == "conflict" for f in by_table["files"])
    snap = sqlite3.connect(root / "catalogue.sqlite")
    assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert snap.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert snap.execute("SELECT count(*) FROM items").fetchone()[0] == len(by_table["items"])
    snap.close()

    # Unchanged catalogue: no new torrent. A change: a new one, the old one obsolete.
    assert publish(m)["metadata"] == {**meta, "created": False}
    assert sorted(p.name for p in m.packs_dir.iterdir() if "metadata" in p.name) == [meta["name"]]
    with transaction(m.db):
        m.db.execute("UPDATE items SET title = 'Renamed' WHERE source_id = 'ia-item-3'")
    second = publish(m)["metadata"]
    assert second["created"] and second["name"] == "test-metadata-0002"
    state = {t["name"]: t["obsolete"] for t in _torrents(m) if t["is_metadata"]}
    assert state == {"test-metadata-0001": True, "test-metadata-0002": False}
    # A third: the payload of the first goes, the one just superseded stays for peers.
    with transaction(m.db):
        m.db.execute("UPDATE items SET title = 'Renamed again' WHERE source_id = 'ia-item-3'")
    assert publish(m)["metadata"]["name"] == "test-metadata-0003"
    assert not (m.packs_dir / "test-metadata-0001").exists()
    assert (m.packs_dir / "test-metadata-0002" / "catalogue.sqlite").is_file()
    assert (m.data_dir / "torrents" / "test-metadata-0001.torrent").is_file()


def test_dump_is_reproducible_and_skips_bookkeeping(tmp_path):
    m = sample_mirror(tmp_path)

    def dump(name: str) -> bytes:
        write_dump(m.db, m.name, tmp_path / name)
        return (tmp_path / name).read_bytes()

    first = dump("a.gz")
    with transaction(m.db):
        m.db.execute("UPDATE items SET harvested_at = '2030-01-01T00:00:00Z'")
        m.db.execute("UPDATE files SET attempts = attempts + 1")
    assert dump("b.gz") == first
    with transaction(m.db):
        m.db.execute("UPDATE items SET popularity = popularity + 1 WHERE id = 1")
    assert dump("c.gz") != first


def test_publish_cli_json_and_lock(tmp_path):
    manifest = write_manifest(tmp_path)
    m = open_mirror(manifest)
    item = add_item(m, "ia", "one", popularity=3)
    add_file(m, item, "a.flac", seed=1)
    pack(m, seal_partial=True)
    m.close()
    r = run_cli("publish", str(manifest), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["metadata"]["created"] and doc["torrents"] == 2
    for name in ("torrents.json", "index.html", "withdrawn.json"):
        assert (tmp_path / "data" / "public" / name).is_file()
    r = run_cli("publish", str(manifest))
    assert r.returncode == 0 and "unchanged" in r.stdout
    with open(tmp_path / "data" / "lock", "a") as f:
        import fcntl

        fcntl.flock(f, fcntl.LOCK_EX)
        r = run_cli("publish", str(manifest))
    assert r.returncode == 3 and r.stderr.startswith("ccmirror: ")


# --- seed-plan against a real opentracker ------------------------------------------------


def test_seed_plan_ranks_by_swarm_counts_from_a_real_tracker(tmp_path):
    port = free_port()
    m = sample_mirror(tmp_path, pack_size="300KiB", trackers=(f"http://127.0.0.1:{port}/announce",))
    pack(m, seal_partial=True)
    publish(m)
    torrents = [t for t in _torrents(m) if not t["obsolete"]]
    with opentracker([t["btih"] for t in torrents], port):
        seeded = next(t for t in torrents if t["name"] == "test-t1-0001")
        wait_for(
            lambda: announce_seeder(f"http://127.0.0.1:{port}/announce", seeded["btih"]),
            10,
            "the tracker to accept",
        )
        r = seed_plan(m, "10GB", timeout=10)
        counts = {c["name"]: c["seeders"] for c in r["plan"]}
        assert counts["test-t1-0001"] == 1
        assert all(v == 0 for k, v in counts.items() if k != "test-t1-0001")
        order = [c["name"] for c in r["plan"]]
        assert order[-1] == "test-t1-0001"  # the only torrent with a seeder comes last
        # Among the unseeded, the most listened first (tier 2 before tier 3).
        assert order.index("test-t2-0001") < order.index("test-t3-0001")
        assert r["unknown_counts"] == 0 and r["torrents_chosen"] == len(torrents)

        # Little space: only what fits, still most needed first.
        small = seed_plan(m, "400KiB", timeout=10)
        assert small["used"] <= 400 * 1024
        assert [c["name"] for c in small["plan"]] == [order[0]] or small["plan"][0]["name"] == (
            order[0]
        )
        assert "test-t1-0001" in small["not_fitting"]

        r = run_cli("seed-plan", str(m.manifest.path), "--space", "2TB", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["plan"][-1]["name"] == "test-t1-0001"


def test_seed_plan_unreachable_tracker_gives_unknown_counts(tmp_path):
    port = free_port()  # nothing listens there
    m = sample_mirror(tmp_path, pack_size="300KiB", trackers=(f"http://127.0.0.1:{port}/announce",))
    pack(m, seal_partial=True)
    publish(m)
    t0 = time.monotonic()
    r = seed_plan(m, "2TB", timeout=5)
    assert time.monotonic() - t0 < 30
    assert r["unknown_counts"] == r["torrents_considered"] >= 6
    assert all(c["seeders"] is None and c["error"] for c in r["plan"])
    # Unknown counts still rank: by listening share, most listened first.
    shares = [c["popularity_share"] for c in r["plan"]]
    assert shares == sorted(shares, reverse=True)
    with pytest.raises(UsageError):
        seed_plan(m, "lots")
    out = run_cli("seed-plan", str(m.manifest.path), "--space", "1TB", "--timeout", "2")
    assert out.returncode == 0 and "?" in out.stdout


def test_page_tiers_match_the_tier_table(tmp_path):
    from ccmirror.publish.page_data import page_data
    from ccmirror.tiers import tier_table

    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    page = {t["tier"]: t for t in page_data(m, [])["tiers"]}
    table = tier_table(m)["tiers"]
    assert table and sorted(page) == [t["tier"] for t in table]
    for t in table:
        assert page[t["tier"]]["items"] == t["items"]
        assert page[t["tier"]]["share"] == pytest.approx(t["popularity_share"], abs=1e-6)
        assert page[t["tier"]]["cumulative_share"] == pytest.approx(t["cumulative_share"], abs=1e-6)
        assert page[t["tier"]]["cumulative_bytes"] == t["cumulative_bytes"]


def test_publish_recovers_from_a_crash_mid_metadata(tmp_path, monkeypatch):
    import ccmirror.packs.torrent as torrent

    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    real = torrent.make_torrent

    def crash(*args, **kw):
        raise KeyboardInterrupt  # killed after the payload was in place, before its row

    monkeypatch.setattr(torrent, "make_torrent", crash)
    with pytest.raises(KeyboardInterrupt):
        publish(m)
    assert (m.packs_dir / "test-metadata-0001").is_dir()
    assert m.db.execute("SELECT count(*) FROM packs WHERE is_metadata = 1").fetchone()[0] == 0
    monkeypatch.setattr(torrent, "make_torrent", real)
    meta = publish(m)["metadata"]
    assert meta["created"] and meta["name"] == "test-metadata-0001"
    assert not list((m.data_dir / "tmp").glob("*.part"))


def test_publish_finishes_an_interrupted_takedown(tmp_path):
    # sample_mirror's withdrawn item still has its store file, as after a crash between
    # withdraw's catalogue transaction and its deletions.
    m = sample_mirror(tmp_path)
    (rel,) = m.db.execute(
        "SELECT f.store_path FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'withdrawn'"
    ).fetchone()
    assert (m.data_dir / rel).is_file()
    assert publish(m)["withdrawn_files_deleted"] == 1
    assert not (m.data_dir / rel).exists()
    assert (
        m.db.execute(
            "SELECT count(*) FROM files f JOIN items i ON i.id = f.item_id"
            " WHERE i.status = 'withdrawn' AND f.store_path IS NOT NULL"
        ).fetchone()[0]
        == 0
    )


def test_idle_publish_changes_no_file(tmp_path):
    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    publish(m)
    watched = [m.public_dir, m.packs_dir, m.torrents_dir]
    old = 1_000_000_000  # far in the past, so any rewrite shows
    for top in watched:
        for p in [top, *top.rglob("*")]:
            os.utime(p, (old, old), follow_symlinks=False)
    r = publish(m)
    assert r["metadata"]["created"] is False
    changed = [
        str(p) for top in watched for p in [top, *top.rglob("*")] if p.lstat().st_mtime != old
    ]
    assert changed == []


def test_an_empty_catalogue_publishes_no_metadata_torrent(tmp_path):
    m = make_mirror(tmp_path)
    r = publish(m)
    assert r["metadata"]["created"] is False and r["metadata"]["name"] is None
    assert _torrents(m) == []
    assert not m.torrents_dir.exists() or not list(m.torrents_dir.iterdir())
    assert not (m.data_dir / "tmp").exists()
    assert "No files are packed yet" in (m.public_dir / "index.html").read_text("utf-8")
