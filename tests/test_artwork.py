"""Cover art (issue 18): an IA item's original images go into its pack beside its audio."""

from __future__ import annotations

import csv
import io
import json
import shutil

import libtorrent as lt

from ccmirror.catalogue.artwork import R_EMBEDDED, R_OFF
from ccmirror.fetch import fetch
from ccmirror.follow.verify import verify_pack
from ccmirror.harvest import harvest
from ccmirror.licence.artwork import R_ARTWORK
from ccmirror.licence.check import check
from ccmirror.manifest import LicenceConfig
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.packs.rebuild import rebuild_torrent
from ccmirror.publish.run import publish
from ccmirror.tiers import plan, tier_table
from ccmirror.withdraw import withdraw
from iafake import IAServer
from iahelpers import CC_BY, audio_bytes, ia_cover_files, ia_manifest, png_bytes
from sitehelpers import broken_links, page_links

META = {
    "title": "Album C",
    "creator": "Cover Artist",
    "collection": "netlabels",
    "licenseurl": CC_BY,
}


def _add(ia: IAServer, ident: str = "album-c", extra: dict | None = None, **kw) -> bytes:
    """An item of two real audio files and a cover (with IA's generated images beside it);
    returns the cover's bytes."""
    cover = png_bytes(24, 24, 5)
    files = {
        "01.flac": audio_bytes("flac", 11, 0.3),
        "02.mp3": audio_bytes("mp3", 12, 0.3),
        **ia_cover_files("cover.png", cover),
        **(extra or {}),
    }
    ia.add_item(ident, META, files, downloads=kw.pop("downloads", 100), **kw)
    return cover


def _files(m) -> dict[str, dict]:
    return {r["name"]: dict(r) for r in m.db.execute("SELECT * FROM files ORDER BY name")}


def _manifest(m) -> tuple[list[str], list[dict[str, str]], str]:
    (path,) = sorted(m.packs_dir.glob("*/MANIFEST.csv"))
    reader = csv.DictReader(io.StringIO(path.read_text("utf-8")))
    rows = list(reader)
    return list(reader.fieldnames or []), rows, path.parent.name


def test_a_cover_is_packed_beside_the_audio_listed_credited_and_shown(write_manifest):
    with IAServer() as ia:
        cover = _add(ia)
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            got = harvest(m)
            files = _files(m)
            # The uploaded original only: IA's Item Tile, JPEG Thumb and derivative PNG not.
            assert files["cover.png"]["kind"] == "artwork"
            assert files["cover.png"]["status"] == "pending"
            assert {"__ia_thumb.jpg", "cover_thumb.jpg", "spectrogram.png"}.isdisjoint(files)
            assert files["01.flac"]["kind"] == "audio"
            assert got["artwork"]["files"] == 1 and got["artwork"]["bytes"] == len(cover)
            fetched = fetch(m)
            assert fetched["fetched"] == 3
            check(m)
            row = _files(m)["cover.png"]
            assert row["verdict"] == "declared" and row["verdict_reason"] == R_ARTWORK
            assert row["licence_id"] == "CC-BY-4.0"
            result = pack(m, seal_partial=True)
            assert [s["files"] for s in result["sealed"]] == [3]
            header, rows, name = _manifest(m)
            publish(m)
            page = m.public_dir / "packs" / f"{name}.html"
            links = page_links(page).hrefs
            broken = broken_links(m.public_dir)
            attribution = (m.packs_dir / name / "ATTRIBUTION.md").read_text("utf-8")
            torrent = lt.torrent_info(
                lt.bdecode((m.data_dir / "torrents" / f"{name}.torrent").read_bytes())
            )
            # A follower's own checks accept the cover (a PNG, the claimed licence)...
            follower = verify_pack(m.packs_dir / name, torrent, LicenceConfig())
            # ...and refuse audio a primary would pass off as artwork to skip the tag check.
            csv_path = m.packs_dir / name / "MANIFEST.csv"
            text = csv_path.read_text("utf-8")
            csv_path.write_text(text.replace(",audio\n", ",artwork\n", 1), "utf-8")
            passed_off = verify_pack(m.packs_dir / name, torrent, LicenceConfig())
            csv_path.write_text(text, "utf-8")
            packed = (m.packs_dir / name / "ia" / "album-c" / "cover.png").read_bytes()
    assert packed == cover
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == {"ia/album-c/01.flac", "ia/album-c/02.mp3", "ia/album-c/cover.png"}
    art = by_path["ia/album-c/cover.png"]
    assert header[-1] == "kind" and art["kind"] == "artwork"
    assert by_path["ia/album-c/01.flac"]["kind"] == "audio"
    assert art["licence_id"] == "CC-BY-4.0" and art["verdict"] == "declared"
    assert art["size"] == str(len(cover)) and art["md5"] and art["sha256"]
    assert "## ia/album-c/cover.png" in attribution
    section = attribution.split("## ia/album-c/cover.png", 1)[1].split("## ", 1)[0]
    assert "Cover Artist" in section and "Attribution 4.0" in section
    assert "Artwork: an image published with the item" in section
    # The page links the cover's copy inside public/ (relative); the link check accepts it.
    covers = [h for h in links if h.endswith("cover.png")]
    assert covers and all(not h.startswith(("/", "http")) for h in covers)
    assert broken == []
    assert follower == []
    assert len(passed_off) == 1 and "not named as a JPEG or PNG" in passed_off[0]


