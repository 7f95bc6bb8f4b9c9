"""Compact tiers: lawful format-shifted copies (Opus transcodes, IA derivatives) of the
long tail, end to end through `ccmirror sync` against the loopback IA server."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import mutagen
import pytest
import soundfile as sf

from ccmirror.compact.comments import licence_comments
from ccmirror.compact.encoder import close_enough
from ccmirror.compact.sourcefacts import parse_length
from ccmirror.errors import ManifestError
from ccmirror.licence.policy import permits_format_shift
from ccmirror.manifest import load_manifest
from iafake import IAServer
from iahelpers import CC_BY, audio_bytes, ia_manifest, make_ia_archive

TAGS = {
    "license": CC_BY,
    "copyright": f"2009 Artist. Licensed to the public under {CC_BY} verify at https://x.org/",
    "isrc": "USABC0900001",
}
SECONDS = 3.0
DERIVED = "item-003-01.mp3"  # IA's VBR MP3 derivative of item-003-01.flac


@pytest.fixture
def ia():
    server = IAServer(latency=0.0)
    specs = []
    for i, d in enumerate((1000, 10, 5, 1)):
        specs.append(
            {
                "identifier": f"item-{i:03d}",
                "downloads": d,
                "kinds": ("flac", "ogg", "mp3"),
                "tags": TAGS,
            }
        )
    specs[3]["extra_files"] = {
        DERIVED: {
            "data": audio_bytes("mp3", 7, SECONDS, TAGS),
            "source": "derivative",
            "format": "VBR MP3",
            "original": "item-003-01.flac",
        }
    }
    make_ia_archive(server, specs, seconds=SECONDS)
    with server:
        yield server


def _manifest(write_manifest, ia: IAServer, quality: str = '["original", "compact"]') -> Path:
    return ia_manifest(
        write_manifest,
        ia,
        extra=f"""
[tiers]
shares = [0.9, 1.0]
quality = {quality}

