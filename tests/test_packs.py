"""Packs: assignment, payload, attribution, torrents checked by real clients."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import libtorrent as lt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccmirror.catalogue import transaction
from ccmirror.packs import pack
from ccmirror.packs.torrent import make_torrent
from packhelpers import LICENCES, add_file, add_item, packed_mirror, sample_mirror
from trackerhelpers import loopback_session

MANIFEST_HEADER = (
    "path,size,md5,sha1,sha256,source,source_id,source_url,title,creator,album,date,"
    "licence_id,licence_url,verdict,isrc,popularity,"
    # Per-recording metadata (0030): in every pack sealed since, after the others.
    "genre,duration_s,composer,publisher,release_date,track,codec,bit_rate,sample_rate,channels,"
    "artists,lyricist,producer,engineer,mbid"
)
JSON_KEYS = {
    "name", "tier", "btih", "magnet_link", "torrent_path", "torrent_size", "num_files",
    "data_size", "popularity_share", "licences", "added_at", "obsolete", "is_metadata",
}  # fmt: skip


def sealed(m):
    return m.db.execute("SELECT * FROM packs WHERE status = 'sealed' ORDER BY name").fetchall()


def decode(path: Path) -> dict:
    return lt.bdecode(path.read_bytes())


def torrent_files(info: dict) -> list[tuple[str, int]]:
    name = info[b"name"].decode()
    return [
        ("/".join([name] + [p.decode() for p in f[b"path"]]), f[b"length"]) for f in info[b"files"]
    ]


def recheck(torrent: Path, save_path: Path, timeout: float = 60) -> lt.torrent_status:
    """Add the torrent (not in seed mode) so libtorrent hashes every piece of the payload."""
    ses = loopback_session()
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(str(torrent))
    atp.save_path = str(save_path)
    atp.flags &= ~lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    while True:
        st = h.status()
        if (
            st.state not in checking
            and st.has_metadata
            and (st.progress == 1.0 or st.state == lt.torrent_status.downloading)
        ):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"libtorrent did not finish checking: {st.state}")
        ses.wait_for_alert(100)
        ses.pop_alerts()
    del ses
    return st


@pytest.fixture
def mirror(tmp_path):
    m = sample_mirror(tmp_path, pack_size="300KiB", piece_size="64KiB")
    yield m
    m.close()


def test_full_packs_sealed_partial_left_open_then_sealed(mirror):
    r = pack(mirror)
    assert r["failed"] == 0
    assert r["assigned_files"] == 20  # 10 items x 2; conflict/rejected/pending/withdrawn out
    names = [p["name"] for p in sealed(mirror)]
    assert names and all(n.startswith("test-t") for n in names)
    assert {o["name"] for o in r["open"]}.isdisjoint(names)
    r2 = pack(mirror, seal_partial=True)
    assert r2["assigned_files"] == 0 and r2["open"] == []
    assert {s["name"] for s in r2["sealed"]} == {o["name"] for o in r["open"]}
    packed = mirror.db.execute("SELECT count(*) FROM pack_files").fetchone()[0]
    assert packed == 20


def test_caps_hold_and_items_stay_together(mirror):
    pack(mirror, seal_partial=True)
    cap = mirror.manifest.torrents.pack_size
    for p in sealed(mirror):
        rows = mirror.db.execute(
            "SELECT f.size, f.item_id FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " WHERE pf.pack_id = ?",
            (p["id"],),
        ).fetchall()
        assert sum(r["size"] for r in rows) <= cap
        assert p["name"] == f"test-t{p['tier']}-{p['seq']:04d}"
    # Each item (about 145 KB, under the cap) sits in exactly one pack.
    per_item = mirror.db.execute(
        "SELECT f.item_id, count(DISTINCT pf.pack_id) AS n FROM pack_files pf"
        " JOIN files f ON f.id = pf.file_id GROUP BY f.item_id"
    ).fetchall()
    assert per_item and all(r["n"] == 1 for r in per_item)


def test_tiers_of_packs_follow_popularity(mirror):
    pack(mirror, seal_partial=True)
    tiers = dict(mirror.db.execute("SELECT source_id, tier FROM items WHERE tier IS NOT NULL"))
    assert tiers["ia-item-1"] == 1 and tiers["fma-item-1"] == 1
    assert tiers["ia-item-5"] == 3 and tiers["fma-item-5"] == 3
    for p in sealed(mirror):
        for r in mirror.db.execute(
            "SELECT i.tier FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " JOIN items i ON i.id = f.item_id WHERE pf.pack_id = ?",
            (p["id"],),
        ):
            assert r["tier"] == p["tier"]


def test_conflict_rejected_pending_withdrawn_never_packed(mirror):
    pack(mirror, seal_partial=True)
    bad = mirror.db.execute(
        "SELECT count(*) FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        " JOIN items i ON i.id = f.item_id WHERE f.verdict NOT IN ('verified', 'declared')"
        " OR f.status != 'fetched' OR i.status != 'ok'"
    ).fetchone()[0]
    assert bad == 0
    on_disk = {p.name for p in mirror.packs_dir.rglob("*") if p.is_file()}
    assert on_disk and not on_disk & {"bad-conflict.flac", "bad-rejected.flac", "gone.flac"}


def test_require_embedded_packs_only_verified(tmp_path):
    m = sample_mirror(tmp_path, require_embedded=True)
    item = add_item(m, "ia", "declared-only", popularity=3000)
    add_file(m, item, "d.flac", verdict="declared", seed=77)
    pack(m, seal_partial=True)
    verdicts = {
        r[0]
        for r in m.db.execute(
            "SELECT f.verdict FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        )
    }
    assert verdicts == {"verified"}


def test_payload_hard_links_manifest_and_sha256(mirror):
    pack(mirror, seal_partial=True)
    for p in sealed(mirror):
        root = mirror.packs_dir / p["name"]
        text = (root / "MANIFEST.csv").read_text("utf-8")
        assert text.splitlines()[0] == MANIFEST_HEADER
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows
        for row in rows:
            src, item, name = row["path"].split("/")
            f = root / row["path"]
            store = mirror.data_dir / "store" / src / item / name
            assert os.stat(f).st_ino == os.stat(store).st_ino  # a hard link, no copy
            data = f.read_bytes()
            assert int(row["size"]) == len(data)
            assert row["sha256"] == hashlib.sha256(data).hexdigest()
            assert row["md5"] == hashlib.md5(data).hexdigest()
            assert row["sha1"] == hashlib.sha1(data).hexdigest()
            assert row["verdict"] in ("verified", "declared")
            db = mirror.db.execute(
                "SELECT f.sha256 FROM files f JOIN items i ON i.id = f.item_id"
                " WHERE i.source_id = ? AND f.name = ?",
                (item, name),
            ).fetchone()
            assert db["sha256"] == row["sha256"]  # kept in the catalogue
        audio = sorted(
            q.relative_to(root).as_posix()
            for q in root.rglob("*")
            if q.is_file() and q.name not in ("MANIFEST.csv", "ATTRIBUTION.md")
        )
        assert audio == sorted(r["path"] for r in rows)


def test_attribution_credits_every_audio_file(mirror):
    pack(mirror, seal_partial=True)
    for p in sealed(mirror):
        root = mirror.packs_dir / p["name"]
        md = (root / "ATTRIBUTION.md").read_text("utf-8")
        sections = {s.split("\n", 1)[0]: s for s in md.split("\n## ")[1:]}
        rows = list(csv.DictReader(io.StringIO((root / "MANIFEST.csv").read_text("utf-8"))))
        for row in rows:
            sec = sections[row["path"]]
            assert row["licence_url"].startswith("https://creativecommons.org/")
            assert f"<{row['licence_url']}>" in sec
            assert f"- Source: {row['source_url']}" in sec
            assert row["source_url"].endswith(row["source_id"])
            assert row["title"] == row["path"].rsplit("/", 1)[1]  # the file's own title tag
            assert f"- Title: {row['title']}" in sec
            assert f"- Creator: {row['creator']}" in sec
            assert "Unmodified copy." in sec
            assert f"- Licence: {LICENCES[row['licence_id']][1]} ({row['licence_id']})" in sec
        assert len(sections) == len(rows)


def test_piece_hashes_recomputed_and_transmission_show(mirror):
    pack(mirror, seal_partial=True)
    for p in sealed(mirror):
        path = mirror.data_dir / p["torrent_path"]
        t = decode(path)
        info = t[b"info"]
        files = torrent_files(info)
        assert [f for f, _ in files[:2]] == [
            f"{p['name']}/ATTRIBUTION.md",
            f"{p['name']}/MANIFEST.csv",
        ]
        blob = b"".join((mirror.packs_dir / f).read_bytes() for f, _ in files)
        assert len(blob) == sum(n for _, n in files) == p["data_size"]
        plen = info[b"piece length"]
        assert plen == 64 * 1024 == p["piece_size"]
        pieces = b"".join(
            hashlib.sha1(blob[i : i + plen]).digest() for i in range(0, len(blob), plen)
        )
        assert info[b"pieces"] == pieces
        assert hashlib.sha1(lt.bencode(info)).hexdigest() == p["info_hash_v1"]
        assert t[b"created by"].startswith(b"ccmirror ")
        assert t[b"creation date"] == p["creation_date"]
        assert f"tier {p['tier']}".encode() in t[b"comment"]
        assert t[b"announce"] == b"http://127.0.0.1:6969/announce"
        out = subprocess.run(
            ["transmission-show", str(path)], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        assert p["info_hash_v1"] in out.stdout
        for f, _ in files:
            assert f in out.stdout


def test_libtorrent_full_recheck_passes_and_catches_corruption(mirror, tmp_path):
    pack(mirror, seal_partial=True)
    packs = sealed(mirror)
    for p in packs:
        st = recheck(mirror.data_dir / p["torrent_path"], mirror.packs_dir)
        assert st.progress == 1.0
        assert st.state in (lt.torrent_status.seeding, lt.torrent_status.finished)
    # The same check fails on a damaged copy: it proves something.
    p = packs[0]
    copy = tmp_path / "copy"
    shutil.copytree(mirror.packs_dir / p["name"], copy / p["name"])
    victim = next((copy / p["name"]).rglob("*.flac"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.unlink()
    victim.write_bytes(bytes(data))
    st = recheck(mirror.data_dir / p["torrent_path"], copy)
    assert st.progress < 1.0


def test_rerun_gives_byte_identical_torrents(mirror):
    pack(mirror, seal_partial=True)
    before = {p["name"]: (mirror.data_dir / p["torrent_path"]).read_bytes() for p in sealed(mirror)}
    again = pack(mirror, seal_partial=True)
    assert again["sealed"] == [] and again["assigned_files"] == 0
    # Lose every torrent and payload: the next run rebuilds the same bytes.
    shutil.rmtree(mirror.torrents_dir)
    shutil.rmtree(mirror.packs_dir)
    r = pack(mirror)
    assert sorted(r["repaired"]) == sorted(before)
    for name, data in before.items():
        assert (mirror.torrents_dir / f"{name}.torrent").read_bytes() == data
    # make_torrent itself is deterministic for the same inputs.
    p = sealed(mirror)[0]
    args = dict(
        fmt="v1",
        piece_size=p["piece_size"],
        trackers=json.loads(p["trackers"]),
        web_seeds=[],
        comment=p["comment"],
        creation_date=p["creation_date"],
        creator=p["creator"],
    )
    assert make_torrent(mirror.packs_dir, p["name"], **args) == before[p["name"]]


def test_v1_hashing_matches_libtorrent_set_piece_hashes(mirror):
    pack(mirror, seal_partial=True)
    p = sealed(mirror)[0]
    info = decode(mirror.data_dir / p["torrent_path"])[b"info"]
    entries = [lt.create_file_entry(f, n) for f, n in torrent_files(info)]
    ct = lt.create_torrent(entries, p["piece_size"], lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, str(mirror.packs_dir))
    assert ct.generate()[b"info"] == info


def test_new_files_only_make_new_packs(mirror):
    pack(mirror, seal_partial=True)
    before = {
        p["name"]: (
            (mirror.data_dir / p["torrent_path"]).read_bytes(),
            sorted(r[0] for r in mirror.db.execute(
                "SELECT file_id FROM pack_files WHERE pack_id = ?", (p["id"],)
            )),
        )
        for p in sealed(mirror)
    }  # fmt: skip
    tiers_before = dict(mirror.db.execute("SELECT id, tier FROM items WHERE tier IS NOT NULL"))
    # Popularity moves: a tier-3 item becomes the most popular; a new hit arrives; an
    # already packed item gets a new file.
    with transaction(mirror.db):
        mirror.db.execute("UPDATE items SET popularity = 1000000 WHERE source_id = 'ia-item-5'")
    hit = add_item(mirror, "ia", "new-hit", popularity=10**7)
    add_file(mirror, hit, "hit.flac", seed=500)
    old = mirror.db.execute("SELECT id FROM items WHERE source_id = 'ia-item-3'").fetchone()[0]
    add_file(mirror, old, "bonus.flac", seed=501)
    r = pack(mirror, seal_partial=True)
    assert r["assigned_files"] == 2
    new = {s["name"] for s in r["sealed"]}
    assert new and new.isdisjoint(before)
    for p in sealed(mirror):
        if p["name"] in before:
            data, files = before[p["name"]]
            assert (mirror.data_dir / p["torrent_path"]).read_bytes() == data
            assert files == sorted(r[0] for r in mirror.db.execute(
                "SELECT file_id FROM pack_files WHERE pack_id = ?", (p["id"],)
            ))  # fmt: skip
    tiers_after = dict(mirror.db.execute("SELECT id, tier FROM items WHERE tier IS NOT NULL"))
    assert all(tiers_after[i] == t for i, t in tiers_before.items())  # nothing reshuffled
    assert tiers_after[hit] == 1
    # The bonus file of a packed item goes to that item's original tier.
    bonus_tier = mirror.db.execute(
        "SELECT p.tier FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " JOIN files f ON f.id = pf.file_id WHERE f.name = 'bonus.flac'"
    ).fetchone()[0]
    assert bonus_tier == tiers_before[old]


def test_crash_mid_seal_leaves_nothing_sealed_and_rerun_finishes(mirror, monkeypatch):
    import ccmirror.packs as packs_mod

    real = packs_mod.make_torrent

    def boom(*a, **kw):
        raise RuntimeError("power cut")

    monkeypatch.setattr(packs_mod, "make_torrent", boom)
    with pytest.raises(RuntimeError):
        pack(mirror, seal_partial=True)
    assert sealed(mirror) == []
    assert not mirror.torrents_dir.exists() or not list(mirror.torrents_dir.glob("*.torrent"))
    first = mirror.db.execute(
        "SELECT name, creation_date FROM packs WHERE creation_date IS NOT NULL"
    ).fetchall()
    assert len(first) == 1
    monkeypatch.setattr(packs_mod, "make_torrent", real)
    r = pack(mirror, seal_partial=True)
    assert first[0]["name"] in {s["name"] for s in r["sealed"]}
    p = mirror.db.execute("SELECT * FROM packs WHERE name = ?", (first[0]["name"],)).fetchone()
    assert p["status"] == "sealed" and p["creation_date"] == first[0]["creation_date"]
    assert not list(mirror.packs_dir.glob(".*.build"))


def test_withdrawn_item_makes_pack_obsolete_and_repacks_the_rest(mirror):
    pack(mirror, seal_partial=True)
    row = mirror.db.execute(
        "SELECT p.id, p.name FROM packs p JOIN pack_files pf ON pf.pack_id = p.id"
        " JOIN files f ON f.id = pf.file_id JOIN items i ON i.id = f.item_id"
        " WHERE i.source_id = 'ia-item-2'"
    ).fetchone()
    others = [
        r[0]
        for r in mirror.db.execute(
            "SELECT pf.file_id FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " JOIN items i ON i.id = f.item_id WHERE pf.pack_id = ? AND i.source_id != 'ia-item-2'",
            (row["id"],),
        )
    ]
    with transaction(mirror.db):
        mirror.db.execute("UPDATE items SET status = 'withdrawn' WHERE source_id = 'ia-item-2'")
    r = pack(mirror, seal_partial=True)
    assert r["obsoleted"] == 1
    p = mirror.db.execute("SELECT * FROM packs WHERE id = ?", (row["id"],)).fetchone()
    assert p["obsolete"] == 1 and "ia-item-2" in p["obsolete_reason"]
    for fid in others:
        live = mirror.db.execute(
            "SELECT count(*) FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
            " WHERE pf.file_id = ? AND p.obsolete = 0 AND p.status = 'sealed'",
            (fid,),
        ).fetchone()[0]
        assert live == 1
    doc = json.loads((mirror.public_dir / "torrents.json").read_text())
    assert {e["name"]: e["obsolete"] for e in doc}[row["name"]] is True


def test_seal_when_complete_waits_for_pending_tier(mirror):
    pack(mirror, seal_when_complete=True)
    open_tiers = {r[0] for r in mirror.db.execute("SELECT tier FROM packs WHERE status = 'open'")}
    pending_tier = mirror.db.execute(
        "SELECT i.tier FROM items i WHERE source_id = 'ia-item-4'"
    ).fetchone()[0]
    assert open_tiers == {pending_tier}
    with transaction(mirror.db):
        mirror.db.execute("UPDATE files SET status = 'failed' WHERE name = 'later.flac'")
    pack(mirror, seal_when_complete=True)
    assert mirror.db.execute("SELECT count(*) FROM packs WHERE status = 'open'").fetchone()[0] == 0


def test_torrents_json_keys_and_magnets(mirror):
    pack(mirror, seal_partial=True)
    doc = json.loads((mirror.public_dir / "torrents.json").read_text())
    assert len(doc) == len(sealed(mirror))
    for e in doc:
        assert set(e) >= JSON_KEYS
        assert e["magnet_link"].startswith(f"magnet:?xt=urn:btih:{e['btih']}&dn={e['name']}")
        assert "tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce" in e["magnet_link"]
        assert (mirror.data_dir / e["torrent_path"]).stat().st_size == e["torrent_size"]
        assert sum(e["licences"].values()) == e["num_files"] - 2
        assert e["obsolete"] is False and e["is_metadata"] is False
    assert abs(sum(e["popularity_share"] for e in doc) - 1.0) < 1e-6


@pytest.mark.parametrize("fmt", ["hybrid", "v2"])
def test_hybrid_and_v2(tmp_path, fmt):
    m = sample_mirror(tmp_path, pack_size="10MiB", fmt=fmt)
    pack(m, seal_partial=True)
    packs = sealed(m)
    assert packs
    doc = {e["name"]: e for e in json.loads((m.public_dir / "torrents.json").read_text())}
    for p in packs:
        assert p["info_hash_v2"] and len(p["info_hash_v2"]) == 64
        assert f"xt=urn:btmh:1220{p['info_hash_v2']}" in doc[p["name"]]["magnet_link"]
        assert (p["info_hash_v1"] is not None) == (fmt == "hybrid")
        st = recheck(m.data_dir / p["torrent_path"], m.packs_dir)
        assert st.progress == 1.0
        on_disk = [f for f in (m.packs_dir / p["name"]).rglob("*") if f.is_file()]
        assert p["num_files"] == len(on_disk)  # pad files are not counted
        assert p["data_size"] == sum(f.stat().st_size for f in on_disk)
    m.close()


def test_web_seeds_written(tmp_path):
    m = sample_mirror(tmp_path, pack_size="10MiB", web_seeds=("http://127.0.0.1:8080/packs",))
    pack(m, seal_partial=True)
    t = decode(m.data_dir / sealed(m)[0]["torrent_path"])
    urls = t[b"url-list"]
    urls = [urls] if isinstance(urls, bytes) else urls
    assert urls == [b"http://127.0.0.1:8080/packs/"]
    m.close()


def test_cli_pack(tmp_path, cli):
    sample_mirror(tmp_path, pack_size="10MiB").close()
    manifest = str(tmp_path / "mirror.toml")
    r = cli("pack", manifest, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sealed"] == [] and len(doc["open"]) == 3
    r = cli("pack", manifest, "--seal-partial")
    assert r.returncode == 0, r.stderr
    assert "test-t1-0001" in r.stdout and "sealed 3 packs" in r.stdout
    r = cli("pack", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_missing_store_file_is_left_out_and_reported(mirror):
    pack(mirror)  # assigns everything; the last pack of each tier stays open
    victim = mirror.db.execute(
        "SELECT f.store_path, f.name FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " JOIN files f ON f.id = pf.file_id WHERE p.status = 'open' LIMIT 1"
    ).fetchone()
    mirror.abspath(victim["store_path"]).unlink()
    r = pack(mirror, seal_partial=True)
    assert r["failed"] == 1
    assert r["sealed"] and r["open"] == []
    packed = mirror.db.execute(
        "SELECT count(*) FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        " WHERE f.store_path = ?",
        (victim["store_path"],),
    ).fetchone()[0]
    assert packed == 0


def test_link_falls_back_to_copy_across_filesystems(tmp_path, monkeypatch):
    import errno

    from ccmirror.packs import payload

    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(100_000))

    def exdev(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(payload.os, "link", exdev)
    how = payload.link_or_copy(src, tmp_path / "b.bin")
    assert how in ("reflink", "copy")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()
    assert os.stat(tmp_path / "b.bin").st_ino != os.stat(src).st_ino
    assert not (tmp_path / "b.bin.part").exists()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=8),
    piece=st.sampled_from([16384, 32768, 65536]),
)
def test_threaded_v1_hashing_equals_libtorrent_for_any_layout(tmp_path, sizes, piece):
    """Empty files, files smaller than a piece, pieces spanning many files: our threaded
    hashing gives the same torrent as libtorrent's own set_piece_hashes."""
    root = tmp_path / f"r{len(sizes)}-{piece}-{sum(sizes)}"
    name = "pk"
    if root.exists():
        shutil.rmtree(root)
    for n, size in enumerate(sizes):
        f = root / name / f"d{n % 3}" / f"f{n}.bin"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(os.urandom(size))
    if sum(sizes) == 0:
        return  # a torrent of only empty files is not a torrent
    ours = make_torrent(root, name, piece_size=piece, creation_date=1, creator="t", workers=3)
    files = sorted(
        ((p.relative_to(root).as_posix(), p.stat().st_size) for p in (root / name).rglob("*")
         if p.is_file()),
        key=lambda e: e[0].split("/"),
    )  # fmt: skip
    ct = lt.create_torrent([lt.create_file_entry(f, s) for f, s in files], piece, 64)
    lt.set_piece_hashes(ct, str(root))
    assert lt.bdecode(ours)[b"info"] == ct.generate()[b"info"]


