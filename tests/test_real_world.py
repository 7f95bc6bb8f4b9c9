"""The Internet Archive and the FMA dataset as they really answer (issue 11).

Each test is one behaviour users of the `internetarchive` library and the FMA dataset have
met, played by the loopback archive's quirks; each failed on the code before this issue.
"""

from __future__ import annotations

import json

import pytest
import requests

from ccmirror.fetch import fetch
from ccmirror.harvest import harvest
from ccmirror.licence import judge_declared
from ccmirror.licence.normalise import normalise_title
from ccmirror.manifest import LicenceConfig
from ccmirror.mirror import open_mirror
from ccmirror.search import search
from ccmirror.sources.values import clean_text, iso_date
from fmahelpers import track_row, write_audio_tree, write_metadata_zip
from iafake import IAServer
from iahelpers import audio_bytes, ia_manifest, make_ia_archive


def _scrapes(ia: IAServer) -> int:
    return sum(r.path == "/services/search/v1/scrape" for r in ia.requests)


def _files(mirror) -> dict[str, dict]:
    rows = mirror.db.execute("SELECT name, status, reason FROM files ORDER BY name").fetchall()
    return {r["name"]: dict(r) for r in rows}


# -- the scrape ---------------------------------------------------------------------------


def test_scrape_total_unlike_the_items_delivered_keeps_every_item(write_manifest, cli):
    with IAServer(page_size=3) as ia:
        make_ia_archive(ia, 7, kinds=("mp3",))
        path = ia_manifest(write_manifest, ia)
        ia.total_skew = 2  # the index grew after the first page
        r = cli("--json", "harvest", str(path))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["new"] == 7 and doc["failed"] == 0
        assert doc["sources"][0]["search"] == {
            "total": 9,
            "delivered": 7,
            "pages": 3,
            "repeats": 0,
            "stopped": None,
        }
        assert (
            len(doc["warnings"]) == 1 and "declared 9 items and delivered 7" in doc["warnings"][0]
        )
        ia.total_skew = -3  # or shrank
        ia.touch("item-001")
        doc = json.loads(cli("--json", "harvest", str(path)).stdout)
        assert doc["updated"] == 1 and doc["unchanged"] == 6
        assert "declared 4 items and delivered 7" in doc["warnings"][0]


def test_scrape_that_ignores_the_cursor_stops_and_keeps_what_arrived(write_manifest, cli):
    with IAServer(page_size=3) as ia:
        make_ia_archive(ia, 8, kinds=("mp3",))
        ia.ignore_cursor = True  # page 1 again, with a cursor, for ever
        r = cli("--json", "harvest", str(ia_manifest(write_manifest, ia)), timeout=60)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["found"] == 3 and doc["new"] == 3
        search_doc = doc["sources"][0]["search"]
        assert search_doc["pages"] == 2 and search_doc["repeats"] == 3
        assert "repeated a cursor" in search_doc["stopped"]
        assert any("search stopped early" in w and "3 items of 8" in w for w in doc["warnings"])
        assert _scrapes(ia) == 2


@pytest.mark.timeout(60)  # it used to loop for ever
def test_a_page_with_nothing_new_under_a_new_cursor_also_ends_the_scrape(write_manifest):
    with IAServer(page_size=3) as ia:
        make_ia_archive(ia, 8, kinds=("mp3",))
        ia.ignore_cursor = True
        real_scrape = ia.scrape
        turn = iter(range(10**6))

        def fresh_cursor(params):
            doc = real_scrape(params)
            doc["cursor"] = f"c{next(turn)}"  # a new cursor every time, page 1 every time
            return doc

        ia.scrape = fresh_cursor
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            result = harvest(mirror)
        assert result["new"] == 3 and _scrapes(ia) == 2
        assert "nothing new" in result["sources"][0]["search"]["stopped"]


# -- item metadata ------------------------------------------------------------------------


def test_metadata_error_document_is_a_failed_read_retried_next_run(write_manifest):
    with IAServer() as ia:
        make_ia_archive(ia, 3, kinds=("mp3",))
        ia.metadata_errors["item-001"] = "Internal error: item temporarily unavailable"
        path = ia_manifest(write_manifest, ia)
        with open_mirror(path) as mirror:
            result = harvest(mirror)
            assert result["failed"] == 1 and result["new"] == 2 and result["refused"] == {}
            ids = {r[0] for r in mirror.db.execute("SELECT source_id FROM items")}
            assert "item-001" not in ids
            ia.metadata_errors.clear()
            again = harvest(mirror)
            assert again["new"] == 1 and again["failed"] == 0
            row = mirror.db.execute(
                "SELECT status, declared_licence_id FROM items WHERE source_id = 'item-001'"
            ).fetchone()
            assert tuple(row) == ("ok", "CC-BY-4.0")


