"""IA harvest against the loopback IA server, through the real `internetarchive` library."""

from __future__ import annotations

import json
import socket

import pytest

from ccmirror.catalogue import transaction
from ccmirror.errors import SourceUnreachable
from ccmirror.harvest import harvest
from ccmirror.lock import DataLock
from ccmirror.mirror import open_mirror
from ccmirror.sources import ia as ia_source
from ccmirror.sources.ia import make_session
from iafake import IAServer
from iahelpers import CC0, CC_BY, SAMPLING, audio_bytes, ia_manifest, make_ia_archive


@pytest.fixture
def ia():
    with IAServer() as server:
        yield server


def _items(mirror):
    return {r["source_id"]: r for r in mirror.db.execute("SELECT * FROM items")}


def _metadata_requests(server):
    return [r.path for r in server.requests if r.path.startswith("/metadata/")]


def test_scrape_paging_query_language_and_consistent_total():
    with IAServer(page_size=3) as ia:
        make_ia_archive(ia, 8)
        make_ia_archive(
            ia,
            [
                {"identifier": "old-78", "collection": ["78rpm", "netlabels"]},
                {"identifier": "live-1", "collection": ["etree"]},
                {"identifier": "other", "collection": ["opensource_audio"]},
            ],
            kinds=("ogg",),
        )
        session = make_session(ia.url)
        query = "collection:netlabels AND mediatype:audio AND NOT collection:(78rpm OR etree)"
        search = session.search_items(query, fields=["identifier", "downloads", "collection"])
        found = [d for d in search]  # noqa: C416 - list() would ask len() (a total_only call)
        assert [d["identifier"] for d in found] == [f"item-{i:03d}" for i in range(8)]
        assert found[0]["downloads"] == 80 and found[0]["collection"] == ["netlabels"]
        assert set(found[0]) == {"identifier", "downloads", "collection"}  # fields honoured
        scrapes = [r for r in ia.requests if r.path == "/services/search/v1/scrape"]
        assert len(scrapes) == 3  # 3 + 3 + 2, cursor paging
        # The total is the same on every page.
        doc = ia.scrape({"q": query, "count": "100"})
        again = ia.scrape({"q": query, "count": "100", "cursor": doc["cursor"]})
        assert doc["total"] == again["total"] == 8 and len(doc["items"]) == 3
        # As archive.org: a page is 100 to 10000 results (the library asks for 10000).
        assert "between 100 and 10000" in ia.scrape({"q": query, "count": "99"})["error"]
        assert "between 100 and 10000" in ia.scrape({"q": query, "count": "10001"})["error"]
        assert {r.query.get("count") for r in ia.requests if r.path.endswith("/scrape")} == {
            "10000"
        }
        assert session.search_items("collection:etree").num_found == 1
        assert [d["identifier"] for d in session.search_items("NOT collection:netlabels")] == [
            "live-1",
            "other",
        ]
        assert ia.scrape({"q": "collection:(netlabels"})["error"].startswith("invalid query")


