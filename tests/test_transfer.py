"""End to end on loopback: packs downloaded by real clients, bytes compared with the payload.

The packs are made by the real pipeline (`ccmirror.packs.pack` over a catalogue of real
audio, as `sync` does; the metadata torrent by `publish_metadata`), then:
- through a real tracker (Debian's opentracker, as nobody, whitelisting our info-hashes)
  from `ccmirror seed` running as a real process, by a second libtorrent session;
- from the BEP 19 web seed alone (python's http.server over packs/, no tracker), by aria2c.
"""

from __future__ import annotations

import time
from pathlib import Path

import libtorrent as lt

from ccmirror.packs import pack
from ccmirror.publish.metadata import publish_metadata
from packhelpers import sample_mirror
from trackerhelpers import (
    SeedProcess,
    aria2c_download,
    free_port,
    loopback_session,
    opentracker,
    payload_of,
    web_seed_server,
)


def _sealed(mirror) -> list:
    return mirror.db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' AND obsolete = 0 ORDER BY is_metadata, name"
    ).fetchall()


def _download_with_libtorrent(torrents: list[bytes], save_path: Path, timeout: float = 90):
    """A leecher on loopback that learns peers only from the tracker."""
    ses = loopback_session(alert_mask=lt.alert_category.error | lt.alert_category.tracker)
    handles = []
    for torrent in torrents:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(lt.bdecode(torrent))
        atp.save_path = str(save_path)
        handles.append(ses.add_torrent(atp))
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    try:
        while not all(h.status().is_seeding for h in handles):
            if time.monotonic() > deadline:
                states = [(h.name(), round(h.status().progress, 2)) for h in handles]
                raise AssertionError(f"incomplete after {timeout}s: {states}; {messages[-5:]}")
            ses.wait_for_alert(250)
            messages += [a.message() for a in ses.pop_alerts()]
    finally:
        for h in handles:
            ses.remove_torrent(h)
        del ses


def test_packs_downloaded_through_tracker_from_ccmirror_seed(tmp_path):
    port = free_port()
    announce = f"http://127.0.0.1:{port}/announce"
    (tmp_path / "m").mkdir()
    mirror = sample_mirror(tmp_path / "m", trackers=(announce,), pack_size="1MiB")
    data_dir = mirror.data_dir
    manifest = mirror.manifest.path
    pack(mirror, seal_partial=True)
    publish_metadata(mirror)
    sealed = _sealed(mirror)
    audio = [p for p in sealed if not p["is_metadata"]]
    meta = [p for p in sealed if p["is_metadata"]]
    assert audio and len(meta) == 1
    wanted = [audio[0], meta[0]]  # a tier-1 pack and the catalogue dump
    torrents = [(data_dir / p["torrent_path"]).read_bytes() for p in wanted]
    fresh = tmp_path / "leecher"
    fresh.mkdir()

    hashes = [p["info_hash_v1"] for p in sealed]
    with opentracker(hashes, port), SeedProcess(manifest) as seeder:
        seeder.next_status(
            lambda s: s["states"] == {"seeding": len(sealed)}, 60, "every pack to seed"
        )
        _download_with_libtorrent(torrents, fresh)
        up = seeder.next_status(lambda s: s["uploaded"] > 0, 30, "the upload to be counted")
        assert seeder.stop() == 0, seeder.stderr
    assert seeder.seen[-1]["event"] == "stopped"

    for p in wanted:
        got = payload_of(fresh / p["name"])
        assert got == payload_of(data_dir / "packs" / p["name"])
        assert len(got) == p["num_files"]
    # The audio in the download is the verified store copy, byte for byte.
    for row in mirror.db.execute(
        "SELECT pf.path, f.store_path FROM pack_files pf JOIN files f ON f.id = pf.file_id"
        " WHERE pf.pack_id = ?",
        (audio[0]["id"],),
    ):
        assert (fresh / audio[0]["name"] / row["path"]).read_bytes() == (
            data_dir / row["store_path"]
        ).read_bytes()
    assert up["uploaded"] >= sum(p["data_size"] for p in wanted)
    mirror.close()


def test_pack_downloaded_by_aria2c_from_web_seed_alone(tmp_path):
    packs_dir = tmp_path / "m" / "data" / "packs"
    packs_dir.mkdir(parents=True)
    with web_seed_server(packs_dir) as base:
        mirror = sample_mirror(tmp_path / "m", trackers=(), web_seeds=(base,), pack_size="1MiB")
        pack(mirror, seal_partial=True)
        target = [p for p in _sealed(mirror) if p["tier"] == 2][0]
        out = tmp_path / "aria2"
        out.mkdir()
        r = aria2c_download(mirror.data_dir / target["torrent_path"], out)
    assert r.returncode == 0, r.stdout + r.stderr
    got = payload_of(out / target["name"])
    assert got == payload_of(packs_dir / target["name"])
    assert len(got) == target["num_files"]
    mirror.close()
