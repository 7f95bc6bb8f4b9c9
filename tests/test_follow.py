"""Followers: a primary (real sync, seed, public/ and packs/ on loopback, a web seed) and a
volunteer following its torrents.json on the same machine; hostile lists and packs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import libtorrent as lt
import pytest

from ccmirror.errors import ManifestError
from ccmirror.follow.listing import BadList, parse_list
from ccmirror.follow.plan import Candidate, choose
from ccmirror.follow.transfer import TorrentRefused, check_torrent
from ccmirror.manifest import load_manifest
from ccmirror.sample.audio import write_audio
from conftest import run_cli
from iafake import IAServer
from iahelpers import make_ia_archive
from trackerhelpers import (
    SeedProcess,
    announce_seeder,
    aria2c_download,
    free_port,
    opentracker,
    payload_of,
    wait_for,
    web_seed_server,
)


def _follower_manifest(path: Path, data_dir: Path, torrents: str, space: str) -> Path:
    path.write_text(
        f'[mirror]\nname = "volunteer"\ndata_dir = "{data_dir}"\n\n'
        f'[follow]\ntorrents = "{torrents}"\nspace = "{space}"\ndht = false\ntime_limit = 120\n',
        encoding="utf-8",
    )
    return path


def test_follower_manifest(tmp_path):
    m = _follower_manifest(tmp_path / "f.toml", tmp_path / "d", "list/torrents.json", "2TB")
    man = load_manifest(m)
    assert man.is_follower and man.sources == ()
    assert man.follow.torrents == str(tmp_path / "list/torrents.json")
    assert man.follow.space == 2 * 10**12 and man.follow.dht is False
    m.write_text(m.read_text() + '\n[[source]]\nkind = "ia"\nquery = "x"\n')
    with pytest.raises(ManifestError, match="source"):
        load_manifest(m)
    m.write_text(f'[mirror]\nname = "v"\ndata_dir = "{tmp_path}"\n[follow]\ntorrents = "x"\n')
    with pytest.raises(ManifestError, match="follow.space"):
        load_manifest(m)


def test_plan_most_needed_first_and_spread_per_volunteer():
    cands = [Candidate(f"{i:040x}", 10, tier=1 + i % 3, seeders=None) for i in range(60)]
    cands.append(Candidate("f" * 40, 10, tier=1, seeders=3))
    c = choose(cands, 100, "volunteer-a")
    assert len(c.chosen) == 10 and c.used == 100 and len(c.not_fitting) == 51
    assert all(x.tier == 1 for x in c.chosen)  # unknown = 0 seeders, then the lower tier
    assert "f" * 40 not in {x.btih for x in c.chosen}
    other = choose(cands, 100, "volunteer-b")
    assert {x.btih for x in c.chosen} != {x.btih for x in other.chosen}  # spread
    assert choose(cands, 100, "volunteer-a").chosen == c.chosen  # deterministic
    # Seeders count against the copies a tier wants: tier 1 wants 3, the tail 1.
    t1, t3 = Candidate("1" * 40, 10, tier=1, seeders=2), Candidate("3" * 40, 10, tier=3, seeders=1)
    assert choose([t3, t1], 10, "v").chosen == [t1]
    t3_empty = Candidate("4" * 40, 10, tier=3, seeders=0)
    assert choose([t1, t3_empty], 10, "v").chosen == [t3_empty]  # a first copy comes first
    # Held torrents stay chosen, even when they rank lower now.
    held = choose(cands, 100, "volunteer-a", held={"f" * 40: 10})
    assert "f" * 40 in {x.btih for x in held.chosen} and held.used == 100


def test_hostile_lists_are_refused_line_by_line():
    with pytest.raises(BadList, match="not valid JSON"):
        parse_list("http://x/torrents.json", b"[{")
    with pytest.raises(BadList, match="not a list"):
        parse_list("http://x/torrents.json", b'{"a": 1}')
    good = {"name": "p-t1-0001", "btih": "a" * 40, "url": "torrents/p.torrent", "data_size": 5}
    bad = [
        dict(good, name="../../etc", btih="b" * 40),
        dict(good, name="a/b", btih="c" * 40),
        dict(good, btih="zz"),
        dict(good, btih="d" * 40, data_size=-1),
        dict(good, btih="e" * 40, url="file:///etc/passwd"),
        dict(good),  # listed twice
        "not an object",
    ]
    entries, refused = parse_list("http://x/list/torrents.json", json.dumps([good, *bad]).encode())
    assert [e.name for e in entries] == ["p-t1-0001"]
    assert entries[0].url == "http://x/list/torrents/p.torrent"
    assert len(refused) == len(bad)
    # Anna's Archive's own fields suffice: display_name, btih, url, data_size.
    aa = {"display_name": "sm_001.torrent", "btih": "A" * 40, "url": "https://aa/x.torrent"}
    entries, _ = parse_list("http://x/t.json", json.dumps([dict(aa, data_size=1)]).encode())
    assert entries[0].name == "sm_001" and entries[0].btih == "a" * 40


def _torrent_bytes(root: Path, name: str) -> bytes:
    ct = lt.create_torrent(lt.list_files(str(root / name)), 16384, lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, str(root))
    return lt.bencode(ct.generate())


def test_torrents_that_do_not_match_their_entry_are_refused(tmp_path):
    from ccmirror.follow.listing import Listed

    (tmp_path / "p" / "ia").mkdir(parents=True)
    (tmp_path / "p" / "ia" / "a.txt").write_bytes(b"x" * 100)
    data = _torrent_bytes(tmp_path, "p")
    btih = str(lt.torrent_info(lt.bdecode(data)).info_hashes().v1)
    entry = Listed("p", btih, "u", 100, 1, False, False, (), None)
    assert check_torrent(entry, data).ti.num_files() == 1
    with pytest.raises(TorrentRefused, match="info-hash"):
        check_torrent(Listed("p", "0" * 40, "u", 100, 1, False, False, (), None), data)
    with pytest.raises(TorrentRefused, match="named"):
        check_torrent(Listed("q", btih, "u", 100, 1, False, False, (), None), data)
    meta = lt.bdecode(data)
    meta[b"info"][b"files"][0][b"path"] = [b"..", b"..", b"escape.txt"]
    evil = lt.bencode(meta)
    evil_hash = hashlib.sha1(lt.bencode(meta[b"info"])).hexdigest()
    with pytest.raises(TorrentRefused, match="escape"):
        check_torrent(Listed("p", evil_hash, "u", 100, 1, False, False, (), None), evil)
    with pytest.raises(TorrentRefused, match="not a .torrent"):
        check_torrent(entry, b"<html>")


# --- a primary and a follower on one machine ----------------------------------------------


def _primary_manifest(path: Path, data: Path, ia: IAServer, tracker: str, web_seed: str) -> Path:
    path.write_text(
        f'[mirror]\nname = "prim"\ndata_dir = "{data}"\n\n'
        f'[[source]]\nkind = "ia"\nquery = "collection:netlabels"\nendpoint = "{ia.url}"\n\n'
        "[tiers]\nshares = [0.5, 0.9, 1.0]\n\n"
        f'[torrents]\npack_size = "120KiB"\npiece_size = "16KiB"\ntrackers = ["{tracker}"]\n'
        f'web_seeds = ["{web_seed}"]\n',
        encoding="utf-8",
    )
    return path


def _plant(root: Path, primary_packs: Path, source: str, tracker: str, web_seed: str) -> dict:
    """A pack copied from the primary whose first audio file now says "All rights
    reserved" while its MANIFEST.csv (sizes and sha256 updated) still claims CC BY."""
    name = "prim-t1-9999"
    dest = root / "packs" / name
    shutil.copytree(primary_packs / source, dest)
    rows = list(csv.DictReader(io.StringIO((dest / "MANIFEST.csv").read_text("utf-8"))))
    victim = next(r for r in rows if r["path"].endswith(".flac"))
    path = dest / victim["path"]
    write_audio(
        path, seconds=0.3, seed=77, tags={"copyright": "(P) 2009 Label. All rights reserved."}
    )
    victim["size"] = str(path.stat().st_size)
    victim["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    (dest / "MANIFEST.csv").write_text(buf.getvalue(), encoding="utf-8")
    ct = lt.create_torrent(lt.list_files(str(dest)), 16384, lt.create_torrent.v1_only)
    ct.add_tracker(tracker, 0)
    ct.add_url_seed(web_seed)
    lt.set_piece_hashes(ct, str(root / "packs"))
    data = lt.bencode(ct.generate())
    (root / f"{name}.torrent").write_bytes(data)
    ti = lt.torrent_info(lt.bdecode(data))
    return {"name": name, "btih": str(ti.info_hashes().v1), "data_size": ti.total_size()}


def _held(data_dir: Path) -> dict[str, str]:
    conn = sqlite3.connect(data_dir / "catalogue.sqlite")
    try:
        return dict(conn.execute("SELECT name, state FROM follow_torrents"))
    finally:
        conn.close()


def test_primary_and_follower_on_one_machine(tmp_path):
    with IAServer() as ia, web_seed_server(tmp_path) as base:
        port = free_port()  # after the servers took theirs: the tracker starts later
        tracker = f"http://127.0.0.1:{port}/announce"
        make_ia_archive(ia, 8, kinds=("flac", "ogg"), seconds=0.3)
        pdata = tmp_path / "primary"
        pman = _primary_manifest(
            tmp_path / "primary.toml", pdata, ia, tracker, f"{base}primary/packs/"
        )
        r = run_cli("sync", str(pman), "--json")
        assert r.returncode == 0, r.stderr
        listed = json.loads((pdata / "public/torrents.json").read_text("utf-8"))
        live = [t for t in listed if not t["obsolete"]]
        packs = [t for t in live if not t["is_metadata"]]
        assert len(packs) >= 3, [t["name"] for t in listed]
        for t in live:  # the .torrent copies the list points at are in public/
            assert (pdata / "public" / t["url"]).is_file()

        # A hostile copy of the list: everything the primary lists, plus a planted pack.
        hostile = tmp_path / "hostile"
        hostile.mkdir()
        planted = _plant(
            hostile, pdata / "packs", packs[0]["name"], tracker, f"{base}hostile/packs/"
        )
        entries = [dict(t, url=f"{base}primary/public/{t['url']}") for t in listed]
        entries.append(
            dict(packs[0], name=planted["name"], display_name=f"{planted['name']}.torrent",
                 btih=planted["btih"], data_size=planted["data_size"],
                 url=f"{base}hostile/{planted['name']}.torrent",
                 magnet_link=f"magnet:?xt=urn:btih:{planted['btih']}&tr={tracker}")
        )  # fmt: skip
        (hostile / "torrents.json").write_text(json.dumps(entries), encoding="utf-8")
        shutil.copy(pdata / "public/withdrawn.json", hostile / "withdrawn.json")

        # The most seeded torrent (five extra seeders: well past what tier 1 wants) is the
        # one a small follower leaves out.
        crowded = packs[0]
        total = sum(t["data_size"] for t in live) + planted["data_size"]
        space = total - crowded["data_size"]
        hashes = [t["btih"] for t in live] + [planted["btih"]]
        with opentracker(hashes, port), SeedProcess(pman) as primary_seed:
            primary_seed.next_status(
                lambda s: s["states"].get("seeding") == len(live), 60, "the primary to seed"
            )
            for p in range(40001, 40006):
                wait_for(lambda p=p: announce_seeder(tracker, crowded["btih"], p), 10, "tracker")
            fdata = tmp_path / "follower"
            fman = _follower_manifest(
                tmp_path / "follower.toml", fdata, f"{base}hostile/torrents.json", str(space)
            )
            r = run_cli("sync", str(fman), "--json")
            assert r.returncode == 1, r.stderr  # the planted pack was refused
            result = json.loads(r.stdout)
            brief = {k: result[k] for k in ("incomplete", "failures", "refused_torrents")}
            assert "refused, moved to quarantine" in r.stderr, (r.stderr, brief)

            # Most needed first: everything but the crowded torrent, the planted pack refused.
            assert result["plan"][-1]["name"] != crowded["name"]
            states = _held(fdata)
            assert crowded["name"] not in states
            assert states[planted["name"]] == "quarantined"
            held = [n for n, s in states.items() if s == "held"]
            assert sorted(held) == sorted(t["name"] for t in live if t is not crowded)
            assert result["planned_bytes"] <= space
            for name in held:  # byte-identical to the primary's
                assert payload_of(fdata / "packs" / name) == payload_of(pdata / "packs" / name)
            q = fdata / "quarantine/follow" / planted["name"]
            reason = json.loads((q / "reason.json").read_text("utf-8"))
            assert any("conflict" in p and "rights reserved" in p for p in reason["problems"])
            assert (q / planted["name"] / "MANIFEST.csv").is_file()  # moved, never deleted
            assert not (fdata / "packs" / planted["name"]).exists()

            st = run_cli("status", str(fman), "--json")
            assert st.returncode == 0, st.stderr
            status = json.loads(st.stdout)
            assert status["held"] == len(held)
            assert [t["name"] for t in status["quarantined"]] == [planted["name"]]

            # A later sync re-plans: the refused pack's space now takes the crowded torrent;
            # the one after that has nothing left to do.
            again = run_cli("sync", str(fman), "--json")
            assert again.returncode == 0, again.stderr
            assert json.loads(again.stdout)["downloaded"] == [crowded["name"]]
            held.append(crowded["name"])
            third = run_cli("sync", str(fman), "--json")
            assert third.returncode == 0, third.stderr
            assert json.loads(third.stdout)["downloaded"] == []
            assert _held(fdata)[planted["name"]] == "quarantined"  # not tried again
            primary_seed.stop()

        # The primary and its web seed are gone: aria2c gets a pack from the follower alone.
        with opentracker(hashes, port), SeedProcess(fman) as follower_seed:
            follower_seed.next_status(
                lambda s: s["states"].get("seeding") == len(held), 60, "the follower to seed"
            )
            target = next(t for t in packs if t["name"] in held)
            out = tmp_path / "aria2"
            out.mkdir()
            r = aria2c_download(fdata / "torrents" / f"{target['name']}.torrent", out)
            assert r.returncode == 0, r.stdout + r.stderr
            assert payload_of(out / target["name"]) == payload_of(pdata / "packs" / target["name"])
            follower_seed.stop()


# --- re-planning: obsolete packs, takedowns, a broken list ----------------------------------

BY = "https://creativecommons.org/licenses/by/4.0/"


def _pack(root: Path, name: str, item: str, seed: int, web_seed: str, tier: int) -> dict:
    """A pack as the pack builder lays it out (audio with its licence tag, MANIFEST.csv,
    ATTRIBUTION.md) under root/packs, its .torrent under root/torrents, its list entry."""
    from ccmirror.packs.payload import manifest_csv

    folder = root / "packs" / name
    rows = []
    for k in range(2):
        rel = f"ia/{item}/track{k}.flac"
        path = write_audio(folder / rel, seconds=0.3, seed=seed * 10 + k, tags={"license": BY})
        data = path.read_bytes()
        rows.append({
            "path": rel, "size": len(data), "md5": hashlib.md5(data).hexdigest(),
            "sha1": hashlib.sha1(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest(),
            "source": "ia", "source_id": item, "licence_id": "CC-BY-4.0", "licence_url": BY,
            "verdict": "verified",
        })  # fmt: skip
    (folder / "MANIFEST.csv").write_text(manifest_csv(rows), encoding="utf-8")
    (folder / "ATTRIBUTION.md").write_text(f"# {name}\n", encoding="utf-8")
    ct = lt.create_torrent(lt.list_files(str(folder)), 16384, lt.create_torrent.v1_only)
    ct.add_url_seed(web_seed)
    lt.set_piece_hashes(ct, str(root / "packs"))
    data = lt.bencode(ct.generate())
    (root / "torrents").mkdir(exist_ok=True)
    (root / "torrents" / f"{name}.torrent").write_bytes(data)
    ti = lt.torrent_info(lt.bdecode(data))
    return {
        "name": name, "tier": tier, "btih": str(ti.info_hashes().v1),
        "url": f"torrents/{name}.torrent", "data_size": ti.total_size(),
        "obsolete": False, "is_metadata": False,
    }  # fmt: skip


def test_replan_drops_obsolete_applies_takedowns_and_survives_a_broken_list(tmp_path):
    prim = tmp_path / "prim"
    with web_seed_server(prim / "packs") as base:
        prim.mkdir(exist_ok=True)
        a = _pack(prim, "p-t1-0001", "item-a", 1, base, 1)
        b = _pack(prim, "p-t2-0001", "item-b", 2, base, 2)
        listing = prim / "torrents.json"
        listing.write_text(json.dumps([a, b]), encoding="utf-8")
        fdata = tmp_path / "follower"
        fman = _follower_manifest(tmp_path / "f.toml", fdata, str(listing), "10MB")
        r = run_cli("sync", str(fman), "--json")
        assert r.returncode == 0, r.stderr
        assert _held(fdata) == {a["name"]: "held", b["name"]: "held"}
        before = payload_of(fdata / "packs")

        # A broken list: one clear line, nothing changed or lost.
        for bad in ("[{", '{"not": "a list"}'):
            listing.write_text(bad, encoding="utf-8")
            r = run_cli("sync", str(fman))
            assert r.returncode == 1
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            assert len(lines) == 1 and "nothing was changed" in lines[0], r.stderr
            assert payload_of(fdata / "packs") == before

        # The primary repacked tier 1 (a obsolete, a2 replaces it) and withdrew item-b.
        a2 = _pack(prim, "p-t1-0002", "item-a", 3, base, 1)
        listing.write_text(json.dumps([dict(a, obsolete=True), a2, b]), encoding="utf-8")
        (prim / "withdrawn.json").write_text(
            json.dumps([{"id": "ia:item-b", "source": "ia", "source_id": "item-b"}]),
            encoding="utf-8",
        )
        r = run_cli("sync", str(fman), "--json")
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert result["downloaded"] == [a2["name"]] and result["dropped"] == [a["name"]]
        assert result["withdrawn_files_deleted"] == 2
        states = _held(fdata)
        assert states == {a["name"]: "dropped", a2["name"]: "held", b["name"]: "held"}
        assert not (fdata / "packs" / a["name"]).exists()
        assert not list((fdata / "packs" / b["name"]).rglob("*.flac"))
        assert payload_of(fdata / "packs" / a2["name"]) == payload_of(prim / "packs" / a2["name"])

        # An entry whose .torrent is another torrent (its info-hash differs): refused alone.
        evil = dict(b, name="p-t2-0002", btih="0" * 40)
        listing.write_text(json.dumps([dict(a, obsolete=True), a2, b, evil]), encoding="utf-8")
        r = run_cli("sync", str(fman), "--json")
        assert r.returncode == 1
        assert "p-t2-0002: .torrent refused: its info-hash is" in r.stderr, r.stderr
        assert [t["name"] for t in json.loads(r.stdout)["refused_torrents"]] == ["p-t2-0002"]
        assert _held(fdata) == states and not (fdata / "packs" / "p-t2-0002").exists()

        # A list that outgrows the space: a clear line, what is held stays.
        big = dict(_pack(prim, "p-t3-0001", "item-c", 4, base, 3), data_size=10**9)
        listing.write_text(json.dumps([dict(a, obsolete=True), a2, b, big]), encoding="utf-8")
        r = run_cli("sync", str(fman), "--json")
        assert r.returncode == 0, r.stderr
        assert "do not fit in the space offered" in r.stderr
        assert json.loads(r.stdout)["not_fitting"] == 1
        assert _held(fdata)[a2["name"]] == "held" and big["name"] not in _held(fdata)

        # A dry run plans from the list and changes nothing.
        before = payload_of(fdata / "packs")
        r = run_cli("sync", str(fman), "--dry-run", "--json")
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)
        assert plan["dry_run"] is True and plan["downloaded"] == []
        assert {p["name"] for p in plan["plan"]} == {a2["name"], b["name"]}
        assert payload_of(fdata / "packs") == before


def test_downloads_are_bounded_in_time_and_resume(tmp_path):
    """No source answers: the run ends at its time limit (exit 1, incomplete, nothing held);
    a damaged partial payload left behind is repaired by the next run, not trusted."""
    prim = tmp_path / "prim"
    prim.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    a = _pack(prim, "p-t1-0001", "item-a", 1, base, 1)
    listing = prim / "torrents.json"
    listing.write_text(json.dumps([a]), encoding="utf-8")
    fdata = tmp_path / "follower"
    fman = _follower_manifest(tmp_path / "f.toml", fdata, str(listing), "10MB")
    fman.write_text(fman.read_text().replace("time_limit = 120", "time_limit = 2"))
    r = run_cli("sync", str(fman), "--json")
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert [x["name"] for x in result["incomplete"]] == [a["name"]]
    assert _held(fdata) == {a["name"]: "wanted"}
    # What a killed run might leave: one file whole, one cut short and damaged.
    files = sorted((prim / "packs" / a["name"]).rglob("*.flac"))
    dest = fdata / "packs" / a["name"]
    for i, f in enumerate(files):
        target = dest / f.relative_to(prim / "packs" / a["name"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes() if i == 0 else b"\0" * 1000)
    with web_seed_server(prim / "packs", port):
        r = run_cli("sync", str(fman), "--json")
    assert r.returncode == 0, r.stderr
    assert _held(fdata) == {a["name"]: "held"}
    assert payload_of(dest) == payload_of(prim / "packs" / a["name"])