def test_unsorted_repeated_update_stamps_give_the_newest(write_manifest):
    with IAServer() as ia:
        make_ia_archive(ia, 2, kinds=("mp3",))
        ia.set_updates(
            "item-000", ["2021-05-01T10:00:00Z", "2019-01-01T00:00:00Z", "2021-05-01T10:00:00Z"]
        )
        path = ia_manifest(write_manifest, ia)
        with open_mirror(path) as mirror:
            harvest(mirror)
            stamp = mirror.db.execute(
                "SELECT source_updated FROM items WHERE source_id = 'item-000'"
            ).fetchone()[0]
            assert stamp == "2021-05-01T10:00:00Z"
            ia.set_updates("item-000", ["2021-05-01T10:00:00Z", "2019-01-01T00:00:00Z"])
            again = harvest(mirror)
            assert again["unchanged"] == 2 and again["updated"] == 0


# -- files --------------------------------------------------------------------------------


def test_unverifiable_originals_are_skipped_with_a_reason_never_fetched(write_manifest, data_dir):
    flac, mp3 = audio_bytes("flac", 7), audio_bytes("mp3", 8)
    extra = {
        "live.shn": {"data": flac, "format": "Shorten"},
        "wrong.flac": {"data": mp3, "format": "VBR MP3"},
        "wrong.mp3": {"data": flac, "format": "Flac"},
        "noformat.ogg": {"data": flac, "format": ""},
        "good.flac": {"data": flac, "format": "Flac"},
    }
    with IAServer() as ia:
        make_ia_archive(ia, [{"identifier": "a", "kinds": (), "extra_files": extra}])
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            result = harvest(mirror)
            assert result["files"] == 1 and result["skipped"] == 4
            files = _files(mirror)
            assert files["good.flac"]["status"] == "pending"
            assert files["live.shn"] == {
                "name": "live.shn",
                "status": "refused",
                "reason": "skipped: format 'Shorten' cannot be verified by the licence check",
            }
            assert files["wrong.flac"]["reason"] == (
                "skipped: the name's extension (.flac) contradicts its format (VBR MP3)"
            )
            assert "contradicts its format (Flac)" in files["wrong.mp3"]["reason"]
            assert "no format given" in files["noformat.ogg"]["reason"]
            got = fetch(mirror)
            assert got["fetched"] == 1
            assert harvest(mirror)["skipped"] == 0  # recorded once, not again and again
        downloads = {r.path for r in ia.requests if r.path.startswith("/download/")}
        assert downloads == {"/download/a/good.flac"}
    assert not (data_dir / "quarantine").exists()


def test_private_file_answers_403_and_is_skipped(write_manifest):
    flac = audio_bytes("flac", 9)
    extra = {
        "open.flac": {"data": flac, "format": "Flac"},
        "hidden.flac": {"data": flac, "format": "Flac", "private": "true"},
    }
    with IAServer() as ia:
        make_ia_archive(ia, [{"identifier": "p", "kinds": (), "extra_files": extra}])

        assert requests.get(f"{ia.url}/download/p/hidden.flac", timeout=10).status_code == 403
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            harvest(mirror)
            files = _files(mirror)
            assert files["open.flac"]["status"] == "pending"
            assert files["hidden.flac"]["reason"] == (
                "skipped: private file (the archive answers 403)"
            )


def test_downloads_redirected_to_another_host(write_manifest):
    with IAServer() as ia:
        make_ia_archive(ia, 2, kinds=("flac",))
        ia.data_host = "localhost"  # the API at 127.0.0.1, the bytes at another name
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            harvest(mirror)
            assert fetch(mirror)["fetched"] == 2
        served = [r for r in ia.requests if r.path.startswith("/serve/")]
        assert len(served) == 2


# -- values -------------------------------------------------------------------------------


