"""`check` over a real catalogue with real audio in store/ (rows built directly)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mutagen import id3

from ccmirror.catalogue.db import transaction, utcnow
from ccmirror.licence import publishable
from ccmirror.licence.check import check
from ccmirror.mirror import Mirror, open_mirror
from ccmirror.sample.audio import write_audio

BYSA3 = "http://creativecommons.org/licenses/by-sa/3.0/"
SOURCE = '[[source]]\nkind = "ia"\nquery = "collection:netlabels"\n'


def add_item(m: Mirror, source_id: str, url: str | None = BYSA3, title: str | None = None,
             status: str = "ok", source: str = "ia") -> int:  # fmt: skip
    with transaction(m.db) as db:
        cur = db.execute(
            "INSERT INTO items (source, source_id, title, licence_url, licence_title, status,"
            " first_seen, harvested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (source, source_id, source_id, url, title, status, utcnow(), utcnow()),
        )
        return cur.lastrowid


def add_file(m: Mirror, item_id: int, name: str, *, tags: dict[str, str] | None = None,
             seed: int = 0, status: str = "fetched", frames=()) -> int:  # fmt: skip
    source, source_id = m.db.execute(
        "SELECT source, source_id FROM items WHERE id = ?", (item_id,)
    ).fetchone()
    rel = m.store_relpath(source, source_id, name)
    path = m.abspath(rel)
    write_audio(path, seconds=0.2, seed=seed, tags=tags)
    if frames:
        t = id3.ID3(path)
        for fr in frames:
            t.add(fr)
        t.save(path)
    with transaction(m.db) as db:
        cur = db.execute(
            "INSERT INTO files (item_id, name, size, status, store_path, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, name, path.stat().st_size, status, rel, utcnow()),
        )
        return cur.lastrowid


def row(m: Mirror, file_id: int):
    return m.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()


@pytest.fixture
def mirror(write_manifest):
    path = write_manifest(SOURCE)
    with open_mirror(path) as m:
        yield m


def test_verdicts_evidence_and_quarantine(mirror, data_dir):
    m = mirror
    ok = add_item(m, "ok-item")
    verified = add_file(m, ok, "v.mp3", tags={"copyright": f"2009 Foo. Licensed to the public under {BYSA3} verify at http://foo.example/"})  # fmt: skip
    port = add_file(m, ok, "port.flac", tags={"license": "http://creativecommons.org/licenses/by-sa/3.0/de/"})  # fmt: skip
    declared = add_file(m, ok, "d.ogg", tags={"title": "silent", "isrc": "USRC17607839"})
    other = add_file(m, ok, "c.flac", tags={"license": "https://creativecommons.org/licenses/by-nc-nd/4.0/"})  # fmt: skip
    reserved = add_file(m, ok, "r.mp3", tags={"copyright": "(P) 2001 Label. All rights reserved."})
    broken = add_file(m, ok, "sub/b.wav")
    bpath = m.abspath(row(m, broken)["store_path"])
    bpath.write_bytes(bpath.read_bytes()[:300])
    denied = add_item(m, "denied-item", url="http://creativecommons.org/licenses/sampling/1.0/")
    rejected = add_file(m, denied, "x.mp3")
    fma = add_item(m, "123", url=None, title="Attribution-NonCommercial-ShareAlike 3.0 International", source="fma")  # fmt: skip
    fmafile = add_file(m, fma, "123.mp3", tags={"license": "https://creativecommons.org/licenses/by-nc-sa/3.0/"})  # fmt: skip
    dark = add_item(m, "dark-item", status="dark")
    darkfile = add_file(m, dark, "z.mp3")
    pending = add_file(m, ok, "p.mp3", status="pending")

    res = check(m)
    assert res["checked"] == 8 and res["unchanged"] == 0
    assert res["quarantined"] == 3 and res["failed"] == 0
    assert res["verdicts"] == {"verified": 3, "declared": 1, "conflict": 2, "unreadable": 1, "rejected": 1}  # fmt: skip
    assert res["licences"]["CC-BY-SA-3.0"] == {"verified": 2, "declared": 1, "conflict": 2, "unreadable": 1}  # fmt: skip
    assert res["licences"]["CC-BY-NC-SA-3.0"] == {"verified": 1}

    expect = {
        verified: ("verified", "source and tags agree"),
        port: ("verified", "source and tags agree (other port)"),
        declared: ("declared", "tags silent; source declares it"),
        other: ("conflict", "tags state another licence"),
        reserved: ("conflict", "tags say all rights reserved"),
        broken: ("unreadable", "file cannot be read"),
        rejected: ("rejected", "licence never allowed"),
        fmafile: ("verified", "source and tags agree"),
    }
    for fid, (verdict, reason) in expect.items():
        r = row(m, fid)
        assert (r["verdict"], r["verdict_reason"]) == (verdict, reason), r["name"]
        assert r["checked_at"] and r["checked_size"] == (300 if fid == broken else r["size"])
    assert row(m, darkfile)["verdict"] is None and row(m, pending)["verdict"] is None

    v = row(m, verified)
    assert (v["licence_id"], v["licence_url"]) == ("CC-BY-SA-3.0", "https://creativecommons.org/licenses/by-sa/3.0/")  # fmt: skip
    evidence = json.loads(v["evidence"])
    assert evidence[0] == {"tag": "ia:licence_url", "value": BYSA3}
    assert {"tag": "TCOP:verify", "value": "http://foo.example/"} in evidence
    assert row(m, declared)["isrc"] == "USRC17607839"
    assert publishable(v["verdict"], False) and not publishable(row(m, declared)["verdict"], True)

    # conflict and unreadable bytes moved, with their reasons; nothing deleted
    for fid in (other, reserved, broken):
        r = row(m, fid)
        store = data_dir / r["store_path"]
        assert not store.exists()
        q = data_dir / r["quarantine_path"]
        assert q.is_file() and r["quarantine_path"].startswith("quarantine/ia/ok-item/")
        reason = json.loads(q.with_name(q.name + ".reason.json").read_text())
        assert reason["verdict"] == r["verdict"] and reason["source_id"] == "ok-item"
    assert row(m, broken)["quarantine_path"] == "quarantine/ia/ok-item/sub/b.wav"
    assert json.loads((data_dir / "quarantine/ia/ok-item/sub/b.wav.reason.json").read_text())[
        "error"
    ]
    assert (data_dir / row(m, verified)["store_path"]).is_file()

    # a second run reads nothing and does not trip over quarantined files
    again = check(m)
    assert (again["checked"], again["unchanged"], again["quarantined"]) == (0, 8, 0)
    assert again["verdicts"] == res["verdicts"]


def test_changed_file_is_read_again(mirror):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.flac")
    assert check(m)["run"] == {"declared": 1}
    path = m.abspath(row(m, fid)["store_path"])
    write_audio(path, seconds=0.3, seed=5, tags={"license": BYSA3})
    with transaction(m.db) as db:  # fetched again: the catalogue knows the new size
        db.execute("UPDATE files SET size = ? WHERE id = ?", (path.stat().st_size, fid))
    res = check(m)
    assert res["checked"] == 1 and res["run"] == {"verified": 1}
    assert check(m)["checked"] == 0


def test_policy_or_source_change_rejudges(write_manifest, data_dir):
    path = write_manifest(SOURCE)
    with open_mirror(path) as m:
        item = add_item(m, "item", url="https://creativecommons.org/licenses/by-nc/4.0/")
        fid = add_file(m, item, "a.mp3")
        assert check(m)["run"] == {"declared": 1}
    strict = write_manifest(SOURCE + '[licence]\nallow = ["CC-BY-*"]\ndeny = ["CC-BY-NC-*"]\n')
    with open_mirror(strict) as m:
        res = check(m)
        assert res["run"] == {"rejected": 1}
        assert row(m, fid)["verdict_reason"] == "licence denied by policy"
        with transaction(m.db) as db:
            db.execute("UPDATE items SET licence_url = ? WHERE id = ?", (BYSA3, item))
        assert check(m)["run"] == {"declared": 1}


def test_missing_bytes_and_crash_recovery(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    gone = add_file(m, item, "gone.mp3")
    os.unlink(m.abspath(row(m, gone)["store_path"]))
    # moved to quarantine just before a crash: the catalogue never heard of it
    moved = add_file(m, item, "moved.flac", tags={"license": "CC BY-NC 3.0"})
    q = data_dir / "quarantine/ia/item/moved.flac"
    q.parent.mkdir(parents=True)
    reason = {"verdict": "conflict", "store_path": row(m, moved)["store_path"]}
    q.with_name("moved.flac.reason.json").write_text(json.dumps(reason))
    os.replace(m.abspath(row(m, moved)["store_path"]), q)
    # fetch's own quarantine (bad bytes of a download) at the same place is not the file
    other = add_file(m, item, "other.flac", tags={"license": BYSA3})
    bad = data_dir / "quarantine/ia/item/other.flac"
    os.replace(m.abspath(row(m, other)["store_path"]), bad)
    bad.with_name("other.flac.reason.json").write_text(json.dumps({"url": "x", "reason": "md5"}))
    res = check(m)
    assert res["missing"] == 2 and res["failed"] == 0
    # Bytes that are gone (and in no pack) are fetched again: pending, not judged.
    for f in (row(m, other), row(m, gone)):
        assert (f["status"], f["reason"]) == ("pending", "file missing from store")
        assert f["verdict"] is None and f["store_path"] is None and f["quarantine_path"] is None
    assert bad.is_file()  # fetch's own quarantine is left alone
    r = row(m, moved)
    assert (r["verdict"], r["quarantine_path"]) == ("conflict", "quarantine/ia/item/moved.flac")
    assert check(m)["checked"] == 0


def test_quarantined_file_returns_when_the_source_agrees(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.ogg", tags={"license": "https://creativecommons.org/licenses/by/4.0/"})  # fmt: skip
    assert check(m)["run"] == {"conflict": 1}
    store = m.abspath(row(m, fid)["store_path"])
    assert not store.exists()
    with transaction(m.db) as db:  # the source corrects its licence
        db.execute("UPDATE items SET licence_url = ? WHERE id = ?", ("https://creativecommons.org/licenses/by/4.0/", item))  # fmt: skip
    assert check(m)["run"] == {"verified": 1}
    r = row(m, fid)
    assert r["quarantine_path"] is None and store.is_file()
    assert check(m)["checked"] == 0


def test_refetched_file_after_quarantine_gets_a_new_place(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.mp3", tags={"copyright": "All rights reserved"})
    check(m)
    first = row(m, fid)["quarantine_path"]
    # the fetcher writes the file again (same bad tags): the old copy is kept
    again = write_audio(m.abspath(row(m, fid)["store_path"]), seconds=0.2, seed=3, tags={"copyright": "All rights reserved"})  # fmt: skip
    with transaction(m.db) as db:
        db.execute("UPDATE files SET size = ? WHERE id = ?", (again.stat().st_size, fid))
    res = check(m)
    assert res["quarantined"] == 1
    second = row(m, fid)["quarantine_path"]
    assert second != first and (data_dir / first).is_file() and (data_dir / second).is_file()


def test_size_unlike_catalogue_is_unreadable(mirror):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.flac", tags={"license": BYSA3})
    with transaction(m.db) as db:
        db.execute("UPDATE files SET size = size + 1 WHERE id = ?", (fid,))
    assert check(m)["run"] == {"unreadable": 1}
    assert "size" in json.loads(row(m, fid)["evidence"])[-1]["value"]


def test_cli_check_json_and_table(cli, write_manifest, data_dir):
    path = write_manifest(SOURCE)
    with open_mirror(path) as m:
        item = add_item(m, "item")
        add_file(m, item, "a.mp3", tags={"license": BYSA3})
        add_file(m, item, "b.mp3", seed=1)
    p = cli("check", str(path), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["verdicts"] == {"verified": 1, "declared": 1} and doc["checked"] == 2
    p = cli("check", str(path))
    assert p.returncode == 0, p.stderr
    assert "unchanged 2" in p.stdout and "CC-BY-SA-3.0" in p.stdout


def test_cli_inspect(cli, tmp_path, write_manifest):
    a = write_audio(tmp_path / "a.flac", seconds=0.2, tags={"license": "https://creativecommons.org/licenses/by-nc/4.0/"})  # fmt: skip
    p = cli("licence", "inspect", str(tmp_path / "nope.mp3"), str(a), "--json")
    assert p.returncode == 1, p.stderr  # a path that is no file: its row says so, exit 1
    rows = json.loads(p.stdout)["files"]
    assert [r["verdict"] for r in rows] == ["unreadable", "verified"]
    assert rows[0]["error"] == "no such file"
    strict = write_manifest(SOURCE + '[licence]\ndeny = ["CC-BY-NC-*"]\n')
    p = cli("licence", "inspect", "--manifest", str(strict), str(a), "--json")
    assert json.loads(p.stdout)["files"][0]["verdict"] == "rejected"
    p = cli("licence", "inspect", str(a))
    assert p.returncode == 0 and "verified" in p.stdout and "CC-BY-NC-4.0" in p.stdout


def test_cli_inspect_needs_files(cli):
    p = cli("licence", "inspect")
    assert p.returncode == 2


def test_store_paths_stay_inside(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.mp3")
    with transaction(m.db) as db:
        db.execute("UPDATE files SET store_path = '../../etc/passwd' WHERE id = ?", (fid,))
    res = check(m)
    assert res["failed"] == 1
    assert row(m, fid)["verdict"] is None
    assert Path("/etc/passwd").exists()  # untouched, never moved


def test_quarantine_failure_is_reported_and_retried(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.mp3", tags={"copyright": "All rights reserved"})
    blocker = data_dir / "quarantine"
    blocker.write_text("not a folder")
    res = check(m)
    assert (res["failed"], res["quarantined"]) == (1, 0)
    assert row(m, fid)["verdict"] == "conflict"
    assert m.abspath(row(m, fid)["store_path"]).is_file()
    blocker.unlink()
    res = check(m)
    assert (res["failed"], res["quarantined"]) == (0, 1)
    assert (data_dir / row(m, fid)["quarantine_path"]).is_file()


def test_noop_check_is_one_lstat_per_file_and_no_pool(mirror, data_dir, monkeypatch):
    import ccmirror.licence.check as check_mod

    m = mirror
    items = [add_item(m, f"i{n}", url=BYSA3 if n % 2 else "https://creativecommons.org/licenses/by/4.0/") for n in range(4)]  # fmt: skip
    for n in range(12):
        add_file(m, items[n % 4], f"f{n}.flac", seed=n)
    add_file(m, items[0], "q.mp3", tags={"copyright": "All rights reserved"})  # quarantined
    first = check(m)
    assert (first["checked"], first["quarantined"]) == (13, 1)

    declared_calls = []
    real_declared = check_mod._declared
    monkeypatch.setattr(check_mod, "_declared", lambda *a: declared_calls.append(1) or real_declared(*a))  # fmt: skip
    lstats = []
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: lstats.append(str(p)) or real_lstat(p, *a, **k))  # fmt: skip

    def no_pool(*a, **k):
        raise AssertionError("a no-op check must not start a thread pool")

    monkeypatch.setattr(check_mod, "ThreadPoolExecutor", no_pool)
    monkeypatch.setattr(check_mod, "read_tags_apart", no_pool)
    again = check(m)
    assert (again["checked"], again["unchanged"]) == (0, 13)
    assert len(declared_calls) == 2  # one per distinct declaration, not per row
    # one lstat per store file; the quarantined one: its empty store place, then the bytes
    assert len(lstats) == 12 + 2, lstats


def test_noop_fast_path_still_refuses_unsafe_names(mirror, data_dir):
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.mp3")
    check(m)
    with transaction(m.db) as db:  # the row was judged, then its path went bad
        db.execute("UPDATE files SET store_path = 'store/ia/item/../item/a.mp3' WHERE id = ?", (fid,))  # fmt: skip
    res = check(m)
    assert (res["failed"], res["unchanged"]) == (1, 0)


def test_crash_recovery_finds_a_numbered_quarantine_place(mirror, data_dir):
    # fetch's quarantine holds <name>; check's own move (then a crash) went to <name>.1
    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.flac", tags={"license": "CC BY-NC 3.0"})
    qdir = data_dir / "quarantine/ia/item"
    qdir.mkdir(parents=True)
    (qdir / "a.flac").write_bytes(b"fetch's bad download")
    (qdir / "a.flac.reason.json").write_text(json.dumps({"url": "x", "reason": "md5"}))
    store_path = row(m, fid)["store_path"]
    reason = {"verdict": "conflict", "store_path": store_path, "quarantined_at": utcnow()}
    (qdir / "a.flac.1.reason.json").write_text(json.dumps(reason))
    os.replace(m.abspath(store_path), qdir / "a.flac.1")
    res = check(m)
    assert (res["missing"], res["failed"], res["checked"]) == (0, 0, 1)
    r = row(m, fid)
    assert (r["verdict"], r["quarantine_path"]) == ("conflict", "quarantine/ia/item/a.flac.1")
    assert (qdir / "a.flac").read_bytes() == b"fetch's bad download"
    assert check(m)["unchanged"] == 1


def test_fma_music_sharing_title_is_recognised(mirror):
    m = mirror
    title = "Attribution-NonCommercial-NoDerivatives (aka Music Sharing) 3.0 International"
    item = add_item(m, "4242", url=None, title=title, source="fma")
    fid = add_file(m, item, "4242.mp3", tags={"license": "https://creativecommons.org/licenses/by-nc-nd/3.0/"})  # fmt: skip
    silent = add_file(m, item, "4243.mp3", seed=1)
    assert check(m)["run"] == {"verified": 1, "declared": 1}
    assert row(m, fid)["licence_id"] == row(m, silent)["licence_id"] == "CC-BY-NC-ND-3.0"


def _noisy_mp3s(folder: Path) -> dict[str, Path]:
    """A whole, a truncated and a bit-flipped real MP3; the damaged ones make mpg123 talk."""
    import random

    good = write_audio(folder / "good.mp3", seconds=1.0, seed=1, tags={"license": BYSA3})
    data = good.read_bytes()
    cut = folder / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    rng = random.Random(5)
    for _ in range(200):
        flipped[rng.randrange(300, len(flipped))] ^= 1 << rng.randrange(8)
    flip = folder / "flip.mp3"
    flip.write_bytes(bytes(flipped))
    return {"good": good, "cut": cut, "flip": flip}


def _decoder_stderr(path: Path) -> str:
    import subprocess
    import sys

    code = "import soundfile as sf, sys\nwith sf.SoundFile(sys.argv[1]) as f:\n    while len(f.read(65536)): pass\n"  # fmt: skip
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True).stderr  # fmt: skip


def test_check_and_inspect_are_silent_on_damaged_mp3(cli, write_manifest, tmp_path):
    files = _noisy_mp3s(tmp_path)
    # the fixtures really are noisy when decoded in-process
    assert _decoder_stderr(files["cut"]) and _decoder_stderr(files["flip"])
    p = cli("licence", "inspect", "--quiet", *(str(f) for f in files.values()), "--json")
    assert p.stderr == ""
    got = {Path(r["path"]).stem: r["verdict"] for r in json.loads(p.stdout)["files"]}
    assert got == {"good": "verified", "cut": "unreadable", "flip": "unreadable"}

    path = write_manifest(SOURCE)
    with open_mirror(path) as m:
        item = add_item(m, "item")
        ids = {}
        for name, src in files.items():
            ids[name] = add_file(m, item, f"{name}.mp3")
            dest = m.abspath(row(m, ids[name])["store_path"])
            dest.write_bytes(src.read_bytes())
            with transaction(m.db) as db:
                db.execute("UPDATE files SET size = ? WHERE id = ?", (dest.stat().st_size, ids[name]))  # fmt: skip
    p = cli("check", str(path), "--quiet")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    with open_mirror(path) as m:
        verdicts = {name: row(m, fid)["verdict"] for name, fid in ids.items()}
    assert verdicts == {"good": "verified", "cut": "unreadable", "flip": "unreadable"}


def _die_on_bad(path: str) -> str:
    """Run in a decoding worker: a decoder that crashes the process on one file."""
    if path.endswith("bad"):
        os._exit(3)
    return "fine"


def test_a_crashing_decoder_condemns_only_its_file(tmp_path):
    from ccmirror.licence import decode

    assert decode.call(_die_on_bad, tmp_path / "good", "crashed") == "fine"
    assert decode.call(_die_on_bad, tmp_path / "bad", "crashed") == "crashed"
    assert decode.call(_die_on_bad, tmp_path / "good", "crashed") == "fine"  # a new pool


@pytest.mark.parametrize("stale", [False, True])
def test_prefetched_tags_are_used_only_for_unchanged_bytes(mirror, monkeypatch, stale):
    import ccmirror.licence.check as check_mod
    from ccmirror.licence.normalise import by_id
    from ccmirror.licence.tags import TagReport

    m = mirror
    item = add_item(m, "item")
    fid = add_file(m, item, "a.flac", tags={"license": BYSA3})
    path = m.abspath(row(m, fid)["store_path"])
    st = path.stat()
    other = TagReport(format="FLAC")  # what a read of other bytes said: another licence
    other.licences.append(("Vorbis:license", by_id("CC-BY-NC-4.0")))
    mtime = st.st_mtime_ns - 1 if stale else st.st_mtime_ns
    monkeypatch.setattr(check_mod, "read_tags_batch", lambda paths: {os.path.abspath(path): (st.st_size, mtime, other)})  # fmt: skip
    check(m)
    assert row(m, fid)["verdict"] == ("verified" if stale else "conflict")


def test_no_worker_processes_means_decoding_in_place(tmp_path, monkeypatch):
    from ccmirror.licence import decode
    from ccmirror.licence.tags import read_tags_apart

    def cannot(*a):
        raise OSError("no semaphores here")

    monkeypatch.setattr(decode, "_pool", None)
    monkeypatch.setattr(decode, "_no_pool", False)
    monkeypatch.setattr(decode, "_new_pool", cannot)
    good = write_audio(tmp_path / "a.mp3", seconds=0.2, tags={"license": BYSA3})
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(good.read_bytes()[:2000])
    assert read_tags_apart(good).error is None and read_tags_apart(cut).error
    assert decode._no_pool and decode._pool is None


def _hang_on_bad(path: str) -> str:
    """Run in a decoding worker: a decoder that never returns on one file."""
    if path.endswith("bad"):
        import select

        select.select([], [], [])  # blocks for ever, as a stuck C decoder would
    return "fine"


def test_a_hanging_decoder_is_ended(tmp_path, monkeypatch):
    from ccmirror.licence import decode

    monkeypatch.setattr(decode, "FILE_TIMEOUT", 1)
    assert decode.call(_hang_on_bad, tmp_path / "bad", "crashed") == "crashed"
    assert decode.call(_hang_on_bad, tmp_path / "good", "crashed") == "fine"