def test_harvest_records_items_refusals_dark_and_empty(ia, write_manifest):
    make_ia_archive(ia, 3)
    make_ia_archive(
        ia,
        [
            {"identifier": "rpm", "collection": ["78rpm", "netlabels"], "downloads": 5},
            {"identifier": "gb", "collection": ["georgeblood", "netlabels"]},
            {"identifier": "nolicence", "licenseurl": None},
            {"identifier": "sampling", "licenseurl": SAMPLING},
            {"identifier": "dark", "dark": True},
            {"identifier": "textonly", "kinds": (), "licenseurl": CC0},
            {"identifier": "deleted"},
            {"identifier": "twice", "licenseurl": [CC_BY, CC_BY], "downloads": 1},
            {
                "identifier": "private",
                "kinds": (),
                "extra_files": {"p.flac": {"data": b"x", "private": "true"}},
            },
        ],
    )
    ia.forget("deleted")
    with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
        result = harvest(mirror, workers=4)
        items = _items(mirror)
        assert result["found"] == 12 and result["new"] == 9 and result["failed"] == 0
        assert result["dark"] == 1 and result["empty"] == 2 and result["missing"] == 1
        assert "deleted" not in items
        assert result["refused"]["excluded collection: 78rpm"] == 1
        assert result["refused"]["excluded collection: georgeblood"] == 1
        assert result["refused"]["no licence declared"] == 1
        assert sum(result["refused"].values()) == 4
        # Excluded collections are refused from the search alone: no metadata request.
        assert "/metadata/rpm" not in _metadata_requests(ia)
        assert items["rpm"]["status"] == "refused"
        assert items["sampling"]["status"] == "refused"
        assert items["dark"]["status"] == "dark" and items["textonly"]["status"] == "empty"
        assert items["private"]["status"] == "empty"  # a private file is never selectable
        assert items["twice"]["status"] == "ok" and items["twice"]["licence_url"] == CC_BY
        ok = items["item-000"]
        assert ok["status"] == "ok" and ok["title"] == "Album item-000"
        assert ok["downloads"] == 30 and ok["popularity"] == 30.0
        assert json.loads(ok["collections"]) == ["netlabels"]
        assert ok["licence_url"] == CC_BY and ok["source_updated"]
        files = mirror.db.execute(
            "SELECT name, size, md5, sha1, format, origin, status, url FROM files"
            " WHERE item_id = ? ORDER BY name",
            (ok["id"],),
        ).fetchall()
        # Audio originals only; the text file is not selected.
        assert [f["name"] for f in files] == ["item-000-01.flac", "item-000-02.mp3"]
        data = ia.file_bytes("item-000", "item-000-01.flac")
        assert files[0]["size"] == len(data) and files[0]["status"] == "pending"
        assert files[0]["format"] == "Flac" and files[0]["origin"] == "original"
        assert files[0]["url"] == f"{ia.url}/download/item-000/item-000-01.flac"
        # Refused and dark items have no files to fetch; the private file is recorded
        # as skipped, with why.
        assert not mirror.db.execute(
            "SELECT count(*) FROM files f JOIN items i ON i.id = f.item_id"
            " WHERE i.status != 'ok' AND f.status != 'refused'"
        ).fetchone()[0]
        assert (
            mirror.db.execute(
                "SELECT f.reason FROM files f JOIN items i ON i.id = f.item_id"
                " WHERE i.source_id = 'private'"
            ).fetchone()[0]
            == "skipped: private file (the archive answers 403)"
        )


def test_files_by_format_names(ia, write_manifest):
    make_ia_archive(ia, 2, kinds=("flac", "mp3", "ogg"))
    path = ia_manifest(write_manifest, ia, extra='files = ["VBR MP3", "Ogg Vorbis"]')
    with open_mirror(path) as mirror:
        harvest(mirror)
        names = [r[0] for r in mirror.db.execute("SELECT name FROM files ORDER BY name")]
    assert names == ["item-000-02.mp3", "item-000-03.ogg", "item-001-02.mp3", "item-001-03.ogg"]


def test_incremental_harvest_reads_only_changed_items(ia, write_manifest):
    make_ia_archive(ia, 6)
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        first = harvest(mirror)
        assert first["new"] == 6 and len(_metadata_requests(ia)) == 6
        ia.requests.clear()
        second = harvest(mirror)
        assert second["unchanged"] == 6 and second["new"] == second["updated"] == 0
        assert _metadata_requests(ia) == []
        ia.touch("item-002", title="Remastered")
        ia.add_item(
            "item-004",
            {"title": "New take", "collection": "netlabels", "licenseurl": CC_BY},
            {"new.flac": ia.file_bytes("item-000", "item-000-01.flac")},
            downloads=7,
        )
        ia.requests.clear()
        third = harvest(mirror)
        assert sorted(_metadata_requests(ia)) == ["/metadata/item-002", "/metadata/item-004"]
        assert third["updated"] == 2 and third["unchanged"] == 4 and third["files"] == 1
        items = _items(mirror)
        assert items["item-002"]["title"] == "Remastered"
        assert items["item-004"]["downloads"] == 7
        # A takedown outlives any later change at the source.
        with transaction(mirror.db):
            mirror.db.execute(
                "UPDATE items SET status = 'withdrawn', reason = 'takedown'"
                " WHERE source_id = 'item-002'"
            )
        ia.touch("item-002", title="Remastered again")
        harvest(mirror)
        item = _items(mirror)["item-002"]
        assert item["status"] == "withdrawn" and item["reason"] == "takedown"
        assert item["title"] == "Remastered again"


