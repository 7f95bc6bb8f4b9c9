"""`ccmirror sync` end to end, on loopback: the real CLI against the IA server and the
demo's sample archive (real encoded audio, a few licence problems on purpose)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import libtorrent as lt
import pytest

from ccmirror.lock import DataLock
from ccmirror.sample.demo_items import build_sample
from iafake import IAServer

STAGES = {"harvest", "fetch", "check", "compact", "pack", "publish"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return build_sample(tmp_path_factory.mktemp("sample") / "sample")


@pytest.fixture
def ia(sample):
    server = IAServer(latency=0.0)
    for item in sample:
        item.add_to(server)
    with server:
        yield server


def _manifest(write_manifest, endpoint: str, extra_source: str = "") -> Path:
    return write_manifest(
        f"""
        [[source]]
        kind = "ia"
        query = "mediatype:audio"
        endpoint = "{endpoint}"
        {extra_source}
        [torrents]
        pack_size = "256KiB"
        trackers = ["udp://127.0.0.1:6969/announce"]
        """
    )


def _sync(cli, manifest: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return cli("sync", str(manifest), *args, **kw)


def _sync_json(cli, manifest: Path, *args: str) -> tuple[int, dict]:
    r = _sync(cli, manifest, "--json", *args)
    assert r.stdout.strip(), r.stderr
    return r.returncode, json.loads(r.stdout)


def _db(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{data_dir / 'catalogue.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _tree(data_dir: Path) -> dict[str, str]:
    """Every file under the data dir but the catalogue itself: relpath -> sha256."""
    out = {}
    for p in sorted(data_dir.rglob("*")):
        rel = str(p.relative_to(data_dir))
        if p.is_file() and not rel.startswith("catalogue.sqlite") and rel != "lock":
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _rows(data_dir: Path) -> dict[str, list[tuple]]:
    conn = _db(data_dir)
    try:
        return {
            "items": [
                tuple(r)
                for r in conn.execute(
                    "SELECT id, source_id, status, reason, tier FROM items ORDER BY id"
                )
            ],
            "files": [
                tuple(r)
                for r in conn.execute(
                    "SELECT id, item_id, name, status, store_path, md5, verdict, licence_id,"
                    " checked_at FROM files ORDER BY id"
                )
            ],
            "packs": [tuple(r) for r in conn.execute("SELECT * FROM packs ORDER BY id")],
            "pack_files": [
                tuple(r) for r in conn.execute("SELECT * FROM pack_files ORDER BY 1, 2")
            ],
        }
    finally:
        conn.close()


def test_sync_twice_changes_nothing(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia.url)
    code, first = _sync_json(cli, manifest)
    assert code == 0, first
    assert set(first["stages"]) == STAGES
    assert all(s["ok"] for s in first["stages"].values()), first["stages"]
    rows, tree = _rows(data_dir), _tree(data_dir)
    sealed = [p for p in rows["packs"] if p[4] == "sealed"]
    assert len(sealed) >= 3  # several tiers, everything fetched: partial packs sealed too
    assert any(k.startswith("torrents/") and k.endswith(".torrent") for k in tree)
    assert "public/torrents.json" in tree

    ia.requests.clear()
    code, second = _sync_json(cli, manifest)
    assert code == 0, second
    assert _rows(data_dir) == rows  # no new rows, no changed state
    assert _tree(data_dir) == tree  # same packs, same torrent bytes, same published files
    # Unchanged items: one search, no metadata refetched, nothing downloaded.
    paths = [r.path for r in ia.requests]
    assert paths and not [p for p in paths if not p.startswith("/services/search")], paths


def test_sync_is_silent_in_cron_and_logs_with_timestamps(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia.url)
    log = data_dir.parent / "sync.log"
    r = _sync(cli, manifest, "--log-file", str(log))
    assert r.returncode == 0, r.stderr
    # Not a terminal, nothing wrong: nothing on stdout or stderr (cron mails nothing).
    assert r.stdout == "" and r.stderr == ""
    lines = log.read_text().splitlines()
    assert lines and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ", ln) for ln in lines)
    assert any("sync finished" in ln for ln in lines)
    # -v shows the stage table even off a terminal.
    r = _sync(cli, manifest, "-v")
    assert r.returncode == 0
    for stage in STAGES:
        assert re.search(rf"^{stage}\s+ok", r.stdout, re.M), r.stdout


def test_failed_stage_exits_1_and_later_stages_still_run(cli, ia, write_manifest, data_dir):
    ia.fault("wrong", path="/serve/demo-night-walk/*", times=None)
    manifest = _manifest(write_manifest, ia.url)
    code, out = _sync_json(cli, manifest)
    assert code == 1
    assert out["failed_stages"] == ["fetch"]
    assert out["stages"]["fetch"]["failed"] >= 1
    for stage in ("check", "pack", "publish"):
        assert out["stages"][stage]["ok"], out["stages"][stage]
    rows = _rows(data_dir)
    assert any(p[4] == "sealed" for p in rows["packs"])
    assert (data_dir / "public" / "torrents.json").exists()
    # The source recovers: the next run fetches the failed files and finishes clean.
    ia.clear_faults()
    code, out = _sync_json(cli, manifest)
    assert code == 0, out
    conn = _db(data_dir)
    assert conn.execute("SELECT count(*) FROM files WHERE status = 'failed'").fetchone()[0] == 0


class _NotIA(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - stdlib name
        self.send_error(404)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


def test_unreachable_source_exits_4_after_syncing_the_rest(cli, ia, write_manifest, data_dir):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotIA)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        dead = f"http://127.0.0.1:{httpd.server_address[1]}"
        manifest = write_manifest(
            f"""
            [[source]]
            kind = "ia"
            query = "mediatype:audio"
            endpoint = "{dead}"

            [[source]]
            kind = "ia"
            query = "mediatype:audio"
            endpoint = "{ia.url}"

            [torrents]
            pack_size = "256KiB"
            """
        )
        code, out = _sync_json(cli, manifest)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 4
    assert len(out["unreachable"]) == 1 and dead in out["unreachable"][0]
    # The reachable source was harvested and its files went all the way through.
    assert out["stages"]["harvest"]["sources"][1]["ok"]
    for stage in ("fetch", "check", "pack", "publish"):
        assert out["stages"][stage]["ok"], out["stages"][stage]
    assert any(p[4] == "sealed" for p in _rows(data_dir)["packs"])


def test_lock_held_exits_3(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia.url)
    with DataLock(data_dir):
        r = _sync(cli, manifest)
    assert r.returncode == 3
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "lock" in r.stderr
    assert not (data_dir / "catalogue.sqlite").exists()  # nothing done under someone's lock
    assert ia.requests == []


def test_dry_run_touches_nothing(cli, ia, write_manifest, data_dir, tmp_path):
    # A data dir that does not exist yet stays that way.
    fresh = tmp_path / "fresh"
    manifest = _manifest(write_manifest, ia.url)
    r = cli("--data-dir", str(fresh), "sync", str(manifest), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["dry_run"] and plan["catalogue"].startswith("absent")
    assert not fresh.exists()
    assert ia.requests == []

    # A partly fetched mirror: the plan reads the catalogue, and nothing changes.
    r = _sync(cli, manifest, "--max-bytes", "100KiB")
    assert r.returncode == 0, r.stderr
    conn = _db(data_dir)
    pending = conn.execute(
        "SELECT count(*), sum(f.size) FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'pending' AND i.status = 'ok'"
    ).fetchone()
    fetched_bytes = conn.execute(
        "SELECT coalesce(sum(size), 0) FROM files WHERE status = 'fetched'"
    ).fetchone()[0]
    conn.close()
    assert 0 < fetched_bytes <= 100 * 1024 and pending[0] > 0
    before = _tree(data_dir)
    cat = (data_dir / "catalogue.sqlite").read_bytes()
    lock_stat = (data_dir / "lock").stat()
    ia.requests.clear()
    r = _sync(cli, manifest, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert set(plan["stages"]) == STAGES
    assert plan["stages"]["fetch"]["pending_files"] == pending[0]
    assert plan["stages"]["fetch"]["pending_bytes"] == pending[1]
    assert plan["stages"]["fetch"]["would_fetch_files"] == pending[0]
    assert ia.requests == []
    assert _tree(data_dir) == before
    assert (data_dir / "catalogue.sqlite").read_bytes() == cat
    assert (data_dir / "lock").stat().st_mtime_ns == lock_stat.st_mtime_ns
    # With a budget the plan only counts what fits.
    r = _sync(cli, manifest, "--dry-run", "--json", "--max-bytes", "1")
    assert json.loads(r.stdout)["stages"]["fetch"]["would_fetch_files"] == 0
    # Even with a lock held by someone else: a dry run takes no lock.
    with DataLock(data_dir):
        r = _sync(cli, manifest, "--dry-run")
    assert r.returncode == 0 and "dry run" in r.stdout


def test_bad_max_bytes_is_a_usage_error(cli, ia, write_manifest):
    manifest = _manifest(write_manifest, ia.url)
    r = _sync(cli, manifest, "--max-bytes", "lots")
    assert r.returncode == 2 and "--max-bytes" in r.stderr


def _consistent(data_dir: Path) -> None:
    """Store, packs and catalogue agree after a crash and a clean run."""
    conn = _db(data_dir)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    twice = conn.execute(
        "SELECT pf.file_id FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " WHERE p.obsolete = 0 GROUP BY pf.file_id HAVING count(*) > 1"
    ).fetchall()
    assert twice == []
    for f in conn.execute(
        "SELECT store_path, quarantine_path, size, md5 FROM files WHERE status = 'fetched'"
    ):
        # check moves unreadable/conflicting files to quarantine/ and records where.
        rel = f["quarantine_path"] or f["store_path"]
        path = data_dir / rel
        assert path.is_file(), rel
        data = path.read_bytes()
        assert len(data) == f["size"] and hashlib.md5(data).hexdigest() == f["md5"]
    for p in conn.execute("SELECT id, name, torrent_path FROM packs WHERE status = 'sealed'"):
        assert (data_dir / p["torrent_path"]).is_file()
        for pf in conn.execute(
            "SELECT pf.path, f.size FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " WHERE pf.pack_id = ?",
            (p["id"],),
        ):
            payload = data_dir / "packs" / p["name"] / pf["path"]
            assert payload.is_file() and payload.stat().st_size == pf["size"], payload
    for p in conn.execute("SELECT name, torrent_path FROM packs WHERE status = 'sealed'"):
        _verify_v1(data_dir / p["torrent_path"], data_dir / "packs")
    # Every publishable fetched file of a live item ended up in exactly one live pack.
    unpacked = conn.execute(
        "SELECT count(*) FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'fetched' AND i.status = 'ok' AND f.verdict IN ('verified', 'declared')"
        " AND NOT EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        "  WHERE pf.file_id = f.id AND p.obsolete = 0)"
    ).fetchone()[0]
    assert unpacked == 0
    assert conn.execute("SELECT count(*) FROM files WHERE status = 'pending'").fetchone()[0] == 0
    conn.close()
    leftovers = [p for p in data_dir.rglob("*.part")]
    assert leftovers == []


def _verify_v1(torrent: Path, save_path: Path) -> None:
    """The payload on disk hashes to the torrent's v1 pieces (what a client would check)."""
    info = lt.bdecode(torrent.read_bytes())[b"info"]
    name = info[b"name"].decode()
    paths = [save_path / name / Path(*(x.decode() for x in f[b"path"])) for f in info[b"files"]]
    blob = b"".join(p.read_bytes() for p in paths)
    assert len(blob) == sum(f[b"length"] for f in info[b"files"])
    plen, pieces = info[b"piece length"], info[b"pieces"]
    got = b"".join(hashlib.sha1(blob[i : i + plen]).digest() for i in range(0, len(blob), plen))
    assert got == pieces, torrent


