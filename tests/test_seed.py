"""The built-in seeder and export-torrents (transfers to real clients: test_transfer.py)."""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path

import pytest

import ccmirror.packs
from ccmirror.lock import DataLock
from ccmirror.mirror import open_mirror
from ccmirror.seed import SeedOptions, seed
from packhelpers import sample_mirror
from trackerhelpers import SeedProcess, make_sealed_pack, mark_obsolete

SOURCE = """
[[source]]
kind = "ia"
query = "collection:test"
endpoint = "http://127.0.0.1:9"
"""

# Loopback only, any free port, no DHT: nothing leaves the machine.
LOOPBACK = {"interfaces": ("127.0.0.1",), "port": 0, "dht": False}


@pytest.fixture
def manifest(write_manifest):
    return write_manifest(SOURCE)


def _pack(status: dict, name: str) -> dict | None:
    return next((p for p in status["packs"] if p["name"] == name), None)


def _seeding(name: str):
    def check(status: dict) -> bool:
        p = _pack(status, name)
        return bool(p and p["state"] == "seeding")

    return check


def _run_until(manifest, predicate, *, timeout: float = 30, **opts):
    """Run seed() in-process until a status satisfies `predicate`; return every status."""
    seen: list[dict] = []
    options = SeedOptions(
        **LOOPBACK,
        status_interval=0.1,
        rescan_interval=0.2,
        duration=timeout,
        **opts,
    )
    done: list[bool] = []

    def on_status(s: dict) -> None:
        seen.append(s)
        if predicate(s, seen):
            done.append(True)

    with open_mirror(manifest, readonly=True) as mirror:
        final = seed(mirror, options=options, should_stop=lambda: bool(done), on_status=on_status)
    assert done, f"condition not reached within {timeout}s; last status: {seen[-1]}"
    assert final["event"] == "stopped"
    return seen


def test_sigterm_saves_resume_data_and_restart_does_not_rehash(manifest, data_dir):
    pack = make_sealed_pack(data_dir, "test-t1-0001", files=3)
    key = pack["info_hash"]
    resume = data_dir / "seed" / f"{key}.resume"

    with SeedProcess(manifest) as first:
        status = first.next_status(_seeding("test-t1-0001"), 30, "the first run to seed")
        # No resume data yet: libtorrent hashed the payload.
        assert _pack(status, "test-t1-0001")["checked_files"] is True
        assert _pack(status, "test-t1-0001")["resumed"] is False
        assert not resume.exists()
        assert first.stop(signal.SIGTERM) == 0, first.stderr
    assert first.seen[-1]["event"] == "stopped"
    assert first.seen[-1]["resume_saved"] == 1
    assert resume.stat().st_size > 0
    assert (data_dir / "seed" / f"{key}.stamp.json").exists()

    with SeedProcess(manifest) as second:
        status = second.next_status(_seeding("test-t1-0001"), 30, "the restart to seed")
        assert second.stop(signal.SIGINT) == 0, second.stderr
    # From libtorrent's own state changes: the restart never entered checking_files.
    states = [_pack(s, "test-t1-0001") for s in second.seen]
    assert all(p["resumed"] is True for p in states)
    assert all(p["checked_files"] is False for p in states)
    assert second.seen[-1]["event"] == "stopped"