def test_licence_policy_change_rereads_refused_items(ia, write_manifest):
    make_ia_archive(ia, [{"identifier": "pd", "licenseurl": CC0}, {"identifier": "by"}])
    source = f'[[source]]\nkind = "ia"\nquery = "collection:netlabels"\nendpoint = "{ia.url}"\n'
    path = write_manifest(source + '[licence]\nallow = ["CC-BY-*"]\n')
    with open_mirror(path) as mirror:
        first = harvest(mirror)
        assert _items(mirror)["pd"]["status"] == "refused"
        # The reason is the licence engine's (short, stable, countable).
        [(reason, n)] = first["refused"].items()
        assert n == 1 and "licence" in reason
    write_manifest(source + '[licence]\nallow = ["CC-BY-*", "CC0-1.0"]\n')
    ia.requests.clear()
    with open_mirror(path) as mirror:
        result = harvest(mirror)
        assert _items(mirror)["pd"]["status"] == "ok"
    assert _metadata_requests(ia) == ["/metadata/pd"]
    assert result["updated"] == 1 and result["unchanged"] == 1 and result["refused"] == {}


def test_metadata_fetched_concurrently_but_bounded(write_manifest):
    with IAServer(latency=0.05) as ia:
        make_ia_archive(ia, 24, kinds=("mp3",), variety=2)
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            ia.max_in_flight = 0
            result = harvest(mirror, workers=4)
        assert result["new"] == 24
        assert 2 <= ia.max_in_flight <= 4


def test_harvest_rides_out_429_503_and_resets(ia, write_manifest):
    make_ia_archive(ia, 4, kinds=("mp3",))
    ia.fault("503", path="/services/search/v1/scrape")
    ia.fault("429", path="/metadata/item-001", retry_after=1)
    ia.fault("reset", path="/metadata/item-002")
    with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
        result = harvest(mirror, workers=2)
        assert result["new"] == 4 and result["failed"] == 0
    paths = [r.path for r in ia.requests]
    assert paths.count("/services/search/v1/scrape") == 2
    assert paths.count("/metadata/item-001") == 2
    assert paths.count("/metadata/item-002") == 2


def test_metadata_that_never_comes_is_failed_and_retried_next_run(ia, write_manifest, monkeypatch):
    monkeypatch.setattr(ia_source, "BACKOFF_FACTOR", 0.01)  # the same policy, faster
    make_ia_archive(ia, 3, kinds=("mp3",))
    ia.fault("500", path="/metadata/item-001", times=None)
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        result = harvest(mirror, workers=2)
        assert result["failed"] == 1 and result["new"] == 2
        assert "item-001" not in _items(mirror)
        attempts = [r for r in ia.requests if r.path == "/metadata/item-001"]
        assert len(attempts) == 1 + ia_source.MAX_RETRIES
        ia.clear_faults()
        again = harvest(mirror, workers=2)
        assert again["new"] == 1 and again["unchanged"] == 2 and again["failed"] == 0


def test_unreachable_source_is_exit_4(write_manifest, cli):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_manifest(
        f'[[source]]\nkind = "ia"\nquery = "collection:x"\nendpoint = "http://127.0.0.1:{port}"\n'
    )
    with open_mirror(path) as mirror, pytest.raises(SourceUnreachable):
        harvest(mirror)
    r = cli("harvest", str(path))
    assert r.returncode == 4, r.stderr
    # One plain sentence: no repr of urllib3's exceptions.
    assert r.stderr == f"ccmirror: ia: cannot reach http://127.0.0.1:{port} (connection refused)\n"
    r = cli("sync", str(path))
    assert r.returncode == 4, r.stderr
    assert f"ia: cannot reach http://127.0.0.1:{port} (connection refused)" in r.stderr
    assert "Error(" not in r.stderr and "Traceback" not in r.stderr