@pytest.mark.parametrize(
    ("when", "signum"),
    [("fetch", signal.SIGKILL), ("pack", signal.SIGKILL), ("fetch", signal.SIGTERM)],
)
def test_kill_9_during_sync_then_clean_sync(cli, ia, write_manifest, data_dir, when, signum):
    manifest = _manifest(write_manifest, ia.url)
    if when == "pack":
        # Fetch and check first, so the killed run spends its time packing.
        r = _sync(cli, manifest, "--max-bytes", "1")
        assert r.returncode in (0, 1), r.stderr
        from ccmirror.mirror import open_mirror

        with DataLock(data_dir), open_mirror(manifest) as mirror:
            from ccmirror.fetch import fetch
            from ccmirror.licence.check import check

            fetch(mirror)
            check(mirror)
    else:
        ia.latency = 0.15  # slow downloads: the kill lands mid-fetch
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CCMIRROR_DATA_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccmirror", "sync", str(manifest)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _progressed(data_dir, when):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "sync finished before it could be killed"
        proc.send_signal(signum)
    finally:
        proc.wait(timeout=30)
    # SIGTERM stops cleanly (lock released, exit 128+15); SIGKILL leaves what it leaves.
    assert proc.returncode == (-signum if signum == signal.SIGKILL else 128 + signum)
    ia.latency = 0.0
    code, out = _sync_json(cli, manifest)
    assert code == 0, out
    _consistent(data_dir)
    # And a run after that has nothing left to do.
    before = _rows(data_dir)
    code, _ = _sync_json(cli, manifest)
    assert code == 0 and _rows(data_dir) == before


