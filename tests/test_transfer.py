"""End to end on loopback: packs downloaded by real clients, bytes compared with the payload.

- through a real tracker (Debian's opentracker, as nobody, whitelisting our info-hashes)
  from `ccmirror seed` running as a real process, by a second libtorrent session;
- from the BEP 19 web seed alone (python's http.server over packs/), by aria2c.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import libtorrent as lt

from trackerhelpers import (
    SeedProcess,
    free_port,
    make_sealed_pack,
    opentracker,
    payload_of,
    web_seed_server,
)

SOURCE = """
[[source]]
kind = "ia"
query = "collection:test"
endpoint = "http://127.0.0.1:9"
"""


def _download_with_libtorrent(torrent: bytes, save_path, timeout: float = 90) -> dict:
    """A leecher on loopback that only learns peers from the tracker; returns its status."""
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": lt.alert_category.error | lt.alert_category.tracker,
        }
    )
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(lt.bdecode(torrent))
    atp.save_path = str(save_path)
    handle = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    errors = []
    try:
        while not handle.status().is_seeding:
            if time.monotonic() > deadline:
                st = handle.status()
                raise AssertionError(
                    f"download incomplete after {timeout}s: progress {st.progress:.2f}, "
                    f"peers {st.num_peers}, state {st.state}, alerts {errors[-5:]}"
                )
            ses.wait_for_alert(250)
            errors += [a.message() for a in ses.pop_alerts()]
        st = handle.status()
        return {"progress": st.progress, "downloaded": st.total_payload_download}
    finally:
        ses.remove_torrent(handle)
        del ses


def test_pack_downloaded_through_tracker_from_ccmirror_seed(write_manifest, data_dir, tmp_path):
    manifest = write_manifest(SOURCE)
    port = free_port()
    announce = f"http://127.0.0.1:{port}/announce"
    pack = make_sealed_pack(data_dir, "test-t1-0001", files=3, seconds=4.0, trackers=[announce])
    torrent = (data_dir / pack["torrent_path"]).read_bytes()
    fresh = tmp_path / "leecher"
    fresh.mkdir()
    with opentracker([pack["info_hash"]], port), SeedProcess(manifest) as seeder:
        seeder.next_status(lambda s: s["states"] == {"seeding": 1}, 30, "the pack to seed")
        result = _download_with_libtorrent(torrent, fresh)
        up = seeder.next_status(lambda s: s["uploaded"] > 0, 30, "the upload to be counted")
        assert seeder.stop() == 0, seeder.stderr
    assert result["progress"] == 1.0
    assert payload_of(fresh) == pack["files"]
    assert up["uploaded"] >= sum(len(b) for b in pack["files"].values())
    assert seeder.seen[-1]["event"] == "stopped"


def test_pack_downloaded_by_aria2c_from_web_seed_alone(data_dir, tmp_path):
    with web_seed_server(data_dir / "packs") as base:
        pack = make_sealed_pack(data_dir, "test-t2-0001", tier=2, files=3, web_seeds=[base])
        out = tmp_path / "aria2"
        out.mkdir()
        r = subprocess.run(
            [
                shutil.which("aria2c") or "aria2c",
                "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
                "--enable-peer-exchange=false", "--seed-time=0", "--bt-stop-timeout=60",
                "--follow-torrent=false", "--console-log-level=warn", "--summary-interval=0",
                "--listen-port=" + str(free_port()), "-d", str(out),
                str(data_dir / pack["torrent_path"]),
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert payload_of(out) == pack["files"]
