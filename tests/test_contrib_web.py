"""contrib/'s nginx site and Caddyfile, run for real on loopback: they serve public/ and
the packs (the BEP 19 web seed) with Range, the right types and caching, and nothing else
of the data dir."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from ccmirror.packs import pack
from ccmirror.publish.run import publish
from packhelpers import add_file, add_item, make_mirror

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"
PLACEHOLDER = "/var/lib/ccmirror/netlabels"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    m = make_mirror(tmp, pack_size="100MiB", shares=(1.0,))
    add_file(m, add_item(m, "ia", "one", popularity=3), "song.flac", seed=1)
    pack(m, seal_partial=True)
    publish(m)
    (m.quarantine_dir / "ia").mkdir(parents=True, exist_ok=True)
    (m.quarantine_dir / "ia" / "secret.mp3").write_bytes(b"all rights reserved")
    (name,) = [p.name for p in m.packs_dir.iterdir() if p.name.startswith("test-t1-")]
    audio = next((m.packs_dir / name).rglob("song.flac"))
    yield {"m": m, "pack": name, "audio": audio, "tmp": tmp}
    m.close()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(base: str, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            requests.get(base, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)  # waiting for a port to open, not a timing assertion
    raise AssertionError("server did not start")


def _nginx(site, tmp: Path, port: int) -> subprocess.Popen:
    conf = (CONTRIB / "nginx" / "ccmirror.conf").read_text()
    conf = conf.replace(PLACEHOLDER, str(site["m"].data_dir))
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;", "")
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read a 0700 tmp dir
    main = tmp / "nginx.conf"
    main.write_text(
        f"{user}\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        "events {}\nhttp {\n"
        f"access_log off;\nclient_body_temp_path {tmp}/b;\nproxy_temp_path {tmp}/p;\n"
        f"fastcgi_temp_path {tmp}/f;\nuwsgi_temp_path {tmp}/u;\nscgi_temp_path {tmp}/s;\n"
        f"default_type application/octet-stream;\n{conf}\n}}\n"
    )
    return subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(main), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
        text=True,
    )


def _caddy(site, tmp: Path, port: int) -> subprocess.Popen:
    conf = (CONTRIB / "caddy" / "Caddyfile").read_text()
    conf = conf.replace(PLACEHOLDER, str(site["m"].data_dir))
    conf = conf.replace("mirror.example.org {", f"http://127.0.0.1:{port} {{")
    path = tmp / "Caddyfile"
    path.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + conf)
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)}
    return subprocess.Popen(
        ["caddy", "run", "--config", str(path), "--adapter", "caddyfile"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_web_server_serves_public_and_the_web_seed(site, tmp_path, server):
    if shutil.which(server) is None:
        raise RuntimeError(f"{server} is not installed (apt-get install nginx-light caddy)")
    port = _port()
    proc = (_nginx if server == "nginx" else _caddy)(site, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/", proc)
        m, name = site["m"], site["pack"]
        r = requests.get(base + "/")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert "max-age=300" in r.headers["Cache-Control"] and "Takedown and contact" in r.text
        r = requests.get(f"{base}/packs/{name}.html")
        assert r.status_code == 200 and "song.flac" in r.text
        r = requests.get(base + "/torrents.json")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
        r = requests.get(f"{base}/torrents/{name}.torrent")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/x-bittorrent"
        assert r.content == (m.public_dir / "torrents" / f"{name}.torrent").read_bytes()
        assert "max-age=86400" in r.headers["Cache-Control"]
        # The web seed: <base><pack name>/<path>, with Range.
        rel = site["audio"].relative_to(m.packs_dir).as_posix()
        data = site["audio"].read_bytes()
        r = requests.get(f"{base}/webseed/{rel}", headers={"Range": "bytes=100-1099"})
        assert r.status_code == 206 and r.content == data[100:1100]
        assert r.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
        assert r.headers["Content-Type"] == "audio/flac"
        assert "max-age=604800" in r.headers["Cache-Control"]
        r = requests.get(f"{base}/webseed/{name}/MANIFEST.csv")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
        # Nothing else of the data dir.
        for path in (
            "/catalogue.sqlite",
            "/../catalogue.sqlite",
            "/webseed/../catalogue.sqlite",
            "/webseed/../quarantine/ia/secret.mp3",
            "/quarantine/ia/secret.mp3",
            "/store/",
            "/webseed/",
        ):
            r = requests.get(base + path)
            assert r.status_code in (400, 403, 404), (path, r.status_code)
            assert b"all rights reserved" not in r.content
    finally:
        proc.terminate()
        proc.wait(timeout=30)
