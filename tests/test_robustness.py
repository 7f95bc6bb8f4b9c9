"""Bad input as an operator meets it: a clear error, nothing lost, nothing written outside
the data dir, nothing published that its licence does not allow."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import unicodedata
from pathlib import Path

import pytest

from ccmirror.catalogue import transaction
from ccmirror.errors import UnsafeName
from ccmirror.fetch import fetch
from ccmirror.fsutil import MAX_NAME_BYTES, safe_relpath
from ccmirror.harvest import harvest
from ccmirror.licence.check import check
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.publish.run import publish
from iafake import IAServer
from iahelpers import CC_BY, audio_bytes, ia_manifest, make_ia_archive
from packhelpers import sample_mirror


@pytest.fixture
def ia():
    with IAServer(latency=0) as server:
        yield server


def _files(mirror, ident):
    return {
        r["name"]: r
        for r in mirror.db.execute(
            "SELECT f.* FROM files f JOIN items i ON i.id = f.item_id WHERE i.source_id = ?",
            (ident,),
        )
    }


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


# -- IA metadata of the wrong shape


def test_item_metadata_of_the_wrong_shape_fails_that_item_only(ia, write_manifest):
    ids = make_ia_archive(ia, 5)
    served = ia.metadata_doc
    broken = {
        ids[0]: lambda d: [1, 2],  # JSON, but a list
        ids[1]: lambda d: {**d, "files": {"a": 1}},
        ids[2]: lambda d: {**d, "metadata": "oops"},
        ids[3]: lambda d: {**d, "files": [None, "x", *d["files"]]},  # odd entries beside good
    }
    ia.metadata_doc = lambda ident: broken.get(ident, lambda d: d)(served(ident))
    mirror = open_mirror(ia_manifest(write_manifest, ia))
    result = harvest(mirror)
    assert result["failed"] == 3
    items = {r["source_id"]: r["status"] for r in mirror.db.execute("SELECT * FROM items")}
    assert items == {ids[3]: "ok", ids[4]: "ok"}
    assert len(_files(mirror, ids[3])) == 2  # its real audio files, the odd entries dropped

    ia.metadata_doc = served  # fixed at the source: the next run records them
    result = harvest(mirror)
    assert result["failed"] == 0
    assert mirror.db.execute("SELECT count(*) FROM items WHERE status = 'ok'").fetchone()[0] == 5


def test_file_fields_that_are_not_what_they_say(ia, write_manifest, data_dir):
    nfc = unicodedata.normalize("NFC", "café.flac")
    nfd = unicodedata.normalize("NFD", "café.flac")
    too_long = "x" * (MAX_NAME_BYTES + 1 - len(".flac")) + ".flac"
    make_ia_archive(
        ia,
        [
            {
                "identifier": "odd",
                "kinds": (),
                "extra_files": {
                    "badsize.flac": {"data": audio_bytes("flac", 1), "size": "abc"},
                    "badmd5.flac": {"data": audio_bytes("flac", 2), "md5": "not-a-checksum"},
                    "sub": {"data": audio_bytes("flac", 3), "format": "Flac"},
                    "sub/inner.flac": audio_bytes("flac", 4),
                    nfc: audio_bytes("flac", 5),
                    nfd: audio_bytes("flac", 6),
                    too_long: audio_bytes("flac", 7),
                },
            }
        ],
    )
    served = ia.metadata_doc

    def with_repeat(ident):  # the same name listed twice: the first entry wins
        d = served(ident)
        first = next(f for f in d["files"] if f["name"] == "badmd5.flac")
        return {**d, "files": [*d["files"], {**first, "size": "1"}]}

    ia.metadata_doc = with_repeat
    mirror = open_mirror(ia_manifest(write_manifest, ia))
    harvest(mirror)
    files = _files(mirror, "odd")
    assert files["badsize.flac"]["size"] is None
    assert files["badmd5.flac"]["md5"] is None and files["badmd5.flac"]["size"] > 1
    assert files["sub"]["status"] == "pending"
    assert files["sub/inner.flac"]["status"] == "refused"
    assert "'sub' is a file" in files["sub/inner.flac"]["reason"]
    assert files[nfc]["status"] == "pending"
    assert files[nfd]["status"] == "refused" and "normalisation" in files[nfd]["reason"]
    # Refused at harvest, with a reason: not a download that fails on every run.
    assert files[too_long]["status"] == "refused" and "too long" in files[too_long]["reason"]

    result = fetch(mirror)
    assert result["failed"] == 0 and result["fetched"] == 4
    store = data_dir / "store/ia/odd"
    assert (store / "badsize.flac").read_bytes() == audio_bytes("flac", 1)
    assert (store / "badmd5.flac").read_bytes() == audio_bytes("flac", 2)
    assert (store / "sub").read_bytes() == audio_bytes("flac", 3)
    assert (store / nfc).read_bytes() == audio_bytes("flac", 5)
    assert not (store / nfd).exists()


def test_name_length_leaves_room_for_the_part_suffix():
    ok = "a" * MAX_NAME_BYTES
    assert str(safe_relpath(ok)) == ok
    with pytest.raises(UnsafeName, match="too long"):
        safe_relpath("a" * (MAX_NAME_BYTES + 1))
    # The download's `.part` of the longest accepted name is still a legal file name.
    assert len((ok + ".part").encode()) <= 255


# -- the data directory and the catalogue


def test_catalogue_that_is_not_sqlite_is_one_clear_line(write_manifest, data_dir, cli):
    manifest = write_manifest(
        '[[source]]\nkind = "ia"\nquery = "x"\nendpoint = "http://127.0.0.1:9"\n'
    )
    junk = b"this is not a database, it is an operator's notes\n" * 10
    (data_dir / "catalogue.sqlite").write_bytes(junk)
    for args in (["status"], ["search", str(manifest), "x"], ["tiers"], ["pack"]):
        cmd = args if len(args) > 1 else [*args, str(manifest)]
        r = cli(*cmd)
        assert r.returncode == 1, (cmd, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "cannot open catalogue" in lines[0] and "not a database" in lines[0]
    assert (data_dir / "catalogue.sqlite").read_bytes() == junk  # never "repaired" away


def test_data_dir_that_is_a_file_is_a_usage_error(write_manifest, data_dir, tmp_path, cli):
    data_dir.rmdir()
    data_dir.write_text("not a folder\n")
    manifest = write_manifest(
        '[[source]]\nkind = "ia"\nquery = "x"\nendpoint = "http://127.0.0.1:9"\n'
    )
    for command in ("status", "harvest", "pack"):
        r = cli(command, str(manifest))
        assert r.returncode == 2, (command, r.stderr)
        assert r.stderr.strip() == f"ccmirror: data directory {data_dir} is not a directory"
    assert data_dir.read_text() == "not a folder\n"
    # Below a file (given by --data-dir): one clear line too.
    r = cli("--data-dir", str(data_dir / "sub"), "harvest", str(manifest))
    assert r.returncode == 2 and "cannot create data directory" in r.stderr, r.stderr
    assert "Not a directory" in r.stderr and len(r.stderr.splitlines()) == 1
    # A read-only command creates nothing, so it says there is no catalogue there.
    r = cli("--data-dir", str(data_dir / "sub"), "status", str(manifest))
    assert r.returncode == 2 and "no catalogue in" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1


# -- bytes changed behind ccmirror's back


@pytest.mark.parametrize("all_known", [False, True], ids=["sha256-unknown", "all-known"])
def test_store_file_changed_before_pack_is_never_packed(tmp_path, all_known):
    mirror = sample_mirror(tmp_path)
    row = mirror.db.execute(
        "SELECT f.id, f.store_path, f.md5, f.name, i.source_id FROM files f"
        " JOIN items i ON i.id = f.item_id WHERE f.verdict = 'verified' ORDER BY f.id LIMIT 1"
    ).fetchone()
    store = mirror.abspath(row["store_path"])
    if all_known:  # as after an earlier pack: nothing left to hash, yet it is checked
        sha256 = hashlib.sha256(store.read_bytes()).hexdigest()
        with transaction(mirror.db):
            mirror.db.execute("UPDATE files SET sha256 = ? WHERE id = ?", (sha256, row["id"]))
    data = bytearray(store.read_bytes())
    data[-100] ^= 0xFF  # same size: only the checksum can tell
    store.write_bytes(bytes(data))
    later = time.time() + 60  # edited a minute after the fetch
    os.utime(store, (later, later))

    result = pack(mirror, seal_partial=True)
    assert result["failed"] == 1 and result["sealed"]
    assert not mirror.db.execute(
        "SELECT 1 FROM pack_files WHERE file_id = ?", (row["id"],)
    ).fetchone()
    # Every packed file is the bytes the catalogue recorded.
    for p in result["sealed"]:
        text = (mirror.packs_dir / p["name"] / "MANIFEST.csv").read_text()
        for r in csv.DictReader(io.StringIO(text)):
            got = (mirror.packs_dir / p["name"] / r["path"]).read_bytes()
            assert hashlib.md5(got).hexdigest() == r["md5"]
            assert r["path"] != f"ia/{row['source_id']}/{row['name']}"
    # Nothing lost: the changed bytes wait in quarantine with a reason; the file is
    # pending again so the next fetch gets the source's bytes.
    q = mirror.data_dir / "quarantine/ia" / row["source_id"] / row["name"]
    assert q.read_bytes() == bytes(data)
    reason = json.loads(q.with_name(q.name + ".reason.json").read_text())
    assert "changed since it was fetched" in reason["reason"]
    f = mirror.db.execute("SELECT * FROM files WHERE id = ?", (row["id"],)).fetchone()
    assert (f["status"], f["store_path"], f["verdict"]) == ("pending", None, None)
    assert f["md5"] == row["md5"]
    # The next run packs nothing of it and fails no more.
    again = pack(mirror, seal_partial=True)
    assert again["failed"] == 0


# -- symlinks planted in the data dir


def test_symlinks_planted_in_packs_are_never_followed(tmp_path):
    mirror = sample_mirror(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    mirror.packs_dir.mkdir(parents=True)
    (mirror.packs_dir / "test-t1-0001").symlink_to(outside)
    (mirror.packs_dir / ".test-t2-0001.build").symlink_to(outside)
    result = pack(mirror, seal_partial=True)
    assert result["failed"] == 0 and len(result["sealed"]) == 3
    assert _tree(outside) == {"precious.txt": b"keep me"}
    assert not (mirror.packs_dir / "test-t1-0001").is_symlink()
    assert (mirror.packs_dir / "test-t1-0001" / "MANIFEST.csv").is_file()


def test_store_file_swapped_for_a_symlink_leading_outside_is_left_out(tmp_path):
    mirror = sample_mirror(tmp_path)
    row = mirror.db.execute(
        "SELECT id, store_path FROM files WHERE verdict = 'verified' ORDER BY id LIMIT 1"
    ).fetchone()
    store = mirror.abspath(row["store_path"])
    outside = tmp_path / "outside.flac"
    os.replace(store, outside)  # the same bytes, now outside the data dir
    os.symlink(outside, store)
    result = pack(mirror, seal_partial=True)
    assert result["failed"] == 1 and len(result["sealed"]) == 3  # the rest is packed
    assert not mirror.db.execute(
        "SELECT 1 FROM pack_files WHERE file_id = ?", (row["id"],)
    ).fetchone()
    assert os.stat(outside).st_nlink == 1  # never hard-linked into a pack


def test_symlinked_packs_or_quarantine_folder_cannot_lead_outside(tmp_path):
    mirror = sample_mirror(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, mirror.packs_dir)
    with pytest.raises(UnsafeName, match="outside"):
        pack(mirror, seal_partial=True)
    assert _tree(outside) == {}

    os.unlink(mirror.packs_dir)
    os.symlink(outside, mirror.quarantine_dir)
    row = mirror.db.execute(
        "SELECT id, store_path FROM files WHERE verdict = 'verified' ORDER BY id LIMIT 1"
    ).fetchone()
    store = mirror.abspath(row["store_path"])
    data = bytearray(store.read_bytes())
    data[-100] ^= 0xFF
    store.write_bytes(bytes(data))
    later = time.time() + 60  # edited a minute after the fetch
    os.utime(store, (later, later))
    result = pack(mirror, seal_partial=True)
    assert result["failed"] == 1  # left out of every pack all the same
    assert _tree(outside) == {}
    assert store.read_bytes() == bytes(data)  # not quarantined: kept where it was
    f = mirror.db.execute("SELECT status, store_path FROM files WHERE id = ?", (row["id"],))
    assert tuple(f.fetchone()) == ("fetched", row["store_path"])  # no fetch overwrites it
    assert pack(mirror, seal_partial=True)["failed"] == 1  # and it stays out, loudly
    assert _tree(outside) == {}


# -- a licence that changes at the source


def _published_paths(mirror) -> set[str]:
    """Audio paths inside every torrent torrents.json offers (not obsolete)."""
    listed = json.loads((mirror.public_dir / "torrents.json").read_text())
    out = set()
    for t in listed:
        if t["obsolete"] or t["is_metadata"]:
            continue
        text = (mirror.packs_dir / t["name"] / "MANIFEST.csv").read_text()
        out |= {r["path"] for r in csv.DictReader(io.StringIO(text))}
    return out


def test_item_whose_licence_is_withdrawn_at_the_source_is_never_published_again(ia, write_manifest):
    ids = make_ia_archive(ia, 3, kinds=("flac",))
    mirror = open_mirror(ia_manifest(write_manifest, ia))
    harvest(mirror)
    fetch(mirror)
    check(mirror)
    assert pack(mirror, seal_partial=True)["failed"] == 0
    publish(mirror)
    victim = f"ia/{ids[1]}/{ids[1]}-01.flac"
    assert victim in _published_paths(mirror)

    # The uploader changes the licence to all rights reserved.
    meta = ia.items[ids[1]]
    files = {f.name: f.data for f in meta.files}
    md = {k: v for k, v in meta.metadata.items() if k not in ("identifier", "mediatype")}
    md["licenseurl"] = "http://www.example.com/all-rights-reserved"
    ia.add_item(ids[1], md, files, downloads=20)
    for _ in range(2):  # and it stays out on every later run
        harvest(mirror)
        fetch(mirror)
        check(mirror)
        result = pack(mirror, seal_partial=True)
        publish(mirror)
        assert result["failed"] == 0
        published = _published_paths(mirror)
        assert victim not in published
        assert f"ia/{ids[0]}/{ids[0]}-01.flac" in published  # the others still are
    obsolete = mirror.db.execute("SELECT obsolete_reason FROM packs WHERE obsolete = 1").fetchall()
    assert obsolete and ids[1] in obsolete[0][0]

    # The licence comes back: publishable again, in a new pack (sealed packs never change).
    md["licenseurl"] = CC_BY
    ia.add_item(ids[1], md, files, downloads=20)
    harvest(mirror)
    fetch(mirror)
    check(mirror)
    pack(mirror, seal_partial=True)
    publish(mirror)
    assert victim in _published_paths(mirror)


# -- files that are not files


@pytest.mark.timeout(60)
def test_a_fifo_is_unreadable_at_once_not_a_hang(tmp_path):
    from ccmirror.licence import inspect
    from ccmirror.sample.audio import write_audio

    fifo = tmp_path / "track.flac"
    os.mkfifo(fifo)  # opening it to read would block until a writer comes: never
    good = write_audio(tmp_path / "good.flac", "flac", seconds=0.2, seed=1)
    rows = inspect([fifo, good])["files"]
    assert [r["verdict"] for r in rows] == ["unreadable", "rejected"]
    assert rows[0]["error"] == "not a regular file"
    assert rows[1]["error"] is None


def test_identifiers_that_would_leave_their_folder_are_refused_not_failed(ia, write_manifest):
    make_ia_archive(ia, [{"identifier": i} for i in ("x/../../evil", "..", "a b", "good-1")])
    mirror = open_mirror(ia_manifest(write_manifest, ia))
    for _ in range(2):  # not a failure to retry on every cron run
        result = harvest(mirror)
        assert result["failed"] == 0
        assert result["refused"] == {"unsafe identifier": 2}
    items = {r["source_id"] for r in mirror.db.execute("SELECT source_id FROM items")}
    assert items == {"a b", "good-1"}
    asked = [r.path for r in ia.requests if r.path.startswith("/metadata/")]
    assert not any(".." in p for p in asked)


def test_resume_stamp_that_is_not_an_object_means_a_full_check(tmp_path):
    import libtorrent as lt

    from ccmirror.packs.torrent import make_torrent
    from ccmirror.seed.resume import ResumeStore, torrent_key

    save = tmp_path / "packs"
    (save / "p").mkdir(parents=True)
    (save / "p" / "a.bin").write_bytes(os.urandom(40_000))
    ti = lt.torrent_info(make_torrent(save, "p", creation_date=0))
    store = ResumeStore(tmp_path / "seed", save)
    key = torrent_key(ti.info_hashes())
    store.folder.mkdir()
    (store.folder / f"{key}.resume").write_bytes(b"d4:abcdi1ee")
    (store.folder / f"{key}.stamp.json").write_text("[1, 2]")  # torn or hand-edited
    params, why = store.load(ti)
    assert params is None and "not an object" in why


def test_a_newcomer_that_clashes_with_a_fetched_file_is_the_one_refused(ia, write_manifest):
    nfc = unicodedata.normalize("NFC", "été.flac")
    nfd = unicodedata.normalize("NFD", "été.flac")
    first = {"sub/inner.flac": audio_bytes("flac", 1), nfd: audio_bytes("flac", 2)}
    spec = {"identifier": "grows", "kinds": ("flac",)}
    make_ia_archive(ia, [{**spec, "extra_files": first}])
    mirror = open_mirror(ia_manifest(write_manifest, ia))
    harvest(mirror)
    assert fetch(mirror)["fetched"] == 3
    # The uploader adds a file named like the folder, and the NFC twin of a fetched name.
    later = {
        **first,
        "sub": {"data": audio_bytes("flac", 3), "format": "Flac"},
        nfc: audio_bytes("flac", 4),
    }
    make_ia_archive(ia, [{**spec, "extra_files": later}])
    harvest(mirror)
    files = _files(mirror, "grows")
    assert files["sub/inner.flac"]["status"] == "fetched"
    assert files[nfd]["status"] == "fetched"
    assert files["sub"]["status"] == "refused" and "already fetched" in files["sub"]["reason"]
    assert files[nfc]["status"] == "refused" and "normalisation" in files[nfc]["reason"]
    assert fetch(mirror)["failed"] == 0


def test_a_store_file_deleted_behind_our_back_comes_back_from_its_pack(tmp_path):
    """The sealed pack holds the same verified bytes (a hard link): check puts them back,
    the pack stays current, and nothing is downloaded or re-packed."""
    from ccmirror.licence.check import check
    from ccmirror.packs import pack
    from packhelpers import sample_mirror

    m = sample_mirror(tmp_path, pack_size="300KiB")
    check(m)  # real verdicts first (the fixture writes its own)
    pack(m, seal_partial=True)
    f = m.db.execute(
        "SELECT f.id, f.store_path, f.md5, f.verdict FROM files f"
        " JOIN pack_files pf ON pf.file_id = f.id LIMIT 1"
    ).fetchone()
    store = m.abspath(f["store_path"])
    data = store.read_bytes()
    store.unlink()
    r = check(m)
    assert r["restored"] == 1 and r["missing"] == 0 and r["failed"] == 0
    assert store.read_bytes() == data
    again = m.db.execute("SELECT status, verdict FROM files WHERE id = ?", (f["id"],)).fetchone()
    assert tuple(again) == ("fetched", f["verdict"])
    before = m.db.execute("SELECT name, obsolete FROM packs ORDER BY id").fetchall()
    out = pack(m, seal_partial=True)
    assert out["obsoleted"] == 0 and out["sealed"] == []
    assert m.db.execute("SELECT name, obsolete FROM packs ORDER BY id").fetchall() == before