def test_dates_become_iso_8601_and_impossible_ones_are_dropped():
    assert iso_date("1/01/08") == "2008-01-01"
    assert iso_date("11/26/2008") == "2008-11-26"
    assert iso_date("11/26/2008 01:48:12 AM", with_time=True) == "2008-11-26T01:48:12"
    assert iso_date("11/26/2008 01:48:12 PM", with_time=True) == "2008-11-26T13:48:12"
    assert iso_date("11/26/2008 12:05:00 AM", with_time=True) == "2008-11-26T00:05:00"
    assert iso_date("3/4/75") == "1975-03-04"
    for impossible in ("0000-00-00", "2/30/2008", "13/01/2008", "2008-02-30", "", "unknown"):
        assert iso_date(impossible) is None, impossible
    assert iso_date("2008") == "2008" and iso_date("2008-00-00") == "2008"
    assert iso_date("2008-3") == "2008-03" and iso_date("2008-13") is None
    assert iso_date("2008-01-01 12:00:00") == "2008-01-01"
    assert iso_date("2008-01-01T12:00:00Z", with_time=True) == "2008-01-01T12:00:00"


def test_entities_unescaped_only_where_they_are_entities():
    assert clean_text("Sharper &amp; Clearer") == "Sharper & Clearer"
    assert clean_text("Tom &amp;amp; Jerry") == "Tom & Jerry"  # escaped twice
    assert clean_text("Caf&eacute; &#39;77&#x21;") == "Café '77!"
    assert clean_text("Rhythm &notes") == "Rhythm &notes"  # no ";": text, not an entity
    assert clean_text("  ") is None and clean_text(None) is None


