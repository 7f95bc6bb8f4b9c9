"""The verified fetcher: http (loopback IA server), file: and zip: sources, faults, budget."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

import ccmirror.fetch as fetch_module
from ccmirror.catalogue import transaction, utcnow
from ccmirror.errors import SourceUnreachable
from ccmirror.fetch import fetch, transport
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from iafake import IAServer
from iahelpers import audio_bytes, ia_manifest, make_ia_archive


@pytest.fixture
def ia():
    with IAServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    # The retry policy is unchanged; only its pauses are shorter (Retry-After still rules).
    monkeypatch.setattr(transport, "_backoff", lambda attempt: 0.01 * attempt)


def _files(mirror):
    return {
        (r["source_id"], r["name"]): r
        for r in mirror.db.execute(
            "SELECT f.*, i.source_id FROM files f JOIN items i ON i.id = f.item_id"
        )
    }


def _served(server):
    return [r for r in server.requests if r.path.startswith("/serve/")]


def _store_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "store").rglob("*") if p.is_file())


def _harvested(ia, write_manifest, n=4, **kw):
    make_ia_archive(ia, n, **kw)
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        harvest(mirror)
    return path


def test_fetch_verifies_stores_and_second_run_downloads_nothing(ia, write_manifest, data_dir):
    path = _harvested(ia, write_manifest)
    with open_mirror(path) as mirror:
        result = fetch(mirror, workers=3)
        assert result["fetched"] == 8 and result["failed"] == 0 and result["skipped_budget"] == 0
        files = _files(mirror)
        for (ident, name), row in files.items():
            data = ia.file_bytes(ident, name)
            stored = data_dir / row["store_path"]
            assert row["status"] == "fetched"
            assert row["store_path"] == f"store/ia/{ident}/{name}"
            assert stored.read_bytes() == data
            assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert result["bytes"] == result["store_bytes"] == sum(f["size"] for f in files.values())
        # Every download went through IA's redirect to the data server.
        assert len([r for r in ia.requests if r.path.startswith("/download/")]) == 8
        assert len(_served(ia)) == 8
        assert ia.max_in_flight <= 3  # never more downloads than workers
        assert not list((data_dir / "store").rglob("*.part"))
        ia.requests.clear()
        again = fetch(mirror, workers=3)
        assert again["fetched"] == 0 and again["considered"] == 0 and ia.requests == []


def test_most_popular_items_first(ia, write_manifest):
    make_ia_archive(
        ia,
        [
            {"identifier": "quiet", "downloads": 3},
            {"identifier": "loud", "downloads": 900},
            {"identifier": "middle", "downloads": 50},
        ],
        kinds=("mp3",),
    )
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        harvest(mirror)
        fetch(mirror, workers=1)
    order = [r.path.split("/")[2] for r in _served(ia)]
    assert order == ["loud", "middle", "quiet"]


def test_resume_after_reset_uses_range(ia, write_manifest, data_dir):
    path = _harvested(ia, write_manifest, n=2, kinds=("flac",), seconds=1.0)
    ia.fault("reset", path="/serve/item-000/item-000-01.flac")
    with open_mirror(path) as mirror:
        result = fetch(mirror, workers=1)
        assert result["fetched"] == 2 and result["failed"] == 0
    hits = [r for r in _served(ia) if r.path == "/serve/item-000/item-000-01.flac"]
    assert len(hits) == 2 and hits[0].range is None
    data = ia.file_bytes("item-000", "item-000-01.flac")
    start = int(hits[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start < len(data)  # resumed where the reset left it, not from zero
    assert (data_dir / "store/ia/item-000/item-000-01.flac").read_bytes() == data


def test_429_and_503_are_retried(ia, write_manifest):
    path = _harvested(ia, write_manifest, n=2, kinds=("mp3",))
    ia.fault("429", path="/download/item-000/*", retry_after=1)
    ia.fault("503", path="/serve/item-001/*", times=2)
    with open_mirror(path) as mirror:
        result = fetch(mirror, workers=2)
        assert result["fetched"] == 2 and result["failed"] == 0
    paths = [r.path for r in ia.requests]
    assert paths.count("/download/item-000/item-000-01.mp3") == 2
    assert paths.count("/serve/item-001/item-001-01.mp3") == 3


def test_wrong_bytes_never_promoted(ia, write_manifest, data_dir, cli):
    path = _harvested(ia, write_manifest, n=2, kinds=("flac",))
    ia.fault("wrong", path="/serve/item-001/item-001-01.flac", times=None)
    r = cli("fetch", str(path), "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fetched"] == 1 and doc["failed"] == 1
    assert doc["failures"] == [
        {"source_id": "item-001", "name": "item-001-01.flac", "reason": "md5 mismatch"}
    ]
    assert not (data_dir / "store/ia/item-001").exists() or not any(
        (data_dir / "store/ia/item-001").iterdir()
    )
    bad = data_dir / "quarantine/ia/item-001/item-001-01.flac"
    assert bad.read_bytes() != ia.file_bytes("item-001", "item-001-01.flac")
    assert json.loads(bad.with_name(bad.name + ".reason.json").read_text())["reason"] == (
        "md5 mismatch"
    )
    with open_mirror(path) as mirror:
        row = _files(mirror)[("item-001", "item-001-01.flac")]
        assert row["status"] == "failed" and row["reason"] == "md5 mismatch"
    # Two full downloads, then it gave up.
    assert len([x for x in _served(ia) if x.path.startswith("/serve/item-001/")]) == 2


def _bad_file_runs(cli, path, ia, *args):
    """Run fetch; return (exit code, summary, downloads of the bad file in that run)."""
    ia.requests.clear()
    r = cli("fetch", str(path), "--json", *args)
    tries = len([x for x in _served(ia) if x.path.startswith("/serve/item-001/")])
    return r.returncode, json.loads(r.stdout), tries


def _age_last_attempt(path, hours):
    with open_mirror(path) as mirror, transaction(mirror.db):
        mirror.db.execute(
            "UPDATE files SET last_attempt = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?)"
            " WHERE status = 'failed'",
            (f"-{hours * 60} minutes",),
        )


def test_a_file_that_keeps_failing_backs_off(ia, write_manifest, cli):
    path = _harvested(ia, write_manifest, n=2, kinds=("flac",))
    ia.fault("wrong", path="/serve/item-001/item-001-01.flac", times=None)  # stale metadata
    code, doc, tries = _bad_file_runs(cli, path, ia)
    assert (code, doc["failed"], doc["deferred"], tries) == (1, 1, 0, 2)
    # One failure may be a passing fault: the next run tries again.
    code, doc, tries = _bad_file_runs(cli, path, ia)
    assert (code, doc["failed"], doc["deferred"], tries) == (1, 1, 0, 2)
    # Failed twice in a row: the next cron run leaves it alone (1 h); deferred is not a
    # failure (exit 0).
    code, doc, tries = _bad_file_runs(cli, path, ia)
    assert (code, doc["failed"], doc["deferred"], tries) == (0, 0, 1, 0)
    with open_mirror(path) as mirror:
        row = _files(mirror)[("item-001", "item-001-01.flac")]
        assert row["status"] == "failed" and row["fail_streak"] == 2
    # --retry-failed ignores the backoff; a third failed run doubles it (2 h).
    code, doc, tries = _bad_file_runs(cli, path, ia, "--retry-failed")
    assert (code, doc["failed"], doc["deferred"], tries) == (1, 1, 0, 2)
    _age_last_attempt(path, 1.5)
    code, doc, tries = _bad_file_runs(cli, path, ia)
    assert (code, doc["deferred"], tries) == (0, 1, 0)
    # Once the backoff has passed, it is tried again (and now the bytes are right).
    ia.clear_faults()
    _age_last_attempt(path, 2.1)
    code, doc, tries = _bad_file_runs(cli, path, ia)
    assert (code, doc["fetched"], doc["deferred"], tries) == (0, 1, 0, 1)
    with open_mirror(path) as mirror:
        row = _files(mirror)[("item-001", "item-001-01.flac")]
        assert row["status"] == "fetched" and row["fail_streak"] == 0
    r = cli("fetch", "--help")
    assert "--retry-failed" in r.stdout and "7 days" in r.stdout


def test_backoff_doubles_and_is_capped():
    hours = [fetch_module.backoff_delay(n).total_seconds() / 3600 for n in range(0, 10)]
    assert hours == [0, 0, 1, 2, 4, 8, 16, 32, 64, 128]
    assert fetch_module.backoff_delay(10).days == 7  # 256 h: capped
    assert fetch_module.backoff_delay(10_000).days == 7


def test_budget_stops_before_passing_it(ia, write_manifest, data_dir, cli):
    path = _harvested(ia, write_manifest, n=5, kinds=("flac", "mp3"))
    with open_mirror(path) as mirror:
        rows = mirror.db.execute(
            "SELECT f.size FROM files f JOIN items i ON i.id = f.item_id"
            " ORDER BY i.popularity DESC, i.source_id, f.name"
        ).fetchall()
    sizes = [r[0] for r in rows]
    budget = sum(sizes[:3]) + sizes[3] // 2  # room for three files and half of the fourth
    r = cli("fetch", str(path), "--json", "--max-bytes", str(budget))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fetched"] == 3 and doc["skipped_budget"] == 7
    assert doc["bytes"] == doc["store_bytes"] == sum(sizes[:3]) <= budget
    assert sum(p.stat().st_size for p in _store_files(data_dir)) <= budget
    with open_mirror(path) as mirror:
        statuses = [f["status"] for f in _files(mirror).values()]
        assert statuses.count("pending") == 7
    # The cap is per run: the same cap again downloads up to that much more.
    r = cli("fetch", str(path), "--json", "--max-bytes", str(budget))
    doc = json.loads(r.stdout)
    fits = next((n for n in range(3, 10) if sum(sizes[3 : n + 1]) > budget), 10)
    assert doc["fetched"] == fits - 3 > 0 and doc["bytes"] == sum(sizes[3:fits]) <= budget
    assert doc["store_bytes"] == sum(sizes[:fits])
    r = cli("fetch", str(path), "--json", "--max-bytes", "1GiB")
    assert json.loads(r.stdout)["fetched"] == 10 - fits
    r = cli("fetch", str(path), "--max-bytes", "lots")
    assert r.returncode == 2 and "lots" in r.stderr


def test_hostile_names_refused_and_nothing_written_outside(ia, write_manifest, tmp_path):
    song = audio_bytes("mp3", seed=3)
    hostile = [
        "../../../../escaped.mp3",
        "/tmp/absolute.mp3",
        "ok/../../../up.mp3",
        "bell\x07.mp3",
        "nul\x00.mp3",
        "back\\slash.mp3",
    ]
    make_ia_archive(
        ia,
        [{"identifier": "evil", "kinds": ("mp3",), "extra_files": dict.fromkeys(hostile, song)}],
    )
    before = {p for p in tmp_path.rglob("*")}
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        harvest(mirror)
        result = fetch(mirror)
        files = _files(mirror)
    assert result["fetched"] == 1 and result["failed"] == 0
    for name in hostile:
        row = files[("evil", name)]
        assert row["status"] == "refused" and row["reason"].startswith("unsafe name")
        assert row["store_path"] is None
    assert not any("escaped" in r.path or "absolute" in r.path for r in ia.requests)
    assert not Path("/tmp/absolute.mp3").exists()
    created = {p for p in tmp_path.rglob("*")} - before
    data = tmp_path / "data"
    assert all(p == data or data in p.parents or p.name == "mirror.toml" for p in created)


def test_symlink_in_store_cannot_lead_outside(ia, write_manifest, data_dir, tmp_path):
    path = _harvested(ia, write_manifest, n=1, kinds=("mp3",))
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "store/ia").mkdir(parents=True)
    (data_dir / "store/ia/item-000").symlink_to(outside)
    with open_mirror(path) as mirror:
        result = fetch(mirror)
    assert result["fetched"] == 0 and result["failed"] == 1
    assert list(outside.iterdir()) == []


def _local_item(mirror, files):
    """An item whose files come from file:// and zip:// URLs (as the FMA harvest records)."""
    now = utcnow()
    with transaction(mirror.db):
        cur = mirror.db.execute(
            "INSERT INTO items (source, source_id, title, popularity, first_seen, harvested_at)"
            " VALUES ('fma', '000002', 'Food', 10, ?, ?)",
            (now, now),
        )
        for name, url, size, md5, sha1 in files:
            mirror.db.execute(
                "INSERT INTO files (item_id, name, url, size, md5, sha1) VALUES (?, ?, ?, ?, ?, ?)",
                (cur.lastrowid, name, url, size, md5, sha1),
            )


