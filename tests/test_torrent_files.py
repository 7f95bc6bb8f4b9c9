"""Every kind of .torrent (v1, hybrid, v2 packs and the metadata torrent): lost or damaged
ones rebuilt byte for byte by pack, publish and sync; the seeder and status name the
problem and its repair; pad-free file counts; magnet links with xl= and ws=."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import libtorrent as lt
import pytest

from ccmirror.catalogue import transaction
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.packs.torrent import LAYOUT_LT2, info_hashes, make_torrent
from ccmirror.publish.run import publish
from ccmirror.seed import SeedOptions
from ccmirror.seed.session import Seeder
from ccmirror.sync import sync
from packhelpers import sample_mirror

FORMATS = ["v1", "hybrid", "v2"]
SEEDS = ("http://127.0.0.1:9/packs/", "http://127.0.0.1:9/other base/")
LOOPBACK = SeedOptions(interfaces=("127.0.0.1",), port=0, dht=False)


def _published(tmp_path: Path, fmt: str, **manifest):
    (tmp_path / "m").mkdir(exist_ok=True)
    mirror = sample_mirror(tmp_path / "m", fmt=fmt, web_seeds=SEEDS, **manifest)
    pack(mirror, seal_partial=True)
    publish(mirror)
    return mirror


def _torrents(mirror) -> dict[str, bytes]:
    """name -> .torrent bytes of every live sealed torrent, metadata included."""
    rows = mirror.db.execute(
        "SELECT name, torrent_path FROM packs WHERE status = 'sealed' AND obsolete = 0"
    ).fetchall()
    return {r["name"]: (mirror.data_dir / r["torrent_path"]).read_bytes() for r in rows}


def _damage(mirror, before: dict[str, bytes]) -> None:
    """Lose one .torrent, truncate one, swap one for another's bytes, garble the rest."""
    names = sorted(before)
    path = {n: mirror.data_dir / "torrents" / f"{n}.torrent" for n in names}
    for i, n in enumerate(names):
        kind = i % 4
        if kind == 0:
            path[n].unlink()
        elif kind == 1:
            path[n].write_bytes(before[n][: len(before[n]) // 2])
        elif kind == 2:
            path[n].write_bytes(before[names[(i + 1) % len(names)]])
        else:
            path[n].write_bytes(b"\0" * len(before[n]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_and_publish_rebuild_every_torrent_byte_identical(tmp_path, fmt):
    mirror = _published(tmp_path, fmt)
    before = _torrents(mirror)
    kinds = mirror.db.execute(
        "SELECT count(*), sum(is_metadata) FROM packs WHERE status = 'sealed'"
    ).fetchone()
    assert kinds[0] >= 4 and kinds[1] == 1  # three tiers of packs and the metadata torrent

    _damage(mirror, before)
    r = pack(mirror)
    assert sorted(r["repaired"]) == sorted(before) and r["failed"] == 0
    assert _torrents(mirror) == before

    _damage(mirror, before)
    r = publish(mirror)
    assert sorted(r["repaired"]) == sorted(before) and r["failed"] == 0
    assert r["metadata"]["created"] is False  # the same metadata torrent, not a new one
    assert _torrents(mirror) == before
    # Intact torrents are left alone.
    assert pack(mirror)["repaired"] == [] and publish(mirror)["repaired"] == []
    mirror.close()


def test_sync_rebuilds_the_metadata_torrent_and_the_packs(tmp_path):
    mirror = _published(tmp_path, "hybrid")
    before = _torrents(mirror)
    for n in before:
        (mirror.data_dir / "torrents" / f"{n}.torrent").unlink()
    r = sync(mirror)  # the source is unreachable: harvest fails, pack and publish still run
    assert sorted(r["stages"]["pack"]["repaired"]) == sorted(before)
    after = {n: (mirror.data_dir / "torrents" / f"{n}.torrent").read_bytes() for n in before}
    assert after == before  # (the failed fetch changed the catalogue: a newer dump follows)
    mirror.close()


def test_a_rebuild_that_would_change_the_info_hash_writes_nothing(tmp_path):
    mirror = _published(tmp_path, "v2")
    meta = mirror.db.execute("SELECT * FROM packs WHERE is_metadata = 1").fetchone()
    path = mirror.data_dir / meta["torrent_path"]
    path.unlink()
    with transaction(mirror.db):  # an input of the info dict changed behind our back
        mirror.db.execute(
            "UPDATE packs SET piece_size = piece_size * 2 WHERE id = ?", (meta["id"],)
        )
    r = pack(mirror)
    assert r["failed"] == 1 and r["repaired"] == [] and not path.exists()
    mirror.close()


def test_metadata_torrent_without_its_payload_is_replaced_by_publish(tmp_path):
    import shutil

    mirror = _published(tmp_path, "v1")
    meta = mirror.db.execute("SELECT * FROM packs WHERE is_metadata = 1").fetchone()
    shutil.rmtree(mirror.packs_dir / meta["name"])
    (mirror.data_dir / meta["torrent_path"]).unlink()
    r = pack(mirror)
    assert r["failed"] == 0 and meta["name"] not in r["repaired"]
    r = publish(mirror)
    assert r["metadata"]["created"] is True and r["failed"] == 0
    new = mirror.db.execute("SELECT * FROM packs WHERE is_metadata = 1 AND obsolete = 0").fetchone()
    assert new["name"] != meta["name"] and (mirror.data_dir / new["torrent_path"]).is_file()
    mirror.close()


def test_hybrid_sealed_with_the_old_layout_rebuilds_with_it(tmp_path):
    mirror = _published(tmp_path, "hybrid")
    p = mirror.db.execute(
        "SELECT * FROM packs WHERE is_metadata = 0 AND status = 'sealed' ORDER BY id"
    ).fetchone()
    # What the previous release sealed: libtorrent's layout, no layout recorded.
    old = make_torrent(
        mirror.packs_dir,
        p["name"],
        fmt="hybrid",
        piece_size=p["piece_size"],
        trackers=json.loads(p["trackers"]),
        web_seeds=json.loads(p["web_seeds"]),
        comment=p["comment"],
        creation_date=p["creation_date"],
        creator=p["creator"],
        layout=LAYOUT_LT2,
    )
    v1, v2 = info_hashes(old)
    assert v1 != p["info_hash_v1"]  # the layouts differ
    with transaction(mirror.db):
        mirror.db.execute(
            "UPDATE packs SET torrent_layout = NULL, info_hash_v1 = ?, info_hash_v2 = ?,"
            " torrent_size = ? WHERE id = ?",
            (v1, v2, len(old), p["id"]),
        )
    r = pack(mirror)
    assert r["repaired"] == [p["name"]]
    assert (mirror.data_dir / p["torrent_path"]).read_bytes() == old
    mirror.close()


def test_status_names_the_repair_and_seed_names_the_missing_path(tmp_path, cli):
    mirror = _published(tmp_path, "v1")
    manifest = str(mirror.manifest.path)
    rows = mirror.db.execute(
        "SELECT name, torrent_path FROM packs WHERE status = 'sealed' ORDER BY is_metadata, id"
    ).fetchall()
    lost = mirror.data_dir / rows[0]["torrent_path"]
    lost.unlink()
    (mirror.data_dir / rows[-1]["torrent_path"]).write_bytes(b"d4:infoe")  # the metadata's
    mirror.close()

    r = cli("status", manifest, "--json")
    t = json.loads(r.stdout)["torrents"]
    assert (t["missing"], t["damaged"]) == (1, 1)
    r = cli("status", manifest)
    assert "1 missing and 1 damaged" in r.stdout
    command = f"ccmirror pack {shlex.quote(manifest)}"
    assert command in r.stdout

    with open_mirror(Path(manifest), readonly=True) as ro:
        seeder = Seeder(ro, LOOPBACK)
        try:
            seeder.start()
            failures = dict(seeder.failed)
            seeded = set(seeder.entries)
        finally:
            seeder.close()
    assert f"{lost} is missing" in failures[rows[0]["name"]]
    assert command in failures[rows[0]["name"]]
    assert "is damaged" in failures[rows[-1]["name"]]
    assert seeded == {r["name"] for r in rows[1:-1]}  # carries on with the rest

    r = cli("pack", *shlex.split(command)[2:], "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)["repaired"]) == sorted([rows[0]["name"], rows[-1]["name"]])
    t = json.loads(cli("status", manifest, "--json").stdout)["torrents"]
    assert (t["missing"], t["damaged"]) == (0, 0)


def _content(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder.parent)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("fmt", FORMATS)
def test_torrents_json_counts_real_files_only(tmp_path, fmt):
    mirror = _published(tmp_path, fmt)
    entries = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
    assert any(e["is_metadata"] for e in entries)
    for e in entries:
        on_disk = _content(mirror.packs_dir / e["name"])
        assert e["num_files"] == len(on_disk), e["name"]
        sizes = sum((mirror.packs_dir / p).stat().st_size for p in on_disk)
        assert e["data_size"] == sizes
        ti = lt.torrent_info(str(mirror.data_dir / e["torrent_path"]))
        fs = ti.layout()
        pads = [i for i in range(fs.num_files()) if fs.file_flags(i) & fs.flag_pad_file]
        if fmt == "v1":
            assert pads == []
        else:
            assert fs.num_files() == len(on_disk) + len(pads) and pads
    if fmt == "v2":
        meta = next(e for e in entries if e["is_metadata"])
        assert meta["num_files"] == 2
    mirror.close()


def _pads(data: bytes) -> tuple[list[tuple[bytes, ...]], bool]:
    """(pad paths of the v1 file list, whether the last entry is a pad)."""
    files = lt.bdecode(data)[b"info"][b"files"]
    pads = [tuple(f[b"path"]) for f in files if b"p" in f.get(b"attr", b"")]
    return pads, b"p" in files[-1].get(b"attr", b"")


def _full_check(data: bytes, save_path: Path) -> bool:
    """libtorrent hashes the payload against every v1 and v2 hash of the torrent."""
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False})
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(lt.bdecode(data))
    atp.save_path = str(save_path)
    atp.flags |= lt.torrent_flags.upload_mode
    h = ses.add_torrent(atp)
    for _ in range(200):
        ses.wait_for_alert(100)
        ses.pop_alerts()
        st = h.status()
        if st.state == lt.torrent_status.seeding or st.errc.value():
            break
    return h.status().is_seeding


def test_hybrid_has_no_tail_pad_and_no_repeated_pad_names(tmp_path):
    root = tmp_path / "packs"
    for i, size in enumerate((40000, 40000, 40000, 50001)):  # three pads of one size
        f = root / "p" / "a" / f"{i}.flac"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(bytes([i + 1]) * size)
    args = {"fmt": "hybrid", "piece_size": 16384, "creation_date": 1}
    old = make_torrent(root, "p", layout=LAYOUT_LT2, **args)
    new = make_torrent(root, "p", **args)
    pads, tail = _pads(old)
    assert tail and len(set(pads)) < len(pads)  # what libtorrent writes by default
    pads, tail = _pads(new)
    assert not tail and len(pads) == 3 and len(set(pads)) == 3
    assert all(p[0] == b".pad" for p in pads)
    assert _full_check(new, root) and _full_check(old, root)
    # The pipeline's hybrid torrents follow the same layout, metadata torrent included.
    mirror = _published(tmp_path, "hybrid", piece_size="16KiB")
    for name, data in _torrents(mirror).items():
        pads, tail = _pads(data)
        assert not tail and pads and len(pads) == len(set(pads)), name
        assert _full_check(data, mirror.packs_dir), name
    mirror.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_magnet_links_carry_exact_length_and_web_seeds(tmp_path, fmt):
    mirror = _published(tmp_path, fmt)
    entries = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
    trackers = list(mirror.manifest.torrents.trackers)
    for e in entries:
        link = e["magnet_link"]
        assert f"&xl={e['data_size']}&" in link
        assert "ws=http%3A%2F%2F127.0.0.1%3A9%2Fother%20base%2F" in link
        atp = lt.parse_magnet_uri(link)
        assert list(atp.url_seeds) == list(SEEDS)
        assert list(atp.trackers) == trackers and atp.name == e["name"]
        # The link names the torrent that was published, the same as its .torrent file.
        data = (mirror.data_dir / e["torrent_path"]).read_bytes()
        assert lt.bdecode(data)[b"url-list"] == [w.encode() for w in SEEDS]
        ti = lt.torrent_info(lt.bdecode(data))
        if fmt != "v2":
            assert str(atp.info_hashes.v1) == e["btih"] == str(ti.info_hashes().v1)
        if fmt != "v1":
            assert atp.info_hashes.v2.to_bytes().hex() == e["btmh"][4:]
            assert e["btmh"][4:] == ti.info_hashes().v2.to_bytes().hex()
    mirror.close()


def test_a_magnet_published_before_gains_only_parameters(tmp_path):
    mirror = _published(tmp_path, "hybrid")
    entries = json.loads((mirror.public_dir / "torrents.json").read_text("utf-8"))
    e = entries[0]
    old = lt.parse_magnet_uri(e["magnet_link"].split("&xl=")[0])  # xt and dn, as before
    new = lt.parse_magnet_uri(e["magnet_link"])
    assert str(old.info_hashes.v1) == str(new.info_hashes.v1)
    assert old.info_hashes.v2 == new.info_hashes.v2
    mirror.close()


@pytest.mark.parametrize("fmt", ["hybrid", "v2"])
def test_seeder_counts_what_it_uploads_in_every_format(tmp_path, fmt):
    """A libtorrent leecher takes a pack from `ccmirror seed` alone (tracker, no web seed):
    the seeder's `uploaded` covers the content (hybrid: plus pad zeros inside blocks)."""
    from trackerhelpers import SeedProcess, free_port, loopback_session, opentracker

    port = free_port()
    (tmp_path / "m").mkdir()
    announce = f"http://127.0.0.1:{port}/announce"
    mirror = sample_mirror(tmp_path / "m", fmt=fmt, trackers=(announce,))
    pack(mirror, seal_partial=True)
    rows = mirror.db.execute("SELECT * FROM packs WHERE status = 'sealed'").fetchall()
    p = rows[0]
    torrent = (mirror.data_dir / p["torrent_path"]).read_bytes()
    hashes = [h for r in rows for h in (r["info_hash_v1"], (r["info_hash_v2"] or "")[:40]) if h]
    manifest = mirror.manifest.path
    mirror.close()
    with opentracker(hashes, port), SeedProcess(manifest) as seeder:
        seeder.next_status(lambda s: s["states"] == {"seeding": len(rows)}, 60, "seeding")
        ses = loopback_session()
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(lt.bdecode(torrent))
        atp.save_path = str(tmp_path / "leech")
        h = ses.add_torrent(atp)
        for _ in range(600):
            if h.status().is_seeding:
                break
            ses.wait_for_alert(100)
            ses.pop_alerts()
        assert h.status().is_seeding

        def counted(s: dict) -> bool:
            row = next((x for x in s["packs"] if x["name"] == p["name"]), None)
            return bool(row and row["uploaded"] >= p["data_size"])

        up = seeder.next_status(counted, 30, "the upload to be counted")
        assert seeder.stop() == 0, seeder.stderr
    row = next(x for x in up["packs"] if x["name"] == p["name"])
    assert up["uploaded"] >= row["uploaded"] >= p["data_size"]
    # Never more than the torrent's total length (content and pad files).
    assert row["uploaded"] <= atp.ti.total_size()
