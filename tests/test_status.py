"""`ccmirror status`: what the mirror holds, per tier and verdict, packs and torrents."""

from __future__ import annotations

import json
import os

import pytest

from ccmirror.catalogue import transaction
from ccmirror.catalogue.queries import mirror_status, status_counts
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.tiers import rank_items, tier_table
from packhelpers import make_mirror, packed_mirror

OLD_KEYS = {"items", "files", "verdicts", "refused", "stored_bytes"}


@pytest.fixture
def mirror(tmp_path):
    m = packed_mirror(tmp_path, pack_size="300KiB")
    yield m
    m.close()


def status_of(m):
    return mirror_status(m.db, m.manifest.tiers.shares, m.data_dir)


def test_per_tier_figures_match_the_catalogue_and_disk(mirror):
    r = status_of(mirror)
    assert set(r) >= OLD_KEYS and {k: r[k] for k in OLD_KEYS} == status_counts(mirror.db)
    table = tier_table(mirror)
    assert [t["tier"] for t in r["tiers"]] == [t["tier"] for t in table["tiers"]] == [1, 2, 3]
    assert [t["items"] for t in r["tiers"]] == [t["items"] for t in table["tiers"]]
    # Independent figures: every file of every ranked item, stored bytes read from disk.
    tier_of = {it.id: it.tier for it in rank_items(mirror.db, mirror.manifest.tiers.shares)}
    want: dict[int, dict] = {}
    for f in mirror.db.execute("SELECT * FROM files").fetchall():
        if f["item_id"] not in tier_of:
            continue
        w = want.setdefault(tier_of[f["item_id"]], {"files": 0, "stored": 0, "verdicts": {}})
        w["files"] += 1
        if f["status"] == "fetched":
            w["stored"] += os.stat(mirror.abspath(f["store_path"])).st_size
        if f["verdict"]:
            w["verdicts"][f["verdict"]] = w["verdicts"].get(f["verdict"], 0) + 1
    for t in r["tiers"]:
        w = want[t["tier"]]
        assert (t["files"], t["bytes_stored"], t["verdicts"]) == (
            w["files"],
            w["stored"],
            w["verdicts"],
        )
    # The sample's tier 2 holds the conflict and rejected files; they are never packed.
    t2 = r["tiers"][1]
    assert t2["verdicts"]["conflict"] == 1 and t2["verdicts"]["rejected"] == 1
    assert t2["packed_files"] == t2["verdicts"]["verified"]
    packed = mirror.db.execute("SELECT count(*) FROM pack_files").fetchone()[0]
    assert sum(t["packed_files"] for t in r["tiers"]) == packed == 20  # not the withdrawn item's
    sealed = dict(mirror.db.execute("SELECT tier, count(*) FROM packs GROUP BY tier").fetchall())
    assert {t["tier"]: t["packs"]["sealed"] for t in r["tiers"]} == sealed
    assert r["packs"] == {"sealed": sum(sealed.values()), "open": 0, "obsolete": 0}
    torrents = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
    assert r["torrents"]["published"] == len(torrents) == sum(sealed.values())
    assert r["torrents"]["data_bytes"] == sum(t["data_size"] for t in torrents)
    assert r["torrents"]["missing"] == r["torrents"]["obsolete"] == 0


def test_obsolete_open_and_missing_are_counted(mirror):
    with transaction(mirror.db):
        mirror.db.execute("UPDATE items SET status = 'withdrawn' WHERE source_id = 'ia-item-1'")
    pack(mirror)  # the tier-1 pack becomes obsolete; its other item goes to a new open pack
    r = status_of(mirror)
    t1 = r["tiers"][0]
    assert t1["tier"] == 1 and t1["packs"]["obsolete"] == 1
    assert r["packs"]["obsolete"] == 1 and r["torrents"]["obsolete"] == 1
    assert r["packs"]["open"] == sum(t["packs"]["open"] for t in r["tiers"])
    live = mirror.db.execute(
        "SELECT torrent_path FROM packs WHERE status = 'sealed' AND obsolete = 0"
    ).fetchall()
    (mirror.data_dir / live[0][0]).unlink()
    assert status_of(mirror)["torrents"]["missing"] == 1


def test_cli_json_and_compact_table(mirror, cli, tmp_path):
    manifest = str(tmp_path / "mirror.toml")
    r = cli("status", manifest, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert OLD_KEYS | {"tiers", "packs", "torrents"} <= set(doc)
    assert doc["tiers"] == json.loads(json.dumps(status_of(mirror)["tiers"]))
    r = cli("status", manifest)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if line.startswith("tier"))
    assert header.split() == ["tier", "items", "files", "stored", "packed", "verdicts", "packs"]
    assert any("conflict 1, rejected 1" in line for line in lines)
    assert "Packs: 5 sealed. Torrents: 5 published" in r.stdout


def test_empty_catalogue(tmp_path, cli):
    make_mirror(tmp_path).close()
    m = open_mirror(tmp_path / "mirror.toml")
    r = status_of(m)
    m.close()
    assert r["tiers"] == [] and r["packs"] == {"sealed": 0, "open": 0, "obsolete": 0}
    out = cli("status", str(tmp_path / "mirror.toml"))
    assert out.returncode == 0 and "catalogue is empty" in out.stdout