def test_rebuild_refuses_a_changed_pack_and_reports_it(mirror):
    pack(mirror, seal_partial=True)
    p = sealed(mirror)[0]
    (mirror.data_dir / p["torrent_path"]).unlink()
    with transaction(mirror.db):  # the catalogue changed since sealing: creator edited
        mirror.db.execute(
            "UPDATE items SET creator = 'Renamed' WHERE id IN (SELECT f.item_id FROM pack_files pf"
            " JOIN files f ON f.id = pf.file_id WHERE pf.pack_id = ?)",
            (p["id"],),
        )
    # Only the .torrent was lost: it is rebuilt from the payload, which is intact.
    r = pack(mirror)
    assert r["failed"] == 0 and r["repaired"] == [p["name"]]
    # The payload is lost too, and the pack was sealed before its generated files were
    # recorded (packs.sealed; a recorded pack rebuilds them as sealed: test_sealed_rebuild):
    # rebuilt from the changed catalogue, the info-hash would differ, so nothing is written
    # and the run reports a failure.
    shutil.rmtree(mirror.data_dir / "sealed")
    (mirror.data_dir / p["torrent_path"]).unlink()
    shutil.rmtree(mirror.packs_dir / p["name"])
    r = pack(mirror)
    assert r["failed"] == 1 and r["repaired"] == []
    assert not (mirror.data_dir / p["torrent_path"]).exists()
    assert not (mirror.packs_dir / p["name"]).exists()
    assert sealed(mirror)[0]["info_hash_v1"] == p["info_hash_v1"]


