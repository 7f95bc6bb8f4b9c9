"""`ccmirror demo`: the whole job on the built-in sample archive, served on loopback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import libtorrent as lt

from ccmirror.sample.demo_items import SPECS, build_sample

ROOT = Path(__file__).resolve().parent.parent


def _db(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{data_dir / 'catalogue.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def test_sample_is_real_audio_with_the_promised_problems(tmp_path):
    import mutagen

    items = build_sample(tmp_path / "s")
    assert [i.identifier for i in items] == [s.identifier for s in SPECS]
    downloads = [i.downloads for i in items]
    assert downloads == sorted(downloads, reverse=True) and downloads[0] > 10 * downloads[4]
    kinds = {type(mutagen.File(f.path)).__name__ for i in items for f in i.files if f.size > 64}
    assert {"FLAC", "OggVorbis", "OggOpus", "MP3", "WAVE"} <= kinds
    expects = {i.expect for i in items}
    assert {"conflict", "unreadable", "refused", "excluded", "unsafe-name"} <= expects
    # Built once per folder: a second build serves the same bytes (Ogg serials are random).
    again = build_sample(tmp_path / "s")
    assert [f.md5 for i in again for f in i.files] == [f.md5 for i in items for f in i.files]


def test_demo_json_then_rerun(cli, tmp_path):
    folder = tmp_path / "demo"
    r = cli("demo", str(folder), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # Nothing written outside DIR.
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    assert out["server"].startswith("http://127.0.0.1:")
    assert out["sync"]["exit_code"] == 0 and set(out["sync"]["stages"]) == {
        "harvest",
        "fetch",
        "check",
        "compact",
        "pack",
        "publish",
    }
    assert len(out["tiers"]) >= 3
    sealed = [p for p in out["packs"] if p["status"] == "sealed"]
    assert len({p["tier"] for p in sealed}) >= 3
    assert out["magnet"]["magnet_link"].startswith("magnet:?xt=urn:btih:")
    assert "Harbour Lights" in out["attribution"]["head"]
    assert Path(out["index_html"]).is_file()
    assert Path(out["manifest"]).read_text().count("127.0.0.1") >= 2

    data = folder / "data"
    db = _db(data)
    item = {
        r["source_id"]: r
        for r in db.execute("SELECT id, source_id, status, reason FROM items WHERE source = 'ia'")
    }
    assert item["demo-loop-kit"]["status"] == "refused"  # Sampling 1.0
    assert item["demo-78rpm-transfer"]["status"] == "refused"
    assert "78rpm" in item["demo-78rpm-transfer"]["reason"]
    files = {
        (r["source_id"], r["name"]): r
        for r in db.execute(
            "SELECT i.source_id, f.id, f.name, f.status, f.verdict FROM files f"
            " JOIN items i ON i.id = f.item_id"
        )
    }
    packed = {r[0] for r in db.execute("SELECT file_id FROM pack_files")}
    assert files[("demo-mixed-tape", "side-b.mp3")]["verdict"] == "conflict"
    assert files[("demo-broken-upload", "truncated.flac")]["verdict"] == "unreadable"
    assert files[("demo-hostile-names", "../../../escape.ogg")]["status"] == "refused"
    for name in ("cellar-1.mp3", "cellar-2.mp3"):  # NC: fine by default
        assert files[("demo-cellar-sessions", name)]["id"] in packed
    for key in (("demo-mixed-tape", "side-b.mp3"), ("demo-broken-upload", "truncated.flac")):
        assert files[key]["id"] not in packed
    assert not list(data.rglob("escape.ogg"))
    db.close()

    # A real torrent, payload on disk beside it.
    first = sealed[0]
    raw = (data / first["torrent_path"]).read_bytes()
    info = lt.torrent_info(lt.bdecode(raw))
    assert info.name() == first["name"] and str(info.info_hash()) == first["info_hash_v1"]
    entries = lt.bdecode(raw)[b"info"][b"files"]
    paths = {"/".join([first["name"], *(p.decode() for p in f[b"path"])]) for f in entries}
    assert f"{first['name']}/ATTRIBUTION.md" in paths
    for p in paths:
        assert (data / "packs" / p).is_file(), p

    # Re-running in the same folder is fine and keeps the sealed packs as they were.
    r = cli("demo", str(folder), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert [(p["name"], p["info_hash_v1"]) for p in again["packs"]] == [
        (p["name"], p["info_hash_v1"]) for p in out["packs"]
    ]


def test_demo_default_dir_prints_what_to_look_at(cli, tmp_path):
    r = cli("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ccmirror-demo" / "demo.toml").is_file()
    text = r.stdout
    for needle in (
        "tier",
        "demo-t1-0001",
        "magnet:?xt=urn:btih:",
        "ATTRIBUTION.md",
        "index.html",
        "Try next",
        "ccmirror status",
        "conflict",
        "unreadable",
    ):
        assert needle in text, needle
    # The printed next steps work on the demo mirror.
    manifest = str(tmp_path / "ccmirror-demo" / "demo.toml")
    r = cli("sync", manifest, "--dry-run", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["stages"]
    assert plan["fetch"]["pending_files"] == 0 and plan["check"]["files_to_check"] == 0


_GUARD = """
import socket