def test_changed_payload_makes_resume_data_stale(manifest, data_dir):
    make_sealed_pack(data_dir, "test-t1-0001")
    _run_until(manifest, lambda s, _: _seeding("test-t1-0001")(s))  # writes resume data
    seen = _run_until(manifest, lambda s, _: _seeding("test-t1-0001")(s))
    assert _pack(seen[-1], "test-t1-0001")["checked_files"] is False

    # Touch one payload file: its mtime no longer matches the stamp.
    track = next((data_dir / "packs" / "test-t1-0001").rglob("*.flac"))
    st = track.stat()
    os.utime(track, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    seen = _run_until(manifest, lambda s, _: _seeding("test-t1-0001")(s))
    p = _pack(seen[-1], "test-t1-0001")
    assert p["resumed"] is False and p["checked_files"] is True


def test_damaged_payload_is_reported_not_repaired(manifest, data_dir):
    pack = make_sealed_pack(data_dir, "test-t1-0001")
    track = next((data_dir / "packs" / "test-t1-0001").rglob("*.flac"))
    original = track.read_bytes()
    track.write_bytes(original[:1000] + bytes(len(original) - 1000))  # same size, zeros

    def checked(s, _):
        p = _pack(s, "test-t1-0001")
        return p and p["state"] == "incomplete"

    seen = _run_until(manifest, checked)
    p = _pack(seen[-1], "test-t1-0001")
    assert 0 < p["progress"] < 1
    # Upload mode: the seeder never writes into packs/.
    assert track.read_bytes() == original[:1000] + bytes(len(original) - 1000)
    assert pack["info_hash"] == p["info_hash"]


def test_rescan_adds_new_packs_and_drops_obsolete_ones(manifest, data_dir):
    make_sealed_pack(data_dir, "test-t1-0001", seed=1)
    changed: list[bool] = []

    def step(s, _seen):
        if not changed and _seeding("test-t1-0001")(s):
            # What a sync beside the seeder does: seal a pack, withdraw another.
            make_sealed_pack(data_dir, "test-t1-0002", seq=2, seed=2)
            mark_obsolete(data_dir, "test-t1-0001")
            changed.append(True)
            return False
        return bool(changed) and _seeding("test-t1-0002")(s) and not _pack(s, "test-t1-0001")

    seen = _run_until(manifest, step)
    assert [p["name"] for p in seen[-1]["packs"]] == ["test-t1-0002"]
    assert not any((data_dir / "seed").glob(f"{seen[0]['packs'][0]['info_hash']}.*"))


def test_seed_leaves_the_write_lock_free_and_refuses_a_second_seeder(manifest, data_dir, cli):
    make_sealed_pack(data_dir, "test-t1-0001")
    results: dict[str, object] = {}

    def probe(s, _seen):
        # sync takes the data dir's lock while we seed ...
        with DataLock(data_dir):
            results["sync_lock"] = True
        # ... but a second seeder of the same data dir is refused with exit 3.
        r = cli("seed", str(manifest), "--port", "0", "--no-dht", "--duration", "1")
        results["second"] = (r.returncode, r.stderr)
        return True

    _run_until(manifest, probe)
    assert results["sync_lock"] is True
    code, err = results["second"]
    assert code == 3
    assert "already seeding" in err and "Traceback" not in err


def test_unreadable_torrent_is_reported_and_exit_1(manifest, data_dir, cli):
    make_sealed_pack(data_dir, "test-t1-0001", seed=1)
    broken = make_sealed_pack(data_dir, "test-t1-0002", seq=2, seed=2)
    (data_dir / broken["torrent_path"]).write_bytes(b"not a torrent")
    r = cli(
        "seed", str(manifest), "--json", "--interface", "127.0.0.1", "--port", "0",
        "--no-dht", "--duration", "2", "--status-interval", "0.5", "--upload-limit", "1MiB",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["event"] for x in (lines[0], lines[-1])] == ["started", "stopped"]
    final = lines[-1]
    assert final["failed"] == 1
    assert final["options"]["upload_rate_limit"] == 1024**2
    assert final["failures"][0]["name"] == "test-t1-0002"
    assert [p["name"] for p in final["packs"]] == ["test-t1-0001"]
    assert "test-t1-0002" in r.stderr


def test_human_status_lines(manifest, data_dir, cli):
    make_sealed_pack(data_dir, "test-t1-0001")
    r = cli(
        "seed", str(manifest), "--interface", "127.0.0.1", "--port", "0", "--no-dht",
        "--duration", "1.5", "--status-interval", "0.3", "-v",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "started: 1 torrents" in lines[0]
    assert any(line.startswith("  test-t1-0001  seeding  100.0%") for line in lines)
    assert "stopped:" in [line for line in lines if not line.startswith(" ")][-1]


def test_export_torrents(manifest, data_dir, tmp_path, cli):
    one = make_sealed_pack(data_dir, "test-t1-0001", seed=1)
    two = make_sealed_pack(data_dir, "test-t2-0001", tier=2, seed=2)
    make_sealed_pack(data_dir, "test-t1-0002", seq=2, seed=3)
    mark_obsolete(data_dir, "test-t1-0002")
    watch = tmp_path / "watch"

    r = cli("export-torrents", str(manifest), "--to", str(watch), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["exported"], out["unchanged"], out["conflicts"]) == (2, 0, 0)
    assert out["save_path"] == str(data_dir / "packs")
    assert sorted(p.name for p in watch.iterdir()) == [
        "test-t1-0001.torrent",
        "test-t2-0001.torrent",
    ]
    for pack in (one, two):
        exported = watch / f"{pack['name']}.torrent"
        assert exported.read_bytes() == (data_dir / pack["torrent_path"]).read_bytes()

    # Again: nothing to do. A different file under a pack's name is never overwritten.
    (watch / "test-t1-0001.torrent").unlink()
    (watch / "test-t2-0001.torrent").write_bytes(b"someone else's file")
    r = cli("export-torrents", str(manifest), "--to", str(watch), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert (out["exported"], out["unchanged"], out["conflicts"]) == (1, 0, 1)
    assert (watch / "test-t2-0001.torrent").read_bytes() == b"someone else's file"
    assert not [p for p in watch.iterdir() if p.name.endswith(".part")]

    (watch / "test-t2-0001.torrent").unlink()
    r = cli("export-torrents", str(manifest), "--to", str(watch))
    assert r.returncode == 0, r.stderr
    assert "1 exported, 1 unchanged, 0 conflicts" in r.stdout
    assert str(data_dir / "packs") in r.stdout


def test_export_refuses_a_file_as_target(manifest, data_dir, tmp_path, cli):
    make_sealed_pack(data_dir, "test-t1-0001")
    target = tmp_path / "afile"
    target.write_text("x")
    r = cli("export-torrents", str(manifest), "--to", str(target))
    assert r.returncode == 2
    assert "is a file" in r.stderr and "Traceback" not in r.stderr
    assert target.read_text() == "x"


CONTRIB = Path(__file__).resolve().parent.parent / "contrib"


def _contrib_commands() -> dict[str, list[str]]:
    """The ccmirror command lines in contrib/ (cron line, ExecStart=), as argument lists."""
    found = {}
    for line in (CONTRIB / "cron" / "ccmirror").read_text().splitlines():
        if line and not line.startswith(("#", "SHELL=", "PATH=")):
            found["cron"] = shlex.split(line)[6:]  # 5 time fields and the user
    for unit in sorted((CONTRIB / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                found[unit.name] = shlex.split(line.removeprefix("ExecStart="))
    return found


def test_contrib_command_lines_run(write_manifest, data_dir, tmp_path, cli):
    commands = _contrib_commands()
    assert set(commands) == {"cron", "ccmirror-sync@.service", "ccmirror-seed@.service"}
    manifest = write_manifest(SOURCE)
    make_sealed_pack(data_dir, "test-t1-0001")
    for where, argv in commands.items():
        assert Path(argv[0]).name == "ccmirror", where
        local = {"/etc/ccmirror/": str(manifest), "/var/log/ccmirror/": str(tmp_path / "log")}
        args = [next((v for k, v in local.items() if a.startswith(k)), a) for a in argv[1:]]
        if args[0] == "sync":
            args += ["--dry-run"]  # the real options, checked by the real parser
        else:
            args += ["--duration", "0.5", "--no-dht", "--interface", "127.0.0.1", "--port", "0"]
        r = cli(*args)
        assert r.returncode == 0, (where, args, r.stderr)
    unit = (CONTRIB / "systemd" / "ccmirror-sync@.timer").read_text()
    assert "OnCalendar=" in unit and "Persistent=true" in unit


def test_resume_data_saved_periodically_while_seeding(manifest, data_dir):
    pack = make_sealed_pack(data_dir, "test-t1-0001")
    resume = data_dir / "seed" / f"{pack['info_hash']}.resume"
    # Seen while still running: the periodic save, not the one on the way out.
    _run_until(manifest, lambda s, _: resume.exists(), resume_interval=0.3)


def test_resume_data_saved_when_the_loop_dies(manifest, data_dir):
    pack = make_sealed_pack(data_dir, "test-t1-0001")
    resume = data_dir / "seed" / f"{pack['info_hash']}.resume"

    def on_status(s: dict) -> None:
        if _seeding("test-t1-0001")(s):
            raise KeyboardInterrupt  # what Ctrl-C or a Terminated signal does mid-loop

    with open_mirror(manifest, readonly=True) as mirror, pytest.raises(KeyboardInterrupt):
        seed(mirror, options=SeedOptions(**LOOPBACK, status_interval=0.1), on_status=on_status)
    assert resume.stat().st_size > 0
    # The seed lock is free again.
    with DataLock(data_dir / "seed"):
        pass


def test_network_switches_reach_libtorrent(manifest, data_dir):
    from ccmirror.seed import Seeder

    opts = SeedOptions(
        interfaces=("127.0.0.1",), port=0, dht=False, lsd=True, upnp=False, natpmp=False,
        upload_rate_limit=123_000,
    )  # fmt: skip
    with open_mirror(manifest, readonly=True) as mirror:
        seeder = Seeder(mirror, opts)
        seeder.start()
        try:
            got = seeder.session.get_settings()
            assert seeder.listen_port() > 0
        finally:
            seeder.close()
    assert got["upload_rate_limit"] == 123_000
    assert (got["enable_dht"], got["enable_lsd"], got["enable_upnp"], got["enable_natpmp"]) == (
        False,
        True,
        False,
        False,
    )
    assert got["listen_interfaces"] == "127.0.0.1:0"
    assert SeedOptions().settings()["enable_dht"] is True
    assert SeedOptions().settings()["enable_upnp"] is False


def test_upload_limit_option_parses_sizes(manifest, data_dir, cli):
    r = cli("seed", str(manifest), "--upload-limit", "lots", "--duration", "0")
    assert r.returncode == 2 and "not a size" in r.stderr


def test_pack_that_could_not_be_added_is_retried_at_rescan(manifest, data_dir):
    pack = make_sealed_pack(data_dir, "test-t1-0001")
    torrent = data_dir / pack["torrent_path"]
    good = torrent.read_bytes()
    torrent.unlink()  # e.g. lost, until the next sync rebuilds it
    repaired: list[bool] = []

    def step(s, _seen):
        if not repaired:
            assert s["failed"] == 1 and s["packs"] == []
            torrent.write_bytes(good)
            repaired.append(True)
            return False
        return s["failed"] == 0 and _seeding("test-t1-0001")(s)

    seen = _run_until(manifest, step)
    assert seen[-1]["failures"] == []


def test_export_reports_a_missing_torrent_and_exports_the_rest(manifest, data_dir, tmp_path, cli):
    gone = make_sealed_pack(data_dir, "test-t1-0001", seed=1)
    make_sealed_pack(data_dir, "test-t1-0002", seq=2, seed=2)
    (data_dir / gone["torrent_path"]).unlink()
    r = cli("export-torrents", str(manifest), "--to", str(tmp_path / "w"), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert (out["exported"], out["missing"], out["failed"]) == (1, 1, 1)
    assert [t["status"] for t in out["torrents"]] == ["missing", "exported"]
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["test-t1-0002.torrent"]


@pytest.mark.parametrize("fmt", ["hybrid", "v2"])
def test_packs_from_the_pack_builder_in_every_format(tmp_path, fmt):
    (tmp_path / "m").mkdir()
    with sample_mirror(tmp_path / "m", fmt=fmt, trackers=()) as mirror:
        ccmirror.packs.pack(mirror, seal_partial=True)
        names = [r[0] for r in mirror.db.execute("SELECT name FROM packs WHERE status='sealed'")]
        manifest = mirror.manifest.path
    assert len(names) >= 2

    def all_seeding(s, _):
        return s["states"] == {"seeding": len(names)}

    first = _run_until(manifest, all_seeding)
    again = _run_until(manifest, all_seeding)
    assert sorted(p["name"] for p in first[-1]["packs"]) == sorted(names)
    assert all(p["checked_files"] for p in first[-1]["packs"])
    assert not any(p["checked_files"] for s in again for p in s["packs"])
    if fmt == "v2":  # resume files are named by the v2 info-hash (64 hex digits)
        keys = {p.name.split(".")[0] for p in (tmp_path / "m" / "data" / "seed").glob("*.resume")}
        assert {len(k) for k in keys} == {64}