def _progressed(data_dir: Path, when: str) -> bool:
    if when == "pack":
        packs = data_dir / "packs"
        return packs.exists() and any(packs.iterdir())
    try:
        conn = _db(data_dir)
        try:
            n = conn.execute("SELECT count(*) FROM files WHERE status = 'fetched'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return n >= 1


def test_new_material_goes_into_new_packs_and_is_published(
    cli, ia, sample, write_manifest, data_dir
):
    manifest = _manifest(write_manifest, ia.url)
    code, _ = _sync_json(cli, manifest)
    assert code == 0
    before = {p[1]: p for p in _rows(data_dir)["packs"]}
    published = (data_dir / "public" / "torrents.json").read_bytes()
    src = sample[0].files[0]
    ia.add_item(
        "demo-new-arrival",
        {
            "title": "New Arrival",
            "creator": "Late Band",
            "collection": ["netlabels"],
            "licenseurl": "https://creativecommons.org/licenses/by/4.0/",
        },
        {"arrival.flac": {"path": src.path, "format": "Flac"}},
        downloads=30000,
    )
    code, out = _sync_json(cli, manifest)
    assert code == 0, out
    assert out["stages"]["harvest"]["new"] == 1
    assert out["stages"]["fetch"]["fetched"] == 1
    after = {p[1]: p for p in _rows(data_dir)["packs"]}
    for name, row in before.items():
        if not row[5]:  # is_metadata: the metadata torrent is replaced when the catalogue grows
            assert after[name] == row  # sealed packs never change
    new = {name for name, row in after.items() if name not in before and not row[5]}
    assert new
    conn = _db(data_dir)
    holder = conn.execute(
        "SELECT p.name FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " JOIN files f ON f.id = pf.file_id WHERE f.name = 'arrival.flac'"
    ).fetchall()
    conn.close()
    assert [r[0] for r in holder] == sorted(new & {r[0] for r in holder})
    torrents = json.loads((data_dir / "public" / "torrents.json").read_text())
    assert (data_dir / "public" / "torrents.json").read_bytes() != published
    assert holder[0][0] in {t["name"] for t in torrents}


def test_dry_run_predicts_what_the_run_packs(cli, ia, write_manifest, data_dir):
    manifest = _manifest(write_manifest, ia.url)
    from ccmirror.fetch import fetch
    from ccmirror.harvest import harvest
    from ccmirror.licence.check import check
    from ccmirror.mirror import open_mirror

    with DataLock(data_dir), open_mirror(manifest) as mirror:
        harvest(mirror)
        fetch(mirror)
        check(mirror)
    r = _sync(cli, manifest, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["stages"]
    assert plan["fetch"]["pending_files"] == 0 and plan["check"]["files_to_check"] == 0
    assert plan["pack"]["files_to_pack"] > 0 and plan["publish"]["would_publish"]
    code, out = _sync_json(cli, manifest)
    assert code == 0, out
    sealed = out["stages"]["pack"]["sealed"]
    assert len(sealed) == plan["pack"]["would_seal_packs_estimate"]
    assert out["stages"]["pack"]["assigned_files"] == plan["pack"]["files_to_pack"]
    # Afterwards the plan is empty.
    plan = json.loads(_sync(cli, manifest, "--dry-run", "--json").stdout)["stages"]
    assert plan["pack"]["files_to_pack"] == 0 and plan["pack"]["would_seal_packs_estimate"] == 0
    assert not plan["publish"]["would_publish"]


def test_max_bytes_caps_each_run_not_the_store(cli, ia, write_manifest, data_dir):
    # The cron line's --max-bytes is per run: every run downloads up to it, the store grows.
    manifest = _manifest(write_manifest, ia.url)
    cap = 100 * 1024
    stored = []
    for _ in range(3):
        code, doc = _sync_json(cli, manifest, "--max-bytes", str(cap))
        assert code == 0, doc
        fetch = doc["stages"]["fetch"]
        assert 0 < fetch["bytes"] <= cap and fetch["max_bytes"] == cap
        stored.append(fetch["store_bytes"])
    assert stored[0] < stored[1] < stored[2]
    assert stored[2] > cap  # past the cap in total: it is not a store budget