class _RangeHandler(BaseHTTPRequestHandler):
    """Static files with single Range requests, as a web server over packs/ would serve."""

    root: Path

    def do_GET(self):  # noqa: N802 (http.server's naming)
        rel = unquote(self.path.split("?", 1)[0]).lstrip("/")
        path = self.root / rel
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a), int(b) if b else len(data) - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start : end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_web_seed_serves_a_client_from_packs_folder(tmp_path):
    """BEP 19: libtorrent downloads a whole pack from a plain web server over packs/."""
    handler = type("H", (_RangeHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        m = sample_mirror(tmp_path, pack_size="10MiB", web_seeds=(base,), trackers=())
        handler.root = m.packs_dir
        pack(m, seal_partial=True)
        p = sealed(m)[0]
        ses = loopback_session()
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(str(m.data_dir / p["torrent_path"]))
        atp.save_path = str(tmp_path / "download")
        h = ses.add_torrent(atp)
        deadline = time.monotonic() + 60
        while h.status().progress < 1.0:
            if time.monotonic() > deadline:
                raise AssertionError(f"web seed download stalled: {h.status().progress}")
            ses.wait_for_alert(200)
            ses.pop_alerts()
        got = tmp_path / "download" / p["name"]
        for f in (m.packs_dir / p["name"]).rglob("*"):
            if f.is_file():
                assert (got / f.relative_to(m.packs_dir / p["name"])).read_bytes() == f.read_bytes()
        del ses
        m.close()
    finally:
        server.shutdown()


def test_packed_mirror_helper(tmp_path):
    m = packed_mirror(tmp_path)
    assert [p["name"] for p in sealed(m)] == ["test-t1-0001", "test-t2-0001", "test-t3-0001"]
    assert (m.public_dir / "torrents.json").exists()
    m.close()


def test_interrupted_hashing_stops_early(tmp_path, monkeypatch):
    """A SIGTERM/Ctrl-C during hashing cancels the queued work instead of finishing it."""
    from ccmirror.packs import torrent

    for n in range(8):
        f = tmp_path / "pk" / f"f{n}.bin"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(os.urandom(1 << 20))
    monkeypatch.setattr(torrent, "BATCH_BYTES", 16384)  # one piece per job: 512 jobs
    reads = []
    real = os.preadv
    monkeypatch.setattr(torrent.os, "preadv", lambda *a: reads.append(1) or real(*a))

    def interrupt(_n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_torrent(tmp_path, "pk", piece_size=16384, creation_date=1, progress=interrupt)
    assert 0 < len(reads) < 512


def _stamps(m) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file and folder under public/, torrents/ and packs/."""
    out = {}
    for top in (m.public_dir, m.torrents_dir, m.packs_dir):
        for dirpath, dirs, files in os.walk(top):
            for n in [*dirs, *files, "."]:
                st = Path(dirpath, n).lstat()
                out[str(Path(dirpath, n).relative_to(m.data_dir))] = (st.st_ino, st.st_mtime_ns)
    return out


def test_idle_pack_changes_nothing_on_disk(mirror):
    pack(mirror, seal_partial=True)
    # Stamp everything with an old time: any rewrite (or replace) shows, however coarse
    # the filesystem's clock.
    for path in _stamps(mirror):
        os.utime(mirror.data_dir / path, ns=(10**18, 10**18), follow_symlinks=False)
    before = _stamps(mirror)
    assert any(k.endswith("torrents.json") for k in before)
    assert any(k.endswith("ATTRIBUTION.md") for k in before)
    assert any(k.endswith(".torrent") for k in before)
    for kw in ({}, {"seal_partial": True}, {"seal_when_complete": True}):
        r = pack(mirror, **kw)
        assert r["sealed"] == [] and r["assigned_files"] == 0 and r["repaired"] == []
        assert _stamps(mirror) == before
    # Losing a payload rebuilds it, and leaves the identical .torrent untouched.
    p = sealed(mirror)[0]
    shutil.rmtree(mirror.packs_dir / p["name"])
    assert pack(mirror)["repaired"] == [p["name"]]
    after = _stamps(mirror)
    assert after[p["torrent_path"]] == before[p["torrent_path"]]
    assert {k: v for k, v in after.items() if p["name"] not in k and k != "packs"} == {
        k: v for k, v in before.items() if p["name"] not in k and k != "packs"
    }


def test_attribution_credits_each_file_by_its_own_title_else_the_items(tmp_path):
    from ccmirror.sample.audio import write_audio

    m = sample_mirror(tmp_path, pack_size="10MiB")
    item = add_item(m, "ia", "album-x", popularity=10**6, title="The Whole Album")
    titles = {"01.flac": "First Song", "02.flac": None, "03.ogg": "  ", "04.wav": None}
    for n, (name, title) in enumerate(titles.items()):
        fid = add_file(m, item, name, seed=500 + n)
        row = m.db.execute("SELECT store_path FROM files WHERE id = ?", (fid,)).fetchone()
        path = write_audio(m.abspath(row[0]), seed=500 + n, tags={"title": title} if title else {})
        with transaction(m.db):
            m.db.execute(
                "UPDATE files SET size = ?, md5 = NULL, sha1 = NULL WHERE id = ?",
                (path.stat().st_size, fid),
            )
    r = pack(m, seal_partial=True)
    assert r["failed"] == 0
    p = m.db.execute("SELECT name FROM packs WHERE tier = 1 AND status = 'sealed'").fetchone()
    root = m.packs_dir / p[0]
    md = (root / "ATTRIBUTION.md").read_text("utf-8")
    sections = {s.split("\n", 1)[0]: s for s in md.split("\n## ")[1:]}
    rows = {
        r["path"]: r
        for r in csv.DictReader(io.StringIO((root / "MANIFEST.csv").read_text("utf-8")))
    }
    for name, title in titles.items():
        want = title.strip() if title and title.strip() else "The Whole Album"
        assert f"- Title: {want}\n" in sections[f"ia/album-x/{name}"]
        assert rows[f"ia/album-x/{name}"]["title"] == want
    m.close()


def test_ia_file_title_is_credited_before_the_tag(tmp_path, write_manifest):
    """End to end through the fake IA: a file's title in the item's file list wins over its
    title tag; a file without one is credited by its tag, else by the item's title."""
    from ccmirror.mirror import open_mirror
    from ccmirror.sample.audio import write_audio
    from ccmirror.sync import sync
    from iafake import IAServer
    from iahelpers import CC_BY, ia_manifest

    def audio(name: str, seed: int, tags: dict) -> bytes:
        return write_audio(tmp_path / "src" / name, seconds=0.3, seed=seed, tags=tags).read_bytes()

    with IAServer() as ia:
        ia.add_item(
            "album-t",
            {"title": "Album T", "creator": "Band", "collection": ["netlabels"],
             "licenseurl": CC_BY},
            {
                "01.flac": {"data": audio("01.flac", 1, {"title": "Tag One"}),
                            "title": "Listed One"},
                "02.flac": audio("02.flac", 2, {"title": "Tag Two"}),
                "03.ogg": audio("03.ogg", 3, {}),
            },
            downloads=10,
        )  # fmt: skip
        path = ia_manifest(write_manifest, ia)
        with open(path, "a", encoding="utf-8") as f:
            f.write('\n[torrents]\ntrackers = ["http://127.0.0.1:6969/announce"]\n')
        m = open_mirror(path)
        try:
            r = sync(m)
            assert r["failed"] == 0, r
            titles = dict(m.db.execute("SELECT name, title FROM files").fetchall())
            assert titles == {"01.flac": "Listed One", "02.flac": None, "03.ogg": None}
            p = m.db.execute("SELECT name FROM packs WHERE is_metadata = 0").fetchone()
            md = (m.packs_dir / p[0] / "ATTRIBUTION.md").read_text("utf-8")
        finally:
            m.close()
    sections = {s.split("\n", 1)[0]: s for s in md.split("\n## ")[1:]}
    assert "- Title: Listed One\n" in sections["ia/album-t/01.flac"]
    assert "- Title: Tag Two\n" in sections["ia/album-t/02.flac"]
    assert "- Title: Album T\n" in sections["ia/album-t/03.ogg"]