[torrents]
pack_size = "64MiB"
trackers = ["udp://127.0.0.1:6969/announce"]
""",
    )


def _db(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{data_dir / 'catalogue.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("catalogue.sqlite") and p.name != "lock"
    }


def _manifest_rows(pack_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((pack_dir / "MANIFEST.csv").read_text("utf-8"))))


def test_compact_tier_seals_opus_copies(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia)
    r = cli("sync", str(manifest), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    stage = out["stages"]["compact"]
    # Tier 2 (items 1-3): each item's FLAC and Ogg Vorbis transcoded, except the FLAC whose
    # IA derivative is fetched instead (chosen before the fetch); the ~83 kbit/s MP3s are
    # kept as they are. The transcoded originals left the store.
    assert stage["compact_tiers"] == [2]
    assert (stage["copied"], stage["kept"], stage["failed"], stage["released"]) == (5, 3, 0, 5)

    packs = sorted(p.name for p in (data_dir / "packs").iterdir() if p.name.startswith("test-t"))
    assert packs == ["test-t1-0001", "test-t2-0001"]
    t1, t2 = (data_dir / "packs" / p for p in packs)
    # Tier 1 holds the originals, unmodified; its MANIFEST.csv has the old columns only.
    assert sorted(p.suffix for p in (t1 / "ia" / "item-000").iterdir()) == [".flac", ".mp3", ".ogg"]
    assert "original_sha256" not in (t1 / "MANIFEST.csv").read_text().splitlines()[0]
    assert "Unmodified copy." in (t1 / "ATTRIBUTION.md").read_text()

    rows = {r["path"]: r for r in _manifest_rows(t2)}
    attribution = (t2 / "ATTRIBUTION.md").read_text()
    opus = sorted(p for p in rows if p.endswith(".opus"))
    assert len(opus) == 5
    db = _db(data_dir)
    copy_bytes = original_bytes = 0
    for path in opus:
        copy = t2 / path
        row = rows[path]
        item, name = path.split("/")[1], path.split("/", 2)[2]
        stem = name.removesuffix(".opus")
        original_name = stem + (".flac" if stem.endswith("-01") else ".ogg")
        original = ia.file_bytes(item, original_name)
        # Decodes, and lasts as long as its original.
        with sf.SoundFile(copy) as f:
            assert f.format == "OGG" and f.subtype == "OPUS"
            frames = sum(len(b) for b in f.blocks(65536))
            assert close_enough(SECONDS, frames / f.samplerate)
        # Carries the original's licence evidence; our own check gives the same licence.
        tags = mutagen.File(copy).tags
        assert tags["LICENSE"] == [CC_BY]
        assert TAGS["copyright"] in tags["COPYRIGHT"]
        assert tags["ISRC"] == [TAGS["isrc"]]
        inspect = cli("licence", "inspect", "--json", str(copy))
        got = json.loads(inspect.stdout)["files"][0]
        assert (got["licence_id"], got["verdict"], got["isrc"]) == (
            "CC-BY-4.0",
            "verified",
            TAGS["isrc"],
        )
        # Names the original's sha256, its format and the encoder settings.
        assert row["original_sha256"] == hashlib.sha256(original).hexdigest()
        assert row["original_format"] in ("Flac", "Ogg Vorbis")
        assert row["encoder"].startswith("opusenc --bitrate 96 --vbr (opus-tools ")
        assert row["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
        assert row["licence_id"] == "CC-BY-4.0" and row["verdict"] == "verified"
        # Credited as format-shifted.
        section = attribution.split(f"## {path}\n", 1)[1].split("\n## ", 1)[0]
        assert f"Format-shifted copy of {original_name} ({row['original_format']})" in section
        assert "Opus at 96 kbit/s" in section and "Otherwise unmodified." in section
        # Weighs less than the original (a FLAC: under half), which has left the store.
        copy_bytes += copy.stat().st_size
        original_bytes += len(original)
        assert copy.stat().st_size < len(original) / (2 if original_name.endswith(".flac") else 1)
        assert not (data_dir / "store" / "ia" / item / original_name).exists()
        orig = db.execute(
            "SELECT store_path, sha256, status, compact FROM files WHERE name = ?",
            (original_name,),
        ).fetchone()
        assert (orig["store_path"], orig["status"], orig["compact"]) == (None, "fetched", "copied")
        assert orig["sha256"] == hashlib.sha256(original).hexdigest()  # checksums stay
    assert copy_bytes < original_bytes / 2
    # The MP3s at ~83 kbit/s are packed as they are.
    for item in ("item-001", "item-002", "item-003"):
        name = f"{item}-03.mp3"
        assert (t2 / "ia" / item / name).read_bytes() == ia.file_bytes(item, name)
        assert rows[f"ia/{item}/{name}"]["original_sha256"] == ""
    # IA's derivative replaced one FLAC: fetched (IA's md5) instead of the original.
    d = rows[f"ia/item-003/{DERIVED}"]
    assert d["md5"] == hashlib.md5(ia.file_bytes("item-003", DERIVED)).hexdigest()
    assert d["encoder"] == "Internet Archive derivative (VBR MP3)"
    assert "the source's own VBR MP3 derivative" in attribution
    downloads = {q.path for q in ia.requests}
    assert not any(p.endswith("/item-003-01.flac") for p in downloads)
    assert "ia/item-003/item-003-01.opus" not in rows

    # tiers counts the compact tier at its compact size; the index chart shows the gain.
    table = json.loads(cli("tiers", str(manifest), "--json").stdout)["tiers"]
    assert [t["quality"] for t in table] == ["original", "compact"]
    assert table[1]["bytes"] < table[1]["original_bytes"] / 2
    assert (
        table[1]["share_per_byte"] > 2 * table[1]["popularity_share"] / table[1]["original_bytes"]
    )
    page = (data_dir / "public" / "index.html").read_text()
    assert page.count('class="originals"') == 2  # wide and narrow charts
    assert "format-shifted copies" in page

    # A second run adds nothing: same store, packs, torrents.
    before = _tree(data_dir)
    r2 = cli("sync", str(manifest), "--json")
    assert r2.returncode == 0, r2.stderr
    again = json.loads(r2.stdout)["stages"]
    assert again["compact"]["copied"] == 0 and again["compact"]["released"] == 0
    assert again["fetch"]["fetched"] == 0 and again["pack"]["sealed"] == []
    after = _tree(data_dir)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {"sync-state.json"}, changed


def test_encoder_missing_is_exit_2_before_any_fetch(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia)
    bare = data_dir.parent / "bin"
    bare.mkdir()
    env = {"PATH": str(bare)}
    r = cli("sync", str(manifest), env=env)
    assert r.returncode == 2
    assert "opusenc" in r.stderr and "opus-tools" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli("fetch", str(manifest), env=env)
    assert r.returncode == 2 and "apt-get install opus-tools" in r.stderr
    assert not any(q.path.startswith(("/download/", "/serve/")) for q in ia.requests)


def test_unreadable_original_gets_no_copy(cli, write_manifest, data_dir):
    good = audio_bytes("flac", 1, SECONDS, TAGS)
    with IAServer(latency=0.0) as ia:
        make_ia_archive(ia, [{"identifier": "top", "downloads": 100, "kinds": ("mp3",)}])
        make_ia_archive(
            ia,
            [
                {
                    "identifier": "tail",
                    "downloads": 1,
                    "kinds": (),
                    "extra_files": {"cut.flac": good[: len(good) // 2]},
                }
            ],
        )
        manifest = _manifest(write_manifest, ia)
        r = cli("sync", str(manifest), "--json")
    assert r.returncode == 0, r.stderr
    db = _db(data_dir)
    cut = db.execute("SELECT id, verdict FROM files WHERE name = 'cut.flac'").fetchone()
    assert cut["verdict"] == "unreadable"
    assert (
        db.execute("SELECT count(*) FROM files WHERE copy_of = ?", (cut["id"],)).fetchone()[0] == 0
    )
    assert not list((data_dir / "store").rglob("*.opus"))


def test_manifest_quality_and_bitrate(write_manifest):
    base = '[[source]]\nkind = "ia"\nquery = "x"\n'
    m = load_manifest(
        write_manifest(
            base + '[tiers]\nshares = [0.5, 0.9]\nquality = ["original", "compact"]\n'
            '[compact]\nbitrate = "64k"\n'
        )
    )
    # The tail beyond the last share takes the last quality given.
    assert m.tiers.compact_tiers == (2, 3) and m.compact.bitrate == 64000
    assert m.budget is None
    assert load_manifest(write_manifest(base)).tiers.compact_tiers == ()
    for bad, key in (
        ('[tiers]\nquality = ["lossy"]\n', "tiers.quality"),
        ('[tiers]\nshares = [1.0]\nquality = ["original", "compact"]\n', "tiers.quality"),
        ('[compact]\nbitrate = "fast"\n', "compact.bitrate"),
        ('[compact]\nbitrate = "1k"\n', "compact.bitrate"),
    ):
        with pytest.raises(ManifestError) as e:
            load_manifest(write_manifest(base + bad))
        assert key in str(e.value)


def test_format_shift_policy_and_evidence_mapping():
    # Every CC licence (ND included), CC0, PDM and PDDC permit format shifting.
    for lid in ("CC-BY-ND-4.0", "CC-BY-NC-ND-2.0", "CC0-1.0", "CC-PDM-1.0", "CC-PDDC"):
        assert permits_format_shift(lid), lid
    for lid in (None, "", "LicenseRef-Unknown", "LicenseRef-CC-SAMPLING-1.0"):
        assert not permits_format_shift(lid), lid
    # Only the original's own tags are carried, never the source's declaration.
    evidence = [
        {"tag": "TCOP", "value": "2009 X"},
        {"tag": "TCOP:verify", "value": "https://x.org/"},
        {"tag": "WCOP", "value": CC_BY},
        {"tag": "ia:licence_url", "value": CC_BY},
        {"tag": "Vorbis:license", "value": CC_BY},
    ]
    assert licence_comments(json.dumps(evidence)) == [("COPYRIGHT", "2009 X"), ("LICENSE", CC_BY)]
    assert parse_length("213.5") == 213.5 and parse_length("3:33") == 213.0
    assert parse_length("1:02:03") == 3723.0 and parse_length("n/a") is None


def test_a_derivative_that_never_verifies_makes_way_for_a_transcode(cli, write_manifest, data_dir):
    with IAServer(latency=0.0) as ia:
        make_ia_archive(ia, [{"identifier": "top", "downloads": 100, "kinds": ("mp3",)}])
        make_ia_archive(
            ia,
            [
                {
                    "identifier": "tail",
                    "downloads": 1,
                    "kinds": ("flac",),
                    "tags": TAGS,
                    "extra_files": {
                        "tail-01.mp3": {
                            "data": audio_bytes("mp3", 3, SECONDS),
                            "source": "derivative",
                            "format": "VBR MP3",
                            "original": "tail-01.flac",
                            "md5": "0" * 32,  # IA's checksum never matches the bytes
                        }
                    },
                }
            ],
            seconds=SECONDS,
        )
        manifest = _manifest(write_manifest, ia)
        codes = [cli("sync", str(manifest), "--json").returncode for _ in range(3)]
        flac_gets = [q for q in ia.requests if q.path.endswith("/tail-01.flac")]
    # Two runs try IA's derivative (never verified, never packed); the third gives it up,
    # fetches the original and transcodes it.
    assert codes[:2] == [1, 1] and codes[2] == 0
    assert flac_gets
    db = _db(data_dir)
    rows = {r["name"]: r for r in db.execute("SELECT * FROM files WHERE item_id ="
                                             " (SELECT id FROM items WHERE source_id = 'tail')")}  # fmt: skip
    assert rows["tail-01.mp3"]["status"] == "refused"
    assert rows["tail-01.flac"]["compact"] == "copied"
    assert rows["tail-01.opus"]["verdict"] == "verified"
    packed = {p.name for p in (data_dir / "packs").rglob("*") if p.is_file()}
    assert "tail-01.opus" in packed and "tail-01.mp3" not in packed


def test_decisions_before_a_transcode(tmp_path):
    from ccmirror.compact.run import _decide
    from ccmirror.licence.policy import NO_FORMAT_SHIFT
    from ccmirror.sample.audio import write_audio

    flac = write_audio(tmp_path / "a.flac", seconds=1.0)
    mp3 = write_audio(tmp_path / "a.mp3", seconds=1.0)  # ~83 kbit/s
    # A licence that does not permit format shifting keeps the original, whatever it is.
    assert _decide(flac, 96_000, "LicenseRef-Unknown") == ("original", NO_FORMAT_SHIFT)
    assert _decide(flac, 96_000, "CC-BY-ND-4.0") == (None, "FLAC")
    # A lossy file at or under the bitrate is kept; over it, transcoded.
    assert _decide(mp3, 96_000, "CC-BY-4.0")[0] == "kept"
    assert _decide(mp3, 64_000, "CC-BY-4.0") == (None, "MP3")


def test_dry_run_foresees_what_compact_decides_and_releases(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia)
    assert cli("harvest", str(manifest)).returncode == 0
    plan = cli("sync", str(manifest), "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    plan_doc = json.loads(plan.stdout)["stages"]
    foreseen = plan_doc["compact"]
    r = cli("sync", str(manifest), "--json")
    assert r.returncode == 0, r.stderr
    real_doc = json.loads(r.stdout)["stages"]
    done = real_doc["compact"]
    # The fetch stage fetches IA's smaller derivative instead of its original: foreseen.
    assert foreseen["derivatives_at_fetch"] == 1
    for key in ("fetched", "bytes"):
        assert plan_doc["fetch"][key] == real_doc["fetch"][key]
    assert plan_doc["check"]["checked"] == real_doc["check"]["checked"]
    assert "compact tiers [2]" in plan_doc["pack"]["not_foreseen"]
    assert foreseen["compact_tiers"] == done["compact_tiers"] == [2]
    # What the run decides from each original's stream is not guessed: None, and said so.
    assert foreseen["copied"] is foreseen["kept"] is foreseen["unreadable"] is None
    assert "stream" in foreseen["predictions"]
    decided = sum(done[k] for k in ("copied", "kept", "original", "unreadable", "failed"))
    assert foreseen["to_decide"] == decided
    # Nothing was copied before this run: the originals released are the run's own.
    assert foreseen["released"] == 0 and done["released"] == 5
    # A second dry run, once the copies are judged: nothing left to decide or release.
    again = json.loads(cli("sync", str(manifest), "--dry-run", "--json").stdout)
    assert again["stages"]["compact"]["to_decide"] == again["stages"]["compact"]["released"] == 0
    assert set(done) - {"seconds", "encoder"} <= set(foreseen)