def test_failed_requests_are_one_plain_sentence(ia, write_manifest, monkeypatch, caplog):
    monkeypatch.setattr(ia_source, "BACKOFF_FACTOR", 0.001)  # the same policy, faster
    make_ia_archive(ia, 2, kinds=("mp3",))
    path = ia_manifest(write_manifest, ia)
    tries = ia_source.MAX_RETRIES + 1
    ia.fault("503", path="/services/search/v1/scrape", times=None)
    with open_mirror(path) as mirror:
        with pytest.raises(SourceUnreachable) as e:
            harvest(mirror)
        assert e.value.message == f"ia: cannot reach {ia.url} (HTTP 503 after {tries} tries)"
        ia.clear_faults()
        ia.fault("500", path="/metadata/item-001", times=None)
        with caplog.at_level("WARNING", logger="ccmirror"):
            assert harvest(mirror)["failed"] == 1
        assert (
            f"ia: item-001: cannot read its metadata from {ia.url} (HTTP 500 after {tries} tries)"
            in caplog.messages
        )
        ia.fault("500", path="/metadata/*", times=None)
        ia.touch("item-000")
        with pytest.raises(SourceUnreachable) as e:
            harvest(mirror)
        assert e.value.message == (
            f"ia: cannot read item metadata from {ia.url} (HTTP 500 after {tries} tries)"
        )


def test_cli_harvest_json_lock_and_manifest_errors(ia, write_manifest, data_dir, cli):
    make_ia_archive(ia, 2, kinds=("mp3",))
    make_ia_archive(ia, [{"identifier": "rpm", "collection": ["78rpm"]}])
    path = ia_manifest(write_manifest, ia, query="collection:netlabels OR collection:78rpm")
    r = cli("harvest", str(path), "--json", "--workers", "2")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["found"] == 3 and doc["new"] == 2
    assert doc["refused"] == {"excluded collection: 78rpm": 1}
    assert r.stderr == ""  # no progress bars off a terminal
    with DataLock(data_dir):
        r = cli("harvest", str(path))
    assert r.returncode == 3 and "lock" in r.stderr and len(r.stderr.splitlines()) == 1
    bad = write_manifest('[[source]]\nkind = "ia"\nquery = "x"\nendpoint = "ftp://x"\nfoo = 1\n')
    r = cli("harvest", str(bad))
    assert r.returncode == 2 and "source[0]" in r.stderr and str(bad) in r.stderr
    r = cli("harvest", str(path), "--workers", "0")
    assert r.returncode == 2
    r = cli("harvest", "--help")
    assert r.returncode == 0 and "Example" in r.stdout


def test_max_items_keeps_the_most_popular(ia, write_manifest, cli):
    make_ia_archive(
        ia,
        [{"identifier": f"x{i}", "downloads": d} for i, d in enumerate([5, 500, 50, 5000])],
        kinds=("mp3",),
    )
    path = ia_manifest(write_manifest, ia, extra="max_items = 2")
    r = cli("harvest", str(path), "--quiet")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    with open_mirror(path) as mirror:
        assert sorted(_items(mirror)) == ["x1", "x3"]


def test_withdrawn_items_files_stay_refused_when_the_source_changes(ia, write_manifest):
    from ccmirror.withdraw import withdraw

    make_ia_archive(ia, 2, kinds=("mp3",))
    with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
        harvest(mirror)
        withdraw(mirror, "item-000", "takedown request")
        # New bytes for the old file, and a new file: the item is still withdrawn.
        new = b"remastered" * 100
        ia.add_item(
            "item-000",
            {"title": "Again", "collection": "netlabels", "licenseurl": CC_BY},
            {"item-000-01.mp3": new, "bonus.mp3": new},
        )
        again = harvest(mirror)
        assert again["updated"] == 1 and again["files"] == 0
        files = mirror.db.execute(
            "SELECT f.name, f.status, f.reason FROM files f JOIN items i ON i.id = f.item_id"
            " WHERE i.source_id = 'item-000' ORDER BY f.name"
        ).fetchall()
        assert [tuple(f) for f in files] == [
            ("bonus.mp3", "refused", "withdrawn: takedown request"),
            ("item-000-01.mp3", "refused", "withdrawn: takedown request"),
        ]
        assert _items(mirror)["item-000"]["status"] == "withdrawn"