def test_file_and_zip_sources(tmp_path, write_manifest, data_dir):
    src = tmp_path / "fma"
    src.mkdir()
    ogg, flac = audio_bytes("ogg", seed=1), audio_bytes("flac", seed=2)
    (src / "a.ogg").write_bytes(ogg)
    archive = tmp_path / "fma full.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("000/000002 b.flac", flac)
        zf.writestr("000/000003.flac", flac)
    zurl = f"zip://{quote(str(archive))}#{quote('000/000002 b.flac')}"
    sha1 = hashlib.sha1(flac).hexdigest()
    path = write_manifest(
        f'[[source]]\nkind = "fma"\nmetadata = "{archive}"\naudio_root = "{src}"\n'
    )
    with open_mirror(path) as mirror:
        _local_item(
            mirror,
            [
                ("a.ogg", (src / "a.ogg").as_uri(), None, None, None),
                ("b.flac", zurl, None, None, sha1),
                ("c.flac", f"zip://{quote(str(archive))}#000/000003.flac", None, None, "0" * 40),
                ("d.flac", (src / "missing.flac").as_uri(), None, None, None),
                ("e.flac", f"zip://{quote(str(archive))}#nope.flac", None, None, None),
            ],
        )
        result = fetch(mirror, workers=2)
        files = {name: row for (_, name), row in _files(mirror).items()}
    assert result["fetched"] == 2 and result["failed"] == 3
    assert (data_dir / "store/fma/000002/a.ogg").read_bytes() == ogg
    assert (data_dir / "store/fma/000002/b.flac").read_bytes() == flac
    # What the source did not give is filled in from the verified bytes.
    assert files["a.ogg"]["md5"] == hashlib.md5(ogg).hexdigest()
    assert files["a.ogg"]["size"] == len(ogg) and files["b.flac"]["sha1"] == sha1
    assert files["c.flac"]["reason"] == "sha1 mismatch"
    assert files["d.flac"]["reason"] == "source file missing"
    assert files["e.flac"]["reason"] == "zip member missing"
    assert not (data_dir / "store/fma/000002/c.flac").exists()