def test_thumbnails_and_derivative_images_are_never_selected():
    from ccmirror.sources.ia.select import choose_artwork

    listed = [
        {"name": "cover.jpg", "source": "original", "format": "JPEG"},
        {"name": "back.jpeg", "source": "original", "format": "JPEG"},
        {"name": "inlay.png", "source": "original", "format": "PNG"},
        {"name": "__ia_thumb.jpg", "source": "original", "format": "Item Tile"},
        {"name": "__ia_thumb.jpg", "source": "original", "format": "JPEG Thumb"},
        {"name": "cover_thumb.jpg", "source": "derivative", "format": "JPEG Thumb"},
        {"name": "01.png", "source": "derivative", "format": "PNG"},  # a spectrogram
        {"name": "logo.jpg", "source": "original", "format": "Collection Header"},
        {"name": "x_itemimage.jpg", "source": "original", "format": "JPEG"},
        {"name": "fake.png", "source": "original", "format": "JPEG"},  # contradicts itself
        {"name": "hidden.jpg", "source": "original", "format": "JPEG", "private": "true"},
        {"name": "meta.xml", "source": "metadata", "format": "Metadata"},
    ]
    assert [f["name"] for f in choose_artwork(listed)] == ["cover.jpg", "back.jpeg", "inlay.png"]


def test_an_image_whose_bytes_do_not_match_goes_to_quarantine(write_manifest):
    with IAServer() as ia:
        bad = {"data": png_bytes(20, 20, 8), "format": "PNG", "md5": "0" * 32}
        _add(ia, extra={"back.png": bad})
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            result = fetch(m)
            row = _files(m)["back.png"]
            quarantined = sorted(p.name for p in (m.data_dir / "quarantine").rglob("*"))
            stored = (m.data_dir / "store" / "ia" / "album-c" / "back.png").exists()
            check(m)
            pack(m, seal_partial=True)
            _, rows, _ = _manifest(m)
    assert result["failed"] == 1 and row["status"] == "failed" and "md5" in row["reason"]
    assert "back.png" in quarantined and "back.png.reason.json" in quarantined
    assert not stored
    assert "ia/album-c/back.png" not in {r["path"] for r in rows}
    assert "ia/album-c/cover.png" in {r["path"] for r in rows}


