"""The FMA dataset source: harvest from the dataset's real layout (and fetch, end to end)."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from ccmirror.errors import SourceUnreachable, UsageError
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from ccmirror.sample.audio import write_audio
from ccmirror.sources.fma import harvest_source
from fmahelpers import (
    BY_4,
    BY_NC_ND_3_US,
    CC0,
    COLUMNS,
    COMMON_LAW,
    FMA_LIMITED,
    SAMPLING_1,
    FileServer,
    csv_text,
    track_row,
    write_audio_tree,
    write_audio_zip,
    write_checksums,
    write_metadata_zip,
    write_raw_tracks_csv,
)

QUOTED_TITLE = 'Intro, "live"\nat WFMU'


def _rows() -> list:
    return [
        track_row(2, track_title=QUOTED_TITLE, artist="AWOL", track_copyright_c="2008 AWOL"),
        track_row(3, licence=BY_4),
        track_row(5, licence=FMA_LIMITED),
        track_row(10, licence=COMMON_LAW),
        track_row(20, licence=SAMPLING_1),
        track_row(134, licence=("Some Licence", "http://example.com/licence")),
        track_row(1001, licence=CC0),
        track_row(2002, licence=BY_NC_ND_3_US),  # no audio file in the tree
    ]


@pytest.fixture
def dataset(tmp_path: Path) -> dict:
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows())
    tree = tmp_path / "fma_full"
    paths = write_audio_tree(tree, [2, 3, 5, 10, 20, 134, 1001])
    return {"meta": meta, "tree": tree, "paths": paths}


def _mirror(write_manifest, body: str):
    return open_mirror(write_manifest(body))


def _fma(meta: Path | str, **keys: str) -> str:
    lines = ["[[source]]", 'kind = "fma"', f'metadata = "{meta}"']
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _items(mirror) -> dict[str, dict]:
    rows = mirror.db.execute("SELECT * FROM items WHERE source = 'fma'").fetchall()
    return {r["source_id"]: dict(r) for r in rows}


def _files(mirror) -> dict[str, dict]:
    rows = mirror.db.execute(
        "SELECT i.source_id, f.* FROM files f JOIN items i ON i.id = f.item_id"
    ).fetchall()
    return {r["source_id"]: dict(r) for r in rows}


def test_zip_metadata_and_tree_audio(dataset, write_manifest):
    # The real layout: bzip2 member under fma_metadata/, read straight from the zip.
    with zipfile.ZipFile(dataset["meta"]) as zf:
        info = zf.getinfo("fma_metadata/raw_tracks.csv")
        assert info.compress_type == zipfile.ZIP_BZIP2
    with _mirror(write_manifest, _fma(dataset["meta"], audio_root=str(dataset["tree"]))) as m:
        result = harvest(m)
        items, files = _items(m), _files(m)

    assert result["found"] == 8 and result["new"] == 8 and result["malformed"] == 0
    assert result["failed"] == 0
    assert set(items) == {"000002", "000003", "000005", "000010", "000020", "000134"} | {
        "001001",
        "002002",
    }
    two = items["000002"]
    assert two["title"] == QUOTED_TITLE  # quoted comma, quotes and newline survive
    assert two["creator"] == "AWOL" and two["album"] == "Album 2"
    assert two["popularity"] == 200 and two["status"] == "ok" and two["reason"] is None
    assert two["source_url"].endswith("/Track_2")
    assert two["licence_url"] == "http://creativecommons.org/licenses/by-nc-sa/3.0/"
    assert two["declared_licence_id"] == "CC-BY-NC-SA-3.0"
    assert two["date"] == "2008-11-26"
    extra = json.loads(two["extra"])
    assert extra["favorites"] == 2 and extra["interest"] == 20
    assert extra["artist_url"] == "http://freemusicarchive.org/music/AWOL/"
    assert extra["album_url"].endswith("/Album_2/") and extra["copyright_c"] == "2008 AWOL"
    assert extra["duration"] == 168 and extra["date_created"] == "2008-11-26T01:48:12"
    assert items["001001"]["declared_licence_id"] == "CC0-1.0"

    # Refused at harvest with the gate's reason, never fetched.
    for sid in ("000005", "000010", "000020", "000134"):
        assert items[sid]["status"] == "refused", sid
        assert items[sid]["reason"], sid
        assert files[sid]["status"] == "refused"
    assert sum(result["refused"].values()) == 4 == result["refused_items"]
    # No audio in the tree: the track is recorded, empty, with the reason; no file row.
    assert items["002002"]["status"] == "empty" and "audio_root" in items["002002"]["reason"]
    assert "002002" not in files and result["empty"] == 1

    f = files["000002"]
    src = dataset["paths"][2]
    assert f["name"] == "000002.mp3" and f["status"] == "pending"
    assert f["url"] == src.resolve().as_uri()
    assert f["size"] == src.stat().st_size
    assert f["sha1"] == hashlib.sha1(src.read_bytes()).hexdigest()
    assert f["store_path"] is None  # set by fetch, once the bytes are in the store
    assert result["files"] == 3 and "ok" not in result  # "ok" is the sync stage flag
    assert result["bytes"] == sum(dataset["paths"][t].stat().st_size for t in (2, 3, 1001))


def test_refusal_reasons_name_the_licence(dataset, write_manifest):
    with _mirror(write_manifest, _fma(dataset["meta"], audio_root=str(dataset["tree"]))) as m:
        harvest(m)
        items = _items(m)
    # Refused for different reasons: a licence never allowed vs one not recognised.
    assert items["000020"]["reason"] != items["000134"]["reason"]
    assert items["000020"]["declared_licence_id"] is None or "SAMPLING" in (
        items["000020"]["declared_licence_id"].upper()
    )
    assert items["000003"]["reason"] is None


def test_malformed_rows_reported_with_line_numbers_and_skipped(tmp_path, write_manifest, caplog):
    good = track_row(7, track_information="line one\nline two\nline three")
    short = [str(8), "only", "three"]
    bad_id = track_row(9)
    bad_id["track_id"] = "abc"
    bad_listens = track_row(11)
    bad_listens["track_listens"] = "many"
    text = csv_text([good, short, bad_id, track_row(12), bad_listens])
    # Text after a closing quote: unparseable in strict CSV.
    text += '13,1,"Album "x,' + ",".join([""] * (len(COLUMNS) - 3)) + "\r\n"
    text += csv_text([track_row(14), track_row(7, track_title="duplicate")]).split("\r\n", 1)[1]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", [], text=text)
    tree = tmp_path / "tree"
    write_audio_tree(tree, [7, 12, 14])
    with (
        caplog.at_level("WARNING", logger="ccmirror"),
        _mirror(write_manifest, _fma(meta, audio_root=str(tree))) as m,
    ):
        result = harvest(m)
        items = _items(m)
    # Header is line 1; track 7 spans lines 2-4 (quoted newlines), so the short row is line 5.
    lines = [e["line"] for e in result["sources"][0]["malformed_rows"]]
    assert lines == [5, 6, 8, 9]
    assert result["malformed"] == 4 and result["duplicates"] == 1
    assert set(items) == {"000007", "000012", "000014"}
    assert items["000007"]["title"] == "Track 7"  # the first row of a repeated id wins
    assert "line 5" in caplog.text and "line 9" in caplog.text


def test_incremental_unchanged_track_is_not_rewritten(dataset, tmp_path, write_manifest):
    body = _fma(dataset["meta"], audio_root=str(dataset["tree"]))
    with _mirror(write_manifest, body) as m:
        harvest(m)
        before = _items(m)
        again = harvest(m)
        assert again["new"] == 0 and again["updated"] == 0 and again["unchanged"] == 8
        assert _items(m) == before  # not even harvested_at moved

    rows = _rows()
    rows[1] = track_row(3, licence=BY_4, track_listens=99999)
    write_metadata_zip(dataset["meta"], rows)
    with _mirror(write_manifest, body) as m:
        third = harvest(m)
        after = _items(m)
    assert third["updated"] == 1 and third["unchanged"] == 7
    assert after["000003"]["popularity"] == 99999
    assert after["000003"]["first_seen"] == before["000003"]["first_seen"]
    assert after["000002"] == before["000002"]


def test_fetched_file_kept_and_changed_audio_refetched(dataset, write_manifest):
    body = _fma(dataset["meta"], audio_root=str(dataset["tree"]))
    with _mirror(write_manifest, body) as m:
        harvest(m)
        m.db.execute("UPDATE files SET status = 'fetched', verdict = 'declared'")
    # Track 3's audio changes (new bytes, new checksum line); the others stay.
    write_audio_tree(dataset["tree"], [3], seconds=0.4)
    write_checksums(dataset["tree"])
    with _mirror(write_manifest, body) as m:
        result = harvest(m)
        files = _files(m)
    assert result["updated"] == 1
    assert files["000003"]["status"] == "pending" and files["000003"]["verdict"] is None
    assert files["000002"]["status"] == "fetched" and files["000002"]["verdict"] == "declared"


def test_withdrawn_track_stays_withdrawn(dataset, write_manifest):
    body = _fma(dataset["meta"], audio_root=str(dataset["tree"]))
    with _mirror(write_manifest, body) as m:
        harvest(m)
        m.db.execute(
            "UPDATE items SET status = 'withdrawn', reason = 'takedown', popularity = 1"
            " WHERE source_id = '000002'"
        )
        harvest(m)
        two = _items(m)["000002"]
    assert two["status"] == "withdrawn" and two["reason"] == "takedown"
    assert two["popularity"] == 200  # the metadata still refreshes


def test_policy_change_refuses_then_releases_files(dataset, write_manifest):
    tree = str(dataset["tree"])
    deny = _fma(dataset["meta"], audio_root=tree) + '\n[licence]\ndeny = ["CC-BY-4.0"]\n'
    with _mirror(write_manifest, deny) as m:
        harvest(m)
        assert _items(m)["000003"]["status"] == "refused"
        assert _files(m)["000003"]["status"] == "refused"
    with _mirror(write_manifest, _fma(dataset["meta"], audio_root=tree)) as m:
        result = harvest(m)
        assert _items(m)["000003"]["status"] == "ok"
        assert _files(m)["000003"]["status"] == "pending"
    assert result["updated"] == 1


def test_zip_audio_members_and_checksums(dataset, tmp_path, write_manifest):
    # A space in the archive's folder name shows the percent-quoting.
    audio_zip = write_audio_zip(tmp_path / "fma full" / "fma_full.zip", dataset["tree"])
    with _mirror(write_manifest, _fma(dataset["meta"], audio_root=str(audio_zip))) as m:
        result = harvest(m)
        files = _files(m)
    assert result["sources"][0]["audio"] == "zip" and result["checksums"] == 7
    f = files["001001"]
    scheme, rest = f["url"].split("://", 1)
    path, member = rest.split("#", 1)
    assert scheme == "zip" and urllib.parse.unquote(path) == str(audio_zip.resolve())
    assert "%20" in path
    assert urllib.parse.unquote(member) == "fma_full/001/001001.mp3"
    with zipfile.ZipFile(audio_zip) as zf:
        data = zf.read("fma_full/001/001001.mp3")
        assert f["size"] == zf.getinfo("fma_full/001/001001.mp3").file_size == len(data)
    assert f["sha1"] == hashlib.sha1(data).hexdigest()


def test_tree_without_checksums_leaves_sha1_empty(tmp_path, write_manifest):
    meta = write_raw_tracks_csv(tmp_path / "raw_tracks.csv", [track_row(2)])
    tree = tmp_path / "fma_large"
    write_audio_tree(tree, [2], checksums=False)
    # Pointing at the parent of fma_large/ works too.
    with _mirror(write_manifest, _fma(meta, audio_root=str(tmp_path))) as m:
        harvest(m)
        f = _files(m)["000002"]
    assert f["sha1"] is None and f["size"] == (tree / "000/000002.mp3").stat().st_size


def test_http_metadata_and_audio_base_url(tmp_path, write_manifest):
    host = tmp_path / "host"
    write_raw_tracks_csv(host / "fma_metadata" / "raw_tracks.csv", [track_row(2), track_row(3)])
    with FileServer(host) as server:
        base = server.url + "storage/"
        meta_url = server.url + "fma_metadata/raw_tracks.csv"
        body = _fma(meta_url, audio_base_url=base)
        with _mirror(write_manifest, body) as m:
            first = harvest(m)
            files = _files(m)
            # Downloaded into the data dir, atomically; no .part left.
            local = m.data_dir / "sources" / "fma" / "raw_tracks.csv"
            assert local.is_file() and not list(local.parent.glob("*.part"))
            second = harvest(m)
    assert first["new"] == 2 and second["unchanged"] == 2
    assert files["000002"]["url"] == base + "music/Artist_2/Album_2/Track_2.mp3"
    assert files["000002"]["size"] is None and files["000002"]["sha1"] is None
    assert files["000002"]["name"] == "000002.mp3"
    assert server.requests.count("/fma_metadata/raw_tracks.csv") == 2  # the second is a 304
    assert not any(r.startswith("/storage/") for r in server.requests)  # harvest only


def test_local_tree_first_then_http_fallback(dataset, write_manifest):
    body = _fma(
        dataset["meta"], audio_root=str(dataset["tree"]), audio_base_url="http://127.0.0.1:9/"
    )
    with _mirror(write_manifest, body) as m:
        harvest(m)
        files, items = _files(m), _items(m)
    assert files["000002"]["url"].startswith("file:///")
    assert files["002002"]["url"].startswith("http://127.0.0.1:9/music/")
    assert items["002002"]["status"] == "ok"


def test_unsafe_track_file_is_not_followed(tmp_path, write_manifest):
    meta = write_raw_tracks_csv(
        tmp_path / "raw_tracks.csv",
        [track_row(2, track_file="../../etc/passwd"), track_row(3, track_file="")],
    )
    with _mirror(write_manifest, _fma(meta, audio_base_url="http://127.0.0.1:9/a/")) as m:
        harvest(m)
        items, files = _items(m), _files(m)
    assert items["000002"]["status"] == "empty" and "unsafe" in items["000002"]["reason"]
    assert items["000003"]["status"] == "empty" and not files


def test_max_items_takes_the_most_listened(dataset, write_manifest):
    body = _fma(dataset["meta"], audio_root=str(dataset["tree"]), max_items=2)
    with _mirror(write_manifest, body) as m:
        result = harvest(m)
        items = _items(m)
    assert set(items) == {"002002", "001001"} and result["found"] == 2


def test_unreachable_metadata_url_is_exit_4(tmp_path, write_manifest):
    with FileServer(tmp_path) as server:
        body = _fma(server.url + "missing/fma_metadata.zip", audio_base_url=server.url)
        with _mirror(write_manifest, body) as m, pytest.raises(SourceUnreachable) as e:
            harvest_source(m, m.manifest.sources[0])
    assert e.value.exit_code == 4 and "404" in str(e.value)


def test_not_raw_tracks_is_a_clear_error(tmp_path, write_manifest):
    meta = tmp_path / "genres.csv"
    meta.write_text("genre_id,#tracks,parent,title,top_level\n21,1,0,Hip-Hop,21\n")
    with _mirror(write_manifest, _fma(meta, audio_base_url="http://127.0.0.1:9/")) as m:
        with pytest.raises(UsageError, match="not raw_tracks.csv"):
            harvest(m)
        assert _items(m) == {}
    empty_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("fma_metadata/genres.csv", "genre_id\n")
    body = _fma(empty_zip, audio_base_url="http://127.0.0.1:9/")
    with _mirror(write_manifest, body) as m, pytest.raises(UsageError, match="no raw_tracks"):
        harvest(m)


# --- harvest + fetch through the CLI, as an operator runs them ---------------------------


def _run(cli, *args: str) -> tuple[int, dict]:
    p = cli(*args, "--json")
    assert p.stdout.strip(), p.stderr
    return p.returncode, json.loads(p.stdout)


def _store(data_dir: Path) -> dict[str, bytes]:
    root = data_dir / "store"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_cli_tree_harvest_then_fetch(dataset, data_dir, write_manifest, cli):
    manifest = write_manifest(_fma(dataset["meta"], audio_root=str(dataset["tree"])))
    code, h = _run(cli, "harvest", str(manifest))
    assert code == 0 and h["found"] == 8 and h["files"] == 3 and h["refused_items"] == 4
    for key in ("new", "updated", "unchanged", "dark", "empty", "missing", "failed", "refused"):
        assert key in h, key  # the IA source's summary keys
    code, f = _run(cli, "fetch", str(manifest))
    assert code == 0 and f["fetched"] == 3 and f["failed"] == 0
    store = _store(data_dir)
    assert set(store) == {"fma/000002/000002.mp3", "fma/000003/000003.mp3", "fma/001001/001001.mp3"}
    assert store["fma/001001/001001.mp3"] == dataset["paths"][1001].read_bytes()
    # Again: nothing changed, nothing fetched.
    code, h2 = _run(cli, "harvest", str(manifest))
    assert code == 0 and h2["unchanged"] == 8 and h2["new"] == h2["updated"] == h2["files"] == 0
    code, f2 = _run(cli, "fetch", str(manifest))
    assert code == 0 and f2["fetched"] == 0
    with open_mirror(manifest) as m:
        paths = {r[0] for r in m.db.execute("SELECT store_path FROM files WHERE status='fetched'")}
    assert "store/fma/000002/000002.mp3" in paths


def test_cli_checksum_mismatch_never_reaches_the_store(tmp_path, data_dir, write_manifest, cli):
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", [track_row(2), track_row(3)])
    tree = tmp_path / "fma_full"
    write_audio_tree(tree, [2, 3], wrong_sums=[3])
    manifest = write_manifest(_fma(meta, audio_root=str(tree)))
    assert _run(cli, "harvest", str(manifest))[0] == 0
    code, f = _run(cli, "fetch", str(manifest))
    assert code == 1 and f["fetched"] == 1 and f["failed"] == 1
    assert [x["source_id"] for x in f["failures"]] == ["000003"]
    assert "sha1" in f["failures"][0]["reason"]
    assert set(_store(data_dir)) == {"fma/000002/000002.mp3"}  # no file, no .part
    assert list((data_dir / "quarantine").rglob("000003.mp3.reason.json"))


def test_cli_zip_audio_fetch_and_mismatch(tmp_path, data_dir, write_manifest, cli):
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", [track_row(2), track_row(1001)])
    tree = tmp_path / "tree"
    paths = write_audio_tree(tree, [2, 1001], wrong_sums=[1001])
    audio_zip = write_audio_zip(tmp_path / "fma_full.zip", tree)
    manifest = write_manifest(_fma(meta, audio_root=str(audio_zip)))
    assert _run(cli, "harvest", str(manifest))[0] == 0
    code, f = _run(cli, "fetch", str(manifest))
    assert code == 1 and f["fetched"] == 1 and f["failed"] == 1
    assert _store(data_dir) == {"fma/000002/000002.mp3": paths[2].read_bytes()}


def test_cli_missing_audio_file_fails_the_fetch(dataset, data_dir, write_manifest, cli):
    manifest = write_manifest(_fma(dataset["meta"], audio_root=str(dataset["tree"])))
    assert _run(cli, "harvest", str(manifest))[0] == 0
    dataset["paths"][3].unlink()  # gone between harvest and fetch
    code, f = _run(cli, "fetch", str(manifest))
    assert code == 1 and f["failed"] == 1 and f["fetched"] == 2
    assert f["failures"][0]["source_id"] == "000003"
    assert "fma/000003/000003.mp3" not in _store(data_dir)


def test_cli_http_audio_base_url(tmp_path, data_dir, write_manifest, cli):
    host = tmp_path / "host"
    rows = [track_row(2), track_row(3), track_row(4)]
    audio = {
        r["track_id"]: write_audio(host / "storage" / r["track_file"], "mp3", seed=n)
        for n, r in enumerate(rows[:2])
    }
    write_metadata_zip(host / "fma_metadata.zip", rows)
    with FileServer(host) as server:
        manifest = write_manifest(
            _fma(server.url + "fma_metadata.zip", audio_base_url=server.url + "storage/")
        )
        code, h = _run(cli, "harvest", str(manifest))
        assert code == 0 and h["found"] == 3 and h["files"] == 3
        code, f = _run(cli, "fetch", str(manifest))
    # Track 4's file is not on the host: HTTP 404, exit 1, the others are in the store.
    assert code == 1 and f["fetched"] == 2 and f["failed"] == 1
    assert "404" in f["failures"][0]["reason"]
    store = _store(data_dir)
    assert store["fma/000002/000002.mp3"] == audio["2"].read_bytes()
    assert store["fma/000003/000003.mp3"] == audio["3"].read_bytes()
    assert "/storage/music/Artist_2/Album_2/Track_2.mp3" in server.requests


def test_cli_unreachable_metadata_is_exit_4(tmp_path, write_manifest, cli):
    with FileServer(tmp_path) as server:
        url = server.url
    # The server is gone: nothing listens on its port any more.
    manifest = write_manifest(_fma(url + "fma_metadata.zip", audio_base_url=url))
    p = cli("harvest", str(manifest))
    assert p.returncode == 4
    assert p.stderr.strip().startswith("ccmirror: cannot download FMA metadata")
    assert "Traceback" not in p.stderr


def test_title_only_licence_goes_through_the_gate(tmp_path, write_manifest):
    by_nc_sa = "Attribution-NonCommercial-ShareAlike 3.0 International"
    meta = write_raw_tracks_csv(
        tmp_path / "raw_tracks.csv",
        [
            track_row(2, licence=(by_nc_sa, "")),
            track_row(3, licence=("FMA-Limited: Download Only", "")),
            track_row(4, licence=("", "")),
        ],
    )
    with _mirror(write_manifest, _fma(meta, audio_base_url="http://127.0.0.1:9/")) as m:
        result = harvest(m)
        items = _items(m)
    assert items["000002"]["status"] == "ok"
    assert items["000002"]["declared_licence_id"] == "CC-BY-NC-SA-3.0"
    assert items["000002"]["licence_title"] == by_nc_sa and items["000002"]["licence_url"] is None
    assert items["000003"]["status"] == "refused" and items["000004"]["status"] == "refused"
    assert items["000003"]["reason"] != items["000004"]["reason"]  # never allowed vs none
    assert result["refused_items"] == 2


def test_shipped_manifest_loads():
    from ccmirror.manifest import FMASource, load_manifest

    m = load_manifest(Path(__file__).parent.parent / "manifests" / "fma.toml", data_dir="/tmp/x")
    (source,) = m.sources
    assert isinstance(source, FMASource) and m.name == "fma"
    assert source.metadata.endswith("/fma_metadata.zip") and source.audio_base_url


def test_audio_gone_from_source_keeps_the_fetched_copy(dataset, data_dir, write_manifest):
    from ccmirror.fetch import fetch

    body = _fma(dataset["meta"], audio_root=str(dataset["tree"]))
    with _mirror(write_manifest, body) as m:
        harvest(m)
        assert fetch(m)["fetched"] == 3
    dataset["paths"][2].unlink()  # the source loses a file we hold
    dataset["paths"][3].unlink()
    with _mirror(write_manifest, body) as m:
        m.db.execute("UPDATE files SET status = 'pending' WHERE name = '000003.mp3'")
        result = harvest(m)
        items, files = _items(m), _files(m)
    assert items["000002"]["status"] == "ok" and files["000002"]["status"] == "fetched"
    assert (data_dir / files["000002"]["store_path"]).is_file()
    # A file not yet in the store is gone for good: the track has no audio.
    assert items["000003"]["status"] == "empty" and "000003" not in files
    assert result["updated"] == 1 and result["unchanged"] == 7


def test_sizes_before_fetch_are_estimated_and_plan_says_so(tmp_path, write_manifest):
    """With audio from a base URL nothing has a size yet: plan and tiers count bit rate x
    duration (256 kbit/s x 168 s = 5,376,000 bytes a track) as estimated bytes; a track
    without a bit rate has no estimate; a real size, once known, replaces the estimate."""
    from ccmirror.tiers import plan, tier_table

    rows = [track_row(n, licence=CC0) for n in (2, 3, 4)]
    rows.append(track_row(5, licence=CC0, track_bit_rate=""))
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    with _mirror(write_manifest, _fma(meta, audio_base_url="http://127.0.0.1:9/")) as m:
        harvest(m)
        est = 256000 * 168 // 8
        assert sorted(f["est_size"] or 0 for f in _files(m).values()) == [0, est, est, est]
        table = tier_table(m)
        assert table["bytes"] == table["estimated_bytes"] == 3 * est
        assert table["unsized_files"] == 1
        r = plan(m, 2 * est)
        assert r["total_bytes"] == 3 * est and r["cut_tier"] is not None
        assert r["bytes"] <= 2 * est and r["estimated_bytes"] == r["bytes"] > 0
        assert "estimates" in r["note"]
        m.db.execute("UPDATE files SET size = 1000 WHERE name = '000004.mp3'")
        after = tier_table(m)
        assert after["bytes"] == 2 * est + 1000 and after["estimated_bytes"] == 2 * est
        # Harvest again: the estimate stays beside the real size; nothing is rewritten.
        again = harvest(m)
        assert again["unchanged"] == 4 and again["updated"] == 0
        assert tier_table(m)["bytes"] == 2 * est + 1000


def test_batches_and_the_fingerprint_voided_by_other_writes(tmp_path, write_manifest, monkeypatch):
    """Rows go in batches (here of 3, over 8 rows): every track lands once; a second
    harvest writes nothing; a write to an item by anything but the harvest (a takedown,
    a hand edit) voids its fingerprint, so the next harvest plans that row again."""
    import ccmirror.sources.fma as fma

    monkeypatch.setattr(fma, "BATCH", 3)
    rows = [track_row(n, licence=CC0) for n in range(2, 10)]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    with _mirror(write_manifest, _fma(meta, audio_base_url="http://127.0.0.1:9/")) as m:
        first = harvest(m)
        assert first["new"] == 8 and len(_items(m)) == 8 and len(_files(m)) == 8
        assert all(i["fingerprint"] for i in _items(m).values())
        again = harvest(m)
        assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 8)
        m.db.execute("UPDATE items SET title = 'edited' WHERE source_id = '000004'")
        assert _items(m)["000004"]["fingerprint"] is None
        third = harvest(m)
        assert (third["updated"], third["unchanged"]) == (1, 7)
        assert _items(m)["000004"]["title"] == "Track 4"