_LOG = {log!r}
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _note(what):
    with open(_LOG, "a") as f:
        f.write(repr(what) + "\\n")


_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and host not in _LOOPBACK:
        _note(("connect", address))
        raise OSError("network disabled by test_demo")
    return _connect(self, address)


def getaddrinfo(host, *args, **kw):
    if host not in _LOOPBACK and host is not None:
        _note(("getaddrinfo", host))
        raise socket.gaierror("network disabled by test_demo")
    return _getaddrinfo(host, *args, **kw)


socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
"""


def _network_guard(tmp_path: Path) -> tuple[Path, Path]:
    """A folder for PYTHONPATH whose sitecustomize refuses every connection or name lookup
    beyond loopback, and the log it writes each attempt to."""
    guard = tmp_path / "guard"
    guard.mkdir()
    log = tmp_path / "attempts.log"
    (guard / "sitecustomize.py").write_text(_GUARD.format(log=str(log)))
    return guard, log


def test_demo_needs_no_network(cli, tmp_path):
    # Every connection or name lookup beyond loopback fails and is written down.
    guard, log = _network_guard(tmp_path)
    r = cli("demo", str(tmp_path / "d"), "--json", env={"PYTHONPATH": str(guard)})
    assert r.returncode == 0, r.stderr
    assert not log.exists(), log.read_text()
    assert json.loads(r.stdout)["magnet"]["magnet_link"].startswith("magnet:")
    # The guard works: a lookup of a real host is refused and recorded.
    probe = "import socket\ntry: socket.getaddrinfo('archive.org', 443)\nexcept OSError: pass"
    subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(guard)}, check=True)
    assert "archive.org" in log.read_text()


def test_pip_install_then_the_console_script_runs_the_demo_offline(tmp_path):
    # `pip install .` then `ccmirror demo`: the wheel of this tree (built with no index and
    # no build isolation, so no network), installed on its own, its console script run
    # under the network guard. The sample must ship in the package, not only in src/.
    tree = tmp_path / "tree"
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__")
    shutil.copytree(ROOT / "src", tree / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    pip = [sys.executable, "-m", "pip", "-q", "--no-input"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, tree],
        check=True,
    )
    (wheel,) = wheels.glob("ccmirror-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", site, wheel], check=True
    )
    guard, log = _network_guard(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CCMIRROR_DATA_DIR"}
    env["PYTHONPATH"] = f"{site}{os.pathsep}{guard}"
    # The installed copy is what runs, not the source tree.
    where = subprocess.run(
        [sys.executable, "-c", "import ccmirror.sample.archive as a; print(a.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)
    r = subprocess.run(
        [site / "bin" / "ccmirror", "demo", tmp_path / "d", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert not log.exists(), log.read_text()
    out = json.loads(r.stdout)
    assert out["exit_code"] == 0
    assert out["magnet"]["magnet_link"].startswith("magnet:")


def test_demo_refuses_a_folder_with_someone_elses_files(cli, tmp_path):
    (tmp_path / "demo.toml").write_text("# my own manifest\n")
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "holiday.jpg").write_bytes(b"mine")
    r = cli("demo", str(tmp_path))
    assert r.returncode == 2
    assert "demo.toml" in r.stderr and "sample" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "demo.toml").read_text() == "# my own manifest\n"
    assert (tmp_path / "sample" / "holiday.jpg").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.toml", "sample"]