def test_an_image_name_that_would_escape_is_refused(write_manifest, data_dir):
    with IAServer() as ia:
        _add(ia, extra={"../escape.png": {"data": png_bytes(), "format": "PNG"}})
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            row = _files(m)["../escape.png"]
            fetch(m)
            row_after = _files(m)["../escape.png"]
    assert row["kind"] == "artwork" and row["status"] == "refused"
    assert row["reason"].startswith("unsafe name")
    assert row_after["status"] == "refused"
    assert not (data_dir / "store" / "ia" / "escape.png").exists()
    assert not list(data_dir.parent.glob("escape.png"))


def test_max_artwork_size_skips_the_larger_images_with_a_reason(write_manifest, cli):
    big = {"data": png_bytes(64, 64, 3) + b"\0" * 3000, "format": "PNG"}
    with IAServer() as ia:
        cover = _add(ia, extra={"poster.png": big})
        path = ia_manifest(write_manifest, ia, extra='[torrents]\nmax_artwork_size = "2KiB"\n')
        out = cli("--json", "harvest", str(path))
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        fetched = json.loads(cli("--json", "fetch", str(path)).stdout)
        with open_mirror(path) as m:
            files = _files(m)
    why = "skipped: artwork past max_artwork_size (2048 bytes per item)"
    assert files["poster.png"]["status"] == "refused" and files["poster.png"]["reason"] == why
    assert files["cover.png"]["status"] == "fetched"
    assert got["artwork"]["skipped_reasons"] == {why: 1}
    assert got["artwork"]["bytes"] == len(cover)
    assert fetched["artwork"]["skipped_reasons"] == {why: 1}
    assert fetched["artwork"]["fetched"] == 1


def test_artwork_off_leaves_covers_out_and_on_again_brings_them_back(write_manifest):
    with IAServer() as ia:
        _add(ia)
        path = ia_manifest(write_manifest, ia, extra="[torrents]\nartwork = false\n")
        with open_mirror(path) as m:
            got = harvest(m)
            fetch(m)
            check(m)
            pack(m, seal_partial=True)
            cover = _files(m)["cover.png"]
            _, rows, _ = _manifest(m)
        assert cover["status"] == "refused" and cover["reason"] == R_OFF
        assert got["artwork"]["skipped_reasons"] == {R_OFF: 1}
        assert {r["path"] for r in rows} == {"ia/album-c/01.flac", "ia/album-c/02.mp3"}
        # The item is unchanged at the source: turning artwork on still brings its cover.
        path = ia_manifest(write_manifest, ia)
        with open_mirror(path) as m:
            assert harvest(m)["unchanged"] == 1
            assert _files(m)["cover.png"]["status"] == "pending"


def test_require_embedded_leaves_artwork_out_with_its_reason(write_manifest):
    with IAServer() as ia:
        _add(ia)
        extra = "[licence]\nrequire_embedded = true\n"
        with open_mirror(ia_manifest(write_manifest, ia, extra=extra)) as m:
            harvest(m)
            row = _files(m)["cover.png"]
            assert fetch(m)["fetched"] == 2
    assert row["status"] == "refused" and row["reason"] == R_EMBEDDED


def test_plan_and_tiers_count_artwork_bytes(write_manifest):
    with IAServer() as ia:
        cover = _add(ia)
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            audio = sum(
                r["size"] for r in m.db.execute("SELECT size FROM files WHERE kind = 'audio'")
            )
            table = tier_table(m)
            planned = plan(m, 10**9)
            fetch(m)
            check(m)
            after = tier_table(m)["bytes"]
    assert table["bytes"] == audio + len(cover) == after
    assert planned["bytes"] == audio + len(cover)
    assert sum(t["files"] for t in table["tiers"]) == 3


