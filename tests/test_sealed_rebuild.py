"""A sealed pack rebuilt after its payload folder is lost: byte-identical, whatever a later
harvest changed in the rows its MANIFEST.csv and ATTRIBUTION.md were made from."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from ccmirror.fetch import fetch
from ccmirror.harvest import harvest
from ccmirror.licence.check import check
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.purge import purge_withdrawn
from fmahelpers import BY_4, CC0, track_row, write_audio_tree, write_metadata_zip

IDS = (2, 3, 1001)


def _rows(listens: int, title: str) -> list:
    return [
        track_row(
            t,
            licence=BY_4 if t != 1001 else CC0,
            track_listens=str(listens + t),
            track_title=f"{title} {t}",
            artist=f"{title} band",
        )  # fmt: skip
        for t in IDS
    ]


def _payload(packs: Path, name: str) -> dict[str, bytes]:
    root = packs / name
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _sealed(m) -> list:
    return m.db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' AND is_metadata = 0 ORDER BY name"
    ).fetchall()


def _first_sealed(m) -> str:
    """Harvest, fetch, check and seal what there is: the first sealed pack's name."""
    harvest(m)
    fetch(m)
    check(m)
    pack(m, seal_partial=True)
    return _sealed(m)[0]["name"]


def _setup(tmp_path: Path, write_manifest):
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows(100, "Old"))
    tree = tmp_path / "fma_full"
    write_audio_tree(tree, IDS)
    body = (
        f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\naudio_root = "{tree}"\n\n'
        '[torrents]\npack_size = "10MiB"\n'
    )
    return write_manifest(body), meta


def test_rebuild_after_harvest_changed_rows_is_byte_identical(tmp_path, write_manifest):
    manifest, meta = _setup(tmp_path, write_manifest)
    with open_mirror(manifest) as m:
        harvest(m)
        fetch(m)
        check(m)
        r = pack(m, seal_partial=True)
        assert r["failed"] == 0 and r["sealed"]
        before = {p["name"]: _payload(m.packs_dir, p["name"]) for p in _sealed(m)}
        hashes = {p["name"]: p["info_hash_v1"] for p in _sealed(m)}
        torrents = {p["name"]: (m.data_dir / p["torrent_path"]).read_bytes() for p in _sealed(m)}
    assert all(b"Old band" in files["MANIFEST.csv"] for files in before.values())
    # The source changes every title, artist and listen count; the harvest takes them.
    write_metadata_zip(meta, _rows(5000, "New"))
    with open_mirror(manifest) as m:
        h = harvest(m)
        assert h["updated"] == len(IDS)
        titles = {r[0] for r in m.db.execute("SELECT title FROM items")}
        assert titles == {f"New {t}" for t in IDS}
        for name in before:
            shutil.rmtree(m.packs_dir / name)
        r = pack(m)
        assert r["failed"] == 0 and sorted(r["repaired"]) == sorted(before)
        for p in _sealed(m):
            assert p["info_hash_v1"] == hashes[p["name"]]
            assert _payload(m.packs_dir, p["name"]) == before[p["name"]]
            assert (m.data_dir / p["torrent_path"]).read_bytes() == torrents[p["name"]]


def test_pack_sealed_before_records_gets_one_from_its_payload(tmp_path, write_manifest):
    manifest, meta = _setup(tmp_path, write_manifest)
    with open_mirror(manifest) as m:
        name = _first_sealed(m)
        shutil.rmtree(m.data_dir / "sealed")  # as if sealed by an older ccmirror
        pack(m)  # the payload is in place: recorded from it
        kept = m.data_dir / "sealed" / name / "MANIFEST.csv.gz"
        assert (
            gzip.decompress(kept.read_bytes()) == (m.packs_dir / name / "MANIFEST.csv").read_bytes()
        )
    write_metadata_zip(meta, _rows(5000, "New"))
    with open_mirror(manifest) as m:
        harvest(m)
        before = _payload(m.packs_dir, name)
        shutil.rmtree(m.packs_dir / name)
        assert pack(m)["repaired"] == [name]
        assert _payload(m.packs_dir, name) == before


def test_withdrawal_drops_the_record_of_its_packs(tmp_path, write_manifest):
    manifest, _ = _setup(tmp_path, write_manifest)
    with open_mirror(manifest) as m:
        name = _first_sealed(m)
        assert (m.data_dir / "sealed" / name).is_dir()
        m.db.execute("UPDATE items SET status = 'withdrawn', reason = 'takedown'")
        m.db.execute("UPDATE files SET status = 'refused'")
        purge_withdrawn(m)
        assert not (m.data_dir / "sealed" / name).exists()
