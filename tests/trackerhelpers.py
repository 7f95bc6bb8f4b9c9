"""Helpers for the seeding tests: a real opentracker, sealed packs, a web-seed server.

opentracker (Debian) refuses to run as root, so it is started as nobody:nogroup with
setpriv; its whitelist (-w) names the info-hashes it tracks and must be readable by nobody.
`make_sealed_pack` builds a pack the way the pack builder lays it out on disk (real audio
under `packs/<name>/<source>/<item>/`, an ATTRIBUTION.md, a v1 torrent in `torrents/`, a
`packs` row), so the seeder is tested on its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import libtorrent as lt

from ccmirror import catalogue
from ccmirror.sample.audio import write_audio


def free_port() -> int:
    """A TCP port that is free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def aria2c_download(torrent: Path, out: Path) -> subprocess.CompletedProcess:
    """aria2c fetches one torrent into `out` from its trackers and web seeds only (no DHT,
    no local discovery, no PEX) and stops once complete."""
    return subprocess.run(
        [
            shutil.which("aria2c") or "aria2c",
            "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--seed-time=0", "--bt-stop-timeout=60",
            "--follow-torrent=false", "--console-log-level=warn", "--summary-interval=0",
            f"--listen-port={free_port()}", "-d", str(out), str(torrent),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def loopback_session(**settings) -> lt.session:
    """A libtorrent session on 127.0.0.1 that finds peers only through trackers and web
    seeds: no DHT, LSD, UPnP or NAT-PMP. `settings` adds to or overrides those."""
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            **settings,
        }
    )


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def opentracker(
    info_hashes: Sequence[str], port: int | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Run opentracker on `host` (`port`, default a free one) as nobody; yield its
    announce URL. Only the whitelisted info-hashes (hex) are tracked."""
    binary = shutil.which("opentracker")
    if binary is None:
        raise RuntimeError("opentracker is not installed (apt-get install opentracker)")
    folder = Path(tempfile.mkdtemp(prefix="ccmirror-tracker-"))
    folder.chmod(0o755)
    whitelist = folder / "whitelist"
    whitelist.write_text("".join(h.lower() + "\n" for h in info_hashes), encoding="ascii")
    whitelist.chmod(0o644)
    port = port or free_port()
    cmd = [binary, "-i", host, "-p", str(port), "-P", str(port), "-w", str(whitelist)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    proc = subprocess.Popen(
        cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://{host}:{port}/announce"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"opentracker exited: {proc.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers (stats are for admins only)
            except OSError:
                return False

        wait_for(up, 10, "opentracker to listen")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def announce_seeder(tracker_url: str, btih: str, port: int = 51413) -> bool:
    """Announce a finished peer over HTTP (a fake seeder, to move scrape counts); False
    until the tracker accepts the hash."""
    q = urllib.parse.urlencode(
        {
            "info_hash": bytes.fromhex(btih),
            "peer_id": f"-CC0001-{port:012d}".encode(),
            "port": port,
            "uploaded": 0,
            "downloaded": 0,
            "left": 0,
            "event": "completed",
            "compact": 1,
        },
        quote_via=urllib.parse.quote,  # a 0x20 byte as %20: opentracker reads "+" as itself
    )
    try:
        with urllib.request.urlopen(f"{tracker_url}?{q}", timeout=2) as resp:
            return b"failure reason" not in resp.read()
    except (urllib.error.URLError, OSError):
        return False


class _RangeHandler(SimpleHTTPRequestHandler):
    """http.server's file handler plus single byte ranges (BEP 19 clients ask for pieces)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_head(self):  # type: ignore[override]
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not rng.startswith("bytes=") or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, _, last = rng[6:].split(",")[0].partition("-")
        start = int(first) if first else max(0, size - int(last))
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size or start > end:
            self.send_error(416)
            return None
        f = open(path, "rb")  # noqa: SIM115 -- closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


@contextlib.contextmanager
def web_seed_server(root: Path, port: int = 0) -> Iterator[str]:
    """python's http.server over `root` on 127.0.0.1 (`port`, default any free one);
    yields the base URL (ending in /)."""
    handler = functools.partial(_RangeHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class SeedProcess:
    """`ccmirror seed --json` as a real child process, its JSON status lines read by a thread."""

    def __init__(self, manifest: Path, *args: str, status_interval: float = 0.2) -> None:
        env = dict(os.environ)
        env.pop("CCMIRROR_DATA_DIR", None)
        cmd = [
            sys.executable, "-m", "ccmirror", "seed", str(manifest), "--json",
            "--interface", "127.0.0.1", "--port", "0", "--no-dht",
            "--status-interval", str(status_interval), "--rescan-interval", "0.5", *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        self.stderr = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_status(self, predicate, timeout: float, what: str) -> dict:
        """The first status line (new or already seen) for which `predicate` holds."""
        for s in self.seen:
            if predicate(s):
                return s
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(
                    f"seed exited {self.proc.returncode}: {self.proc.stderr.read()}"
                )
            try:
                s = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.seen.append(s)
            if predicate(s):
                return s

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the seeder and wait for it; returns its exit code, keeps its last lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("seed did not stop within its deadline") from None
        self.stderr = self.proc.stderr.read()
        self.reader.join(5)  # stdout is closed: the reader has queued every line
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return rc

    def __enter__(self) -> SeedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def make_sealed_pack(
    data_dir: Path,
    name: str,
    *,
    tier: int = 1,
    seq: int = 1,
    files: int = 2,
    seconds: float = 2.0,
    seed: int = 0,
    trackers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
    piece_size: int = 16 * 1024,
) -> dict:
    """Lay out a sealed pack under `data_dir` and record it in the catalogue.

    Returns {name, info_hash, torrent_path, files: {relpath inside packs/: bytes}}.
    """
    packs = data_dir / "packs"
    root = packs / name
    for i in range(files):
        write_audio(
            root / "ia" / f"item-{name}" / f"track{i:02d}.flac",
            seconds=seconds,
            seed=seed * 100 + i,
            tags={"title": f"Track {i}", "license": "https://creativecommons.org/licenses/by/4.0/"},
        )
    (root / "ATTRIBUTION.md").write_text(f"# {name}\n\nunmodified copies\n", encoding="utf-8")
    ct = lt.create_torrent(lt.list_files(str(root)), piece_size, lt.create_torrent.v1_only)
    for tier_no, url in enumerate(trackers):
        ct.add_tracker(url, tier_no)
    for url in web_seeds:
        ct.add_url_seed(url)
    ct.set_creator("ccmirror tests")
    lt.set_piece_hashes(ct, str(packs))
    data = lt.bencode(ct.generate())
    torrent_rel = f"torrents/{name}.torrent"
    (data_dir / "torrents").mkdir(parents=True, exist_ok=True)
    (data_dir / torrent_rel).write_bytes(data)
    ti = lt.torrent_info(lt.bdecode(data))
    info_hash = str(ti.info_hashes().v1)
    conn = catalogue.connect(data_dir / "catalogue.sqlite")
    try:
        with catalogue.transaction(conn):
            conn.execute(
                "INSERT INTO packs (name, tier, seq, status, created_at, sealed_at, format,"
                " piece_size, info_hash_v1, torrent_path, torrent_size, num_files, data_size)"
                " VALUES (?, ?, ?, 'sealed', ?, ?, 'v1', ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    tier,
                    seq,
                    catalogue.utcnow(),
                    catalogue.utcnow(),
                    piece_size,
                    info_hash,
                    torrent_rel,
                    len(data),
                    files + 1,
                    ti.total_size(),
                ),
            )
    finally:
        conn.close()
    payload = {
        str(p.relative_to(packs)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    return {"name": name, "info_hash": info_hash, "torrent_path": torrent_rel, "files": payload}


def mark_obsolete(data_dir: Path, name: str) -> None:
    conn = catalogue.connect(data_dir / "catalogue.sqlite")
    try:
        with catalogue.transaction(conn):
            conn.execute(
                "UPDATE packs SET obsolete = 1, obsolete_reason = 'test' WHERE name = ?", (name,)
            )
    finally:
        conn.close()


def payload_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


__all__ = [
    "announce_seeder",
    "free_port",
    "make_sealed_pack",
    "mark_obsolete",
    "opentracker",
    "payload_of",
    "wait_for",
    "web_seed_server",
]