def test_packs_from_before_keep_their_info_hash_and_covers_go_to_new_packs(write_manifest):
    with IAServer() as ia:
        ia.add_item("album-c", META, {"01.flac": audio_bytes("flac", 11, 0.3)}, downloads=5)
        path = ia_manifest(write_manifest, ia)
        with open_mirror(path) as m:
            harvest(m)
            fetch(m)
            check(m)
            pack(m, seal_partial=True)
            old = m.db.execute("SELECT * FROM packs WHERE is_metadata = 0").fetchone()
            manifest = (m.packs_dir / old["name"] / "MANIFEST.csv").read_bytes()
        # The item gains a cover at the source: read again, its cover goes to a new pack.
        _add(ia, extra={}, updated="2024-01-01T00:00:00Z", downloads=5)
        with open_mirror(path) as m:
            harvest(m)
            fetch(m)
            check(m)
            pack(m, seal_partial=True)
            packs = m.db.execute(
                "SELECT * FROM packs WHERE is_metadata = 0 AND status = 'sealed' ORDER BY seq"
            ).fetchall()
            again = m.db.execute("SELECT * FROM packs WHERE id = ?", (old["id"],)).fetchone()
            assert again["info_hash_v1"] == old["info_hash_v1"] and again["obsolete"] == 0
            for p in packs:  # every pack, with or without artwork, rebuilds byte-identical
                before = {
                    f: (m.packs_dir / p["name"] / f).read_bytes()
                    for f in ("MANIFEST.csv", "ATTRIBUTION.md")
                }
                shutil.rmtree(m.packs_dir / p["name"])
                (m.data_dir / p["torrent_path"]).unlink()
                rebuild_torrent(m, p)  # raises if the info-hash differs
                for f, data in before.items():
                    assert (m.packs_dir / p["name"] / f).read_bytes() == data
            new_paths = {
                r["path"]
                for r in m.db.execute(
                    "SELECT pf.path FROM pack_files pf WHERE pf.pack_id = ?", (packs[-1]["id"],)
                )
            }
    assert (m.packs_dir / old["name"] / "MANIFEST.csv").read_bytes() == manifest
    assert b"kind" not in manifest.split(b"\n", 1)[0]
    assert len(packs) == 2 and "ia/album-c/cover.png" in new_paths


def test_a_compact_tier_packs_the_cover_as_it_is(write_manifest, cli):
    with IAServer() as ia:
        cover = _add(ia)
        extra = '[tiers]\nshares = [1.0]\nquality = ["compact"]\n'
        path = ia_manifest(write_manifest, ia, extra=extra)
        r = cli("--json", "sync", str(path))
        assert r.returncode == 0, r.stderr
        with open_mirror(path) as m:
            row = _files(m)["cover.png"]
            _, rows, name = _manifest(m)
            packed = (m.packs_dir / name / "ia" / "album-c" / "cover.png").read_bytes()
    assert row["compact"] == "original" and row["compact_reason"].startswith("cover art")
    assert packed == cover
    assert any(p.endswith(".opus") for p in {r["path"] for r in rows})


def test_bytes_that_are_not_an_image_are_unreadable_and_quarantined(write_manifest):
    with IAServer() as ia:
        # IA's checksums match these bytes: only the check can tell they are no image.
        _add(ia, extra={"fake.jpg": {"data": b"not a jpeg at all", "format": "JPEG"}})
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            fetch(m)
            check(m)
            row = _files(m)["fake.jpg"]
            pack(m, seal_partial=True)
            _, rows, _ = _manifest(m)
    assert row["verdict"] == "unreadable" and row["quarantine_path"].endswith("fake.jpg")
    assert "ia/album-c/fake.jpg" not in {r["path"] for r in rows}


def test_a_withdrawn_item_takes_its_cover_off_the_site_at_once(write_manifest):
    with IAServer() as ia:
        _add(ia)
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            fetch(m)
            check(m)
            pack(m, seal_partial=True)
            publish(m)
            copies = m.public_dir / "covers"
            before = sorted(p.name for p in copies.rglob("*.png"))
            withdraw(m, "album-c", "request from the rights holder")
            after = sorted(p.name for p in copies.rglob("*.png"))
            broken = broken_links(m.public_dir)
    assert before == ["cover.png"] and after == [] and broken == []