def test_the_same_archive_served_again_is_unchanged(write_manifest):
    # Two servers in turn (as `ccmirror demo` run twice), on the same port: the stamps come
    # from the items, not the clock, so the second harvest reads no metadata at all.
    first = IAServer().start()
    url = first.url
    port = int(url.rsplit(":", 1)[1])
    make_ia_archive(first, 4, kinds=("mp3",))
    first.add_item("fixed", {"collection": "netlabels", "licenseurl": CC_BY}, {}, updated=1234)
    path = ia_manifest(write_manifest, first)
    stamps = first.search_doc(first.items["item-000"])["oai_updatedate"]
    assert stamps[0].startswith("2020-")  # derived from the item (in 2020), not the clock
    with open_mirror(path) as mirror:
        assert harvest(mirror)["new"] == 5
        first.stop()
        with IAServer(port=port) as second:
            assert second.url == url
            make_ia_archive(second, 4, kinds=("mp3",))
            second.add_item(
                "fixed", {"collection": "netlabels", "licenseurl": CC_BY}, {}, updated=1234
            )
            assert second.search_doc(second.items["item-000"])["oai_updatedate"] == stamps
            assert second.metadata_doc("fixed")["item_last_updated"] == 1234
            again = harvest(mirror)
            assert again["found"] == 5 and again["unchanged"] == again["found"]
            assert not _metadata_requests(second)
            # A change is still seen: touch and replace move the stamp forward.
            second.touch("item-001", title="New title")
            second.add_item(
                "fixed", {"collection": "netlabels", "licenseurl": CC_BY}, {}, updated=1234
            )
            assert second.metadata_doc("fixed")["item_last_updated"] == 1235
            assert harvest(mirror)["updated"] == 2


def test_without_oai_updatedate_item_last_updated_decides(ia, write_manifest):
    ia.hidden_fields = {"oai_updatedate"}  # should the scrape API not return it
    make_ia_archive(ia, 3, kinds=("mp3",))
    with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
        assert harvest(mirror)["new"] == 3
        ia.requests.clear()
        again = harvest(mirror)
        # Every item is read (nothing else tells), none is rewritten.
        assert len(_metadata_requests(ia)) == 3
        assert (again["unchanged"], again["updated"], again["files"]) == (3, 0, 0)
        ia.touch("item-001", title="Changed")
        ia.add_item(
            "item-002",
            {"collection": "netlabels", "licenseurl": CC_BY},
            {"new.mp3": b"new bytes"},
        )
        third = harvest(mirror)
        assert (third["unchanged"], third["updated"], third["files"]) == (1, 2, 1)
        assert _items(mirror)["item-001"]["title"] == "Changed"


def test_original_audio_only_with_real_ia_file_lists(ia, write_manifest):
    # The file kinds a real IA audio item lists (formats and sources as archive.org names
    # them; sizes are strings there too).
    audio = audio_bytes("mp3")
    extra = {
        "a_files.xml": {"data": b"<files/>", "format": "Metadata"},
        "a_meta.xml": {"data": b"<metadata/>", "format": "Metadata"},
        "a_meta.sqlite": {"data": b"x", "format": "Metadata"},
        "__ia_thumb.jpg": {"data": b"x", "format": "Item Tile"},
        "a_archive.torrent": {"data": b"x", "format": "Archive BitTorrent", "source": "metadata"},
        "cover.jpg": {"data": b"x", "format": "JPEG"},
        "cover_thumb.jpg": {"data": b"x", "format": "JPEG Thumb", "source": "derivative"},
        "notes.txt": {"data": b"x", "format": "Text"},
        "a.png": {"data": b"x", "format": "PNG", "source": "derivative"},
        "track.ogg": {"data": b"x", "format": "Ogg Vorbis", "source": "derivative"},
        "track_spectrogram.png": {"data": b"x", "format": "Spectrogram", "source": "derivative"},
        "track.flac": {"data": audio, "format": "Flac"},
        "take2.wav": {"data": audio, "format": "WAVE"},
        "hidden.flac": {"data": audio, "format": "Flac", "private": "true"},
    }
    make_ia_archive(ia, [{"identifier": "a", "kinds": ("mp3",), "extra_files": extra}])
    with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
        harvest(mirror)
        rows = mirror.db.execute(
            "SELECT name, size FROM files WHERE status = 'pending' AND kind = 'audio' ORDER BY name"
        ).fetchall()
        # Issue 18: the uploaded cover is the item's artwork; IA's own images are not.
        artwork = mirror.db.execute("SELECT name FROM files WHERE kind = 'artwork'").fetchall()
    assert [r["name"] for r in rows] == ["a-01.mp3", "take2.wav", "track.flac"]
    assert [r["name"] for r in artwork] == ["cover.jpg"]
    assert all(isinstance(r["size"], int) and r["size"] == len(audio) for r in rows[1:])
    assert isinstance(ia.metadata_doc("a")["files"][0]["size"], str)