def test_fma_dates_and_entities_are_clean_in_the_catalogue(tmp_path, write_manifest):
    rows = [
        track_row(
            2,
            track_title="Sharper &amp; Clearer",
            artist="Tom &amp; Jerry",
            album_title="Caf&eacute; Sessions",
            track_composer="A &amp; B",
            track_date_recorded="1/01/08",
            track_date_created="11/26/2008 01:48:12 AM",
        ),
        track_row(3, track_date_recorded="2/30/2008", track_date_created="11/26/2008 01:48:12 PM"),
        track_row(5, track_date_recorded="0000-00-00", track_date_created="not a date"),
    ]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    tree = tmp_path / "fma_full"
    write_audio_tree(tree, [2, 3, 5])
    path = write_manifest(f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\naudio_root = "{tree}"\n')
    with open_mirror(path) as mirror:
        harvest(mirror)
        got = {
            r["source_id"]: dict(r)
            for r in mirror.db.execute(
                "SELECT source_id, title, creator, album, date, extra FROM items"
            )
        }
    two = got["000002"]
    assert (two["title"], two["creator"], two["album"]) == (
        "Sharper & Clearer",
        "Tom & Jerry",
        "Café Sessions",
    )
    assert two["date"] == "2008-01-01"
    extra = json.loads(two["extra"])
    assert extra["composer"] == "A & B"
    assert extra["date_created"] == "2008-11-26T01:48:12"
    assert extra["date_recorded"] == "2008-01-01"
    # An impossible recording date is dropped; the creation date stands in.
    assert got["000003"]["date"] == "2008-11-26"
    assert "date_recorded" not in json.loads(got["000003"]["extra"])
    assert got["000005"]["date"] is None


def test_ia_dates_and_entities_are_clean_in_the_catalogue(write_manifest):
    with IAServer() as ia:
        make_ia_archive(
            ia,
            [
                {"identifier": "a", "title": "Live &amp; Loud", "metadata": {"date": "0000-00-00"}},
                {"identifier": "b", "metadata": {"date": "1/01/08"}},
                {"identifier": "c", "metadata": {"date": ["0000-00-00", "2004-05-06"]}},
            ],
            kinds=("mp3",),
        )
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            harvest(mirror)
            got = {
                r[0]: (r[1], r[2])
                for r in mirror.db.execute("SELECT source_id, title, date FROM items")
            }
    assert got["a"] == ("Live & Loud", None)
    assert got["b"][1] == "2008-01-01" and got["c"][1] == "2004-05-06"


def test_licence_titles_with_a_sub_jurisdiction_name_the_port():
    cases = {
        "Attribution-NonCommercial-ShareAlike 2.5 UK: Scotland": (
            "LicenseRef-CC-BY-NC-SA-2.5-SCOTLAND"
        ),
        "Attribution 2.5 UK: Scotland": "LicenseRef-CC-BY-2.5-SCOTLAND",
        "Attribution-NonCommercial-ShareAlike 2.0 UK: England & Wales": "CC-BY-NC-SA-2.0-UK",
        "Attribution-NonCommercial-NoDerivs 2.0 UK: England &amp; Wales": (
            "LicenseRef-CC-BY-NC-ND-2.0-UK"
        ),
        "CC BY 3.0 DE": "CC-BY-3.0-DE",
    }
    for title, expected in cases.items():
        lic = normalise_title(title)
        assert lic is not None and lic.id == expected, title
    verdict = judge_declared(
        None, "Attribution-NonCommercial-ShareAlike 2.5 UK: Scotland", LicenceConfig()
    )
    assert verdict.allowed and verdict.licence_id == "LicenseRef-CC-BY-NC-SA-2.5-SCOTLAND"


# -- search -------------------------------------------------------------------------------


def test_search_finds_file_names_and_file_titles(write_manifest):
    mp3 = audio_bytes("mp3", 3)
    extra = {
        "01 Opening.mp3": {"data": mp3, "format": "VBR MP3"},
        "02.mp3": {"data": audio_bytes("mp3", 4), "format": "VBR MP3", "title": "Sunrise Theme"},
    }
    with IAServer() as ia:
        make_ia_archive(
            ia, [{"identifier": "album-x", "title": "Album X", "kinds": (), "extra_files": extra}]
        )
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            harvest(mirror)
            for words in ("Opening", "01 Opening", "sunrise theme", "Album X"):
                hits = search(mirror, words)["hits"]
                assert [h["source_id"] for h in hits] == ["album-x"], words
            assert search(mirror, "Closing")["total"] == 0


# -- pace ---------------------------------------------------------------------------------


def test_pace_halves_on_429_honours_retry_after_then_grows_back(write_manifest):
    with IAServer(latency=0.03) as ia:
        make_ia_archive(ia, 200, kinds=("mp3",), variety=2)
        # The 41st metadata read is told to slow down, for one second.
        ia.fault("429", path="/metadata/*", times=1, retry_after=1, after=40)
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            result = harvest(mirror, workers=32)  # more than one host may take
        assert result["new"] == 200 and result["failed"] == 0
        pace = result["sources"][0]["pace"]
        assert pace["ceiling"] == 16 and pace["throttled"] == 1 and pace["cuts"] == 1
        assert pace["lowest"] == 8 and pace["waited_s"] >= 1.0
        meta = [r for r in ia.requests if r.path.startswith("/metadata/")]
        assert len(meta) == 201 and max(r.in_flight for r in meta) <= 16
        assert max(r.in_flight for r in meta[:40]) > 8  # more than half the ceiling
        paths = [r.path for r in meta]
        told = [p for p in set(paths) if paths.count(p) == 2]
        assert len(told) == 1  # the throttled read, asked again
        first = paths.index(told[0])
        # Nothing is sent during the pause, so the first read after it finds the archive
        # idle; from there at most half the ceiling, until 8 reads in a row went through.
        after = next(i for i in range(first + 1, len(meta)) if meta[i].in_flight == 1)
        assert all(r.in_flight <= 8 for r in meta[after : after + 16])
        assert max(r.in_flight for r in meta[after:]) > 8  # grown back


def test_pace_without_retry_after_backs_off_and_503_counts_too(write_manifest, monkeypatch):
    from ccmirror.sources import ia as ia_source

    monkeypatch.setattr(ia_source, "BACKOFF_FACTOR", 0.01)
    with IAServer() as ia:
        make_ia_archive(ia, 6, kinds=("mp3",))
        ia.fault("503", path="/metadata/item-002", times=2, retry_after=None)
        ia.fault("429", path="/metadata/item-004", times=None, retry_after=0)
        with open_mirror(ia_manifest(write_manifest, ia)) as mirror:
            result = harvest(mirror, workers=4)
        assert result["new"] == 5 and result["failed"] == 1
        assert result["sources"][0]["pace"]["throttled"] == 2 + ia_source.MAX_RETRIES + 1
        paths = [r.path for r in ia.requests]
        assert paths.count("/metadata/item-002") == 3
        assert paths.count("/metadata/item-004") == ia_source.MAX_RETRIES + 1