def test_crash_after_rename_is_adopted_without_download(ia, write_manifest):
    path = _harvested(ia, write_manifest, n=2, kinds=("mp3",))
    with open_mirror(path) as mirror:
        fetch(mirror)
        # As if killed between the rename and the catalogue update.
        with transaction(mirror.db):
            mirror.db.execute("UPDATE files SET status = 'pending', store_path = NULL")
        ia.requests.clear()
        result = fetch(mirror)
    assert result["fetched"] == result["adopted"] == 2 and ia.requests == []


def _early(part: Path, ia: IAServer) -> bool:
    try:
        have = part.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return False
    return 0 < have < len(ia.file_bytes(part.parent.name, part.name[:-5])) // 2


def test_kill_9_mid_fetch_then_clean_run(write_manifest, data_dir, cli):
    with IAServer(bandwidth=300_000) as ia:
        path = _harvested(ia, write_manifest, n=6, kinds=("wav",), seconds=1.0)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccmirror", "fetch", str(path), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        parts: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            # A download well under way but far from done, so it is still partial at the kill.
            parts = [p for p in (data_dir / "store").rglob("*.part") if _early(p, ia)]
            done = [p for p in _store_files(data_dir) if p.suffix != ".part"]
            if parts and done:
                break
            time.sleep(0.02)
        assert parts, "the fetch never got under way"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # Whatever is in the store proper (not .part) is complete and verified.
        for p in _store_files(data_dir):
            if p.suffix != ".part":
                ident, name = p.parent.name, p.name
                assert p.read_bytes() == ia.file_bytes(ident, name)
        ia.requests.clear()
        r = cli("fetch", str(path), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["failed"] == 0
        # At least one interrupted download was resumed, not restarted.
        assert any(x.range for x in _served(ia))
        stored = _store_files(data_dir)
        assert len(stored) == 6 and not [p for p in stored if p.suffix == ".part"]
        for p in stored:
            assert p.read_bytes() == ia.file_bytes(p.parent.name, p.name)


def test_sigterm_stops_cleanly_and_the_next_run_resumes(write_manifest, data_dir, cli):
    with IAServer(bandwidth=300_000) as ia:
        path = _harvested(ia, write_manifest, n=3, kinds=("wav",), seconds=1.0)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccmirror", "fetch", str(path), "--workers", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if [p for p in (data_dir / "store").rglob("*.part") if _early(p, ia)]:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        assert err.strip() == "ccmirror: stopped by signal 15"
        assert list((data_dir / "store").rglob("*.part"))  # kept for resuming
        ia.requests.clear()
        r = cli("fetch", str(path), "--json")  # the lock was released
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["fetched"] == 3
        assert [x.range for x in _served(ia) if x.range]  # the interrupted one resumed


def test_a_host_that_stopped_answering_is_exit_4_and_files_stay_pending(write_manifest):
    ia = IAServer().start()
    path = _harvested(ia, write_manifest, n=12, kinds=("mp3",))
    url = ia.url
    ia.stop()  # the port closes: every connection is refused
    with open_mirror(path) as mirror:
        with pytest.raises(SourceUnreachable) as e:
            fetch(mirror, workers=2)
        assert e.value.message.startswith(f"cannot reach {url} (connection refused): nothing")
        failed = [f for f in _files(mirror).values() if f["status"] == "failed"]
        assert {f["reason"] for f in failed} == {
            f"connection refused after {transport.HTTP_ATTEMPTS} tries"
        }
        # A host that never answered is not the files' fault: no backoff, tried next run.
        assert {f["fail_streak"] for f in failed} == {0}
        with pytest.raises(SourceUnreachable):
            fetch(mirror, workers=2)
        statuses = [f["status"] for f in _files(mirror).values()]
    # A few files were tried (5 in a row, plus those already under way on the 2 workers)
    # and failed; the rest were not hammered and stay pending.
    assert 5 <= statuses.count("failed") <= 5 + 2 * 2
    assert statuses.count("pending") == 12 - statuses.count("failed")


def test_same_archive_at_a_new_endpoint_is_unchanged_and_fetched_from_there(write_manifest):
    # As `ccmirror demo` run twice: the same sample, served again on another port.
    with IAServer() as first:
        path = _harvested(first, write_manifest, n=3, kinds=("mp3",))
    with IAServer() as second:
        make_ia_archive(second, 3, kinds=("mp3",))
        ia_manifest(write_manifest, second)  # the manifest now names the new endpoint
        with open_mirror(path) as mirror:
            again = harvest(mirror)
            assert again["found"] == 3 and again["unchanged"] == 3
            assert not [r for r in second.requests if r.path.startswith("/metadata/")]
            result = fetch(mirror, workers=2)
            assert result["fetched"] == 3 and result["failed"] == 0
            urls = {f["url"] for f in _files(mirror).values()}
        assert all(u.startswith(second.url + "/download/") for u in urls)
        assert len(_served(second)) == 3


_VERIFY = """
import hashlib, json, sqlite3, sys
from pathlib import Path
data = Path(sys.argv[1])
db = sqlite3.connect(data / "catalogue.sqlite")
rows = db.execute("SELECT status, store_path, md5, fail_streak FROM files").fetchall()
bad = [p for s, p, md5, _ in rows if s == "fetched"
       and hashlib.md5((data / p).read_bytes()).hexdigest() != md5]
print(json.dumps({"status": sorted(r[0] for r in rows), "bad": bad,
                  "streaks": sorted({r[3] for r in rows})}))
"""


def test_a_full_disk_stops_the_run_and_loses_nothing(ia, write_manifest, data_dir, tmp_path):
    """A real full filesystem: a small tmpfs on the store, in a private mount namespace."""
    path = _harvested(ia, write_manifest, n=6, kinds=("wav",), seconds=0.5)  # ~96 KB each
    store = data_dir / "store"
    store.mkdir(exist_ok=True)
    out = tmp_path / "out"
    out.mkdir()
    py = sys.executable
    script = f"""
mount -t tmpfs -o size=256k tmpfs '{store}' || exit 99
'{py}' -m ccmirror fetch '{path}' --workers 1 > '{out}/1.out' 2> '{out}/1.err'
echo $? > '{out}/1.rc'
'{py}' -c '{_VERIFY}' '{data_dir}' > '{out}/1.json'
mount -o remount,size=64m '{store}'
'{py}' -m ccmirror fetch '{path}' --json > '{out}/2.out' 2> '{out}/2.err'
echo $? > '{out}/2.rc'
'{py}' -c '{_VERIFY}' '{data_dir}' > '{out}/2.json'
"""
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], timeout=300, capture_output=True)
    assert r.returncode == 0, r.stderr
    first = json.loads((out / "1.json").read_text())
    err = (out / "1.err").read_text().strip().splitlines()
    assert (out / "1.rc").read_text().strip() == "1"
    assert err[-1].startswith("ccmirror: fetch stopped: No space left on device"), err
    # Some fitted; the rest wait as they were, with no backoff, and nothing stored is corrupt.
    assert 0 < first["status"].count("fetched") < 6 and "failed" not in first["status"]
    assert first["bad"] == [] and first["streaks"] == [0]
    # With room again, the next run finishes the job.
    assert (out / "2.rc").read_text().strip() == "0", (out / "2.err").read_text()
    second = json.loads((out / "2.json").read_text())
    assert second["status"] == ["fetched"] * 6 and second["bad"] == []


def test_a_slow_catalogue_writer_lets_no_more_files_try_a_host_given_up(
    write_manifest, monkeypatch
):
    # On a loaded machine the run's thread (it writes the catalogue) may lag far behind the
    # download threads: the host is still given up after 5 files in a row, and then only
    # the other download already in flight (2 workers) may fail as well.
    ia = IAServer().start()
    path = _harvested(ia, write_manifest, n=16, kinds=("mp3",))
    ia.stop()
    record = fetch_module._record

    def slow_record(*args, **kwargs):
        time.sleep(0.3)  # a busy machine's catalogue writer; nothing is timed
        return record(*args, **kwargs)

    monkeypatch.setattr(fetch_module, "_record", slow_record)
    with open_mirror(path) as mirror:
        with pytest.raises(SourceUnreachable):
            fetch(mirror, workers=2)
        statuses = [f["status"] for f in _files(mirror).values()]
    after = fetch_module.UNREACHABLE_AFTER
    assert after <= statuses.count("failed") <= after + 1
    assert statuses.count("pending") == 16 - statuses.count("failed")
