"""Interoperability: what real BitTorrent clients do with ccmirror's v1, hybrid and v2 torrents.

For each format, a small mirror is packed and published by the real pipeline (real audio,
a tracker and a BEP 19 web seed written into every torrent). Then, on loopback only:
- load: transmission-show, `aria2c --show-files` and libtorrent read the pack torrent and
  the metadata torrent (aria2's info-hash compared with ours; libtorrent checks the payload);
- seed: every client installed downloads the tier-1 pack from `ccmirror seed` (a real
  process) through opentracker, web seed switched off; bytes compared with the payload;
  the seeder's `uploaded` counter is read afterwards;
- web seed: the same pack from the web seed alone (no peer), served with Range support.
Clients: libtorrent, aria2c, Transmission (transmission-show, transmission-cli); drivers for
more go in interop_clients.EXTRA_CLIENTS.

    bash bench/interop.sh            # prints the matrix (Markdown) and the notes
    bash bench/interop.sh --json     # the measurements as one JSON document

Takes about three minutes; every process it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import libtorrent as lt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ccmirror.packs import pack  # noqa: E402
from ccmirror.publish.run import publish  # noqa: E402
from interop_clients import (  # noqa: E402
    ARIA2,
    EXTRA_CLIENTS,
    LIBTORRENT,
    TRANSMISSION,
    Result,
    run,
    switchable_web_seed,
)
from packhelpers import sample_mirror  # noqa: E402
from trackerhelpers import SeedProcess, free_port, loopback_session, opentracker  # noqa: E402

FORMATS = ("v1", "hybrid", "v2")
# Transmission 3.00 takes no peer at 127.0.0.0/8 or ::1 ("martian" addresses):
# interop.sh runs this in a network namespace of its own with HOST on its loopback.
HOST = os.environ.get("CCMIRROR_INTEROP_HOST", "127.0.0.1")
TIMEOUT = 45.0  # seconds a client gets for one download on loopback


def payload(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def build(work: Path, fmt: str, announce: str, web_seed: str) -> dict[str, Any]:
    """A packed, published mirror; its tier-1 pack and metadata torrent."""
    (work / fmt).mkdir()
    mirror = sample_mirror(
        work / fmt, name=f"interop-{fmt}", fmt=fmt, trackers=(announce,), web_seeds=(web_seed,)
    )
    pack(mirror, seal_partial=True)
    publish(mirror)
    rows = mirror.db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' AND obsolete = 0 ORDER BY is_metadata, id"
    ).fetchall()
    out = {
        "fmt": fmt,
        "manifest": mirror.manifest.path,
        "data_dir": mirror.data_dir,
        "packs_dir": mirror.packs_dir,
        "hashes": [h for r in rows for h in (r["info_hash_v1"], (r["info_hash_v2"] or "")[:40])],
        "pack": dict(rows[0]),
        "meta": dict(rows[-1]),
    }
    mirror.close()
    return out


# -- load ------------------------------------------------------------------------------


def load_transmission(torrent: Path, row: dict) -> Result:
    r = run(["transmission-show", str(torrent)])
    if r.returncode != 0 or "Error" in r.stdout:
        text = (r.stdout + r.stderr).replace(str(torrent), torrent.name)
        return Result(False, text.strip().splitlines()[-1][:80])
    files = re.search(r"FILES\n\n((?:  .*\n?)+)", r.stdout)
    n = len(files.group(1).strip().splitlines()) if files else 0
    return Result(True, f"{n} files")


def load_aria2(torrent: Path, row: dict) -> Result:
    r = run(["aria2c", "--show-files", str(torrent)])
    err = re.search(r"errorCode=\d+ [^\n]*", r.stdout + r.stderr)
    if r.returncode != 0 or err:
        return Result(False, err.group(0) if err else f"exit {r.returncode}")
    got = re.search(r"Info Hash: ([0-9a-f]+)", r.stdout)
    if not got or got.group(1) != (row["info_hash_v1"] or ""):
        return Result(False, f"wrong info-hash {got.group(1)[:12] if got else '?'}...")
    n = len(re.findall(r"^\s+\d+\|", r.stdout, re.M))
    pads = len(re.findall(r"\|\./[^\n]*/\.pad/", r.stdout))
    return Result(True, f"{n - pads} files" + (f" + {pads} pad files listed" if pads else ""))


def load_libtorrent(torrent: Path, row: dict, save_path: Path) -> Result:
    try:
        ti = lt.torrent_info(str(torrent))
    except RuntimeError as e:
        return Result(False, str(e))
    ih = ti.info_hashes()
    v1 = str(ih.v1) if ih.has_v1() else None
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    if (v1, v2) != (row["info_hash_v1"], row["info_hash_v2"]):
        return Result(False, "info-hash differs")
    ses = loopback_session()
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = ti, str(save_path)
    atp.flags |= lt.torrent_flags.upload_mode
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + 30
    while not h.status().is_seeding and time.monotonic() < deadline:
        ses.wait_for_alert(200)
        ses.pop_alerts()
    return Result(h.status().is_seeding, "payload checked" if h.status().is_seeding else "check")


# -- downloads ---------------------------------------------------------------------------


def download_libtorrent(torrent: Path, out: Path, timeout: float) -> Result:
    ses = loopback_session()
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = lt.torrent_info(str(torrent)), str(out)
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    while not h.status().is_seeding and time.monotonic() < deadline:
        ses.wait_for_alert(200)
        ses.pop_alerts()
    st = h.status()
    ses.remove_torrent(h)
    return Result(st.is_seeding, "" if st.is_seeding else f"{st.progress:.0%} after {timeout}s")


def download_aria2(torrent: Path, out: Path, timeout: float) -> Result:
    cmd = [
        "aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--seed-time=0", f"--bt-stop-timeout={int(timeout)}",
        "--follow-torrent=false", "--console-log-level=error", "--summary-interval=0",
        f"--listen-port={free_port()}", "-d", str(out), str(torrent),
    ]  # fmt: skip
    r = run(cmd, timeout=timeout + 15)
    if r.returncode != 0:
        err = re.search(r"errorCode=\d+ [^\n]*", r.stdout + r.stderr)
        return Result(False, err.group(0)[:80] if err else f"exit {r.returncode}")
    return Result(True, "")


def download_transmission(torrent: Path, out: Path, timeout: float, expected: dict) -> Result:
    conf = out.parent / f"{out.name}-transmission"
    conf.mkdir()
    (conf / "settings.json").write_text(
        json.dumps(
            {
                "dht-enabled": False,
                "lpd-enabled": False,
                "pex-enabled": False,
                "utp-enabled": False,
                "port-forwarding-enabled": False,
                "bind-address-ipv4": "127.0.0.1",
                "bind-address-ipv6": "::1",
                "rpc-enabled": False,
            }
        )
    )
    cmd = ["transmission-cli", "-g", str(conf), "-w", str(out), "-M"]
    cmd += ["-p", str(free_port()), str(torrent)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if complete(out, expected):
                return Result(True, "")
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            text, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
    if complete(out, expected):
        return Result(True, "")
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", text or "") if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln]
    if errors:
        return Result(False, errors[-1].replace(str(torrent), torrent.name)[:80])
    return Result(False, (lines[-1] if lines else f"exit {proc.returncode}")[:80])


def complete(out: Path, expected: dict) -> bool:
    """Every payload file is there with its bytes (clients write partial files as they go)."""
    for rel, data in expected.items():
        p = out / rel
        try:
            if p.stat().st_size != len(data) or p.read_bytes() != data:
                return False
        except OSError:
            return False
    return True


def verify(res: Result, out: Path, expected: dict) -> Result:
    if not res.ok:
        return res
    if not complete(out, expected):
        return Result(False, "bytes differ from the payload")
    extra = sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file()
        and str(p.relative_to(out)) not in expected
        and not p.name.endswith((".aria2", ".resume", ".part"))
    )
    return Result(True, f"also wrote {len(extra)} non-payload files" if extra else "bytes equal")


# -- the run -----------------------------------------------------------------------------


def measure(work: Path) -> dict[str, Any]:
    port = free_port()
    announce = f"http://{HOST}:{port}/announce"
    matrix: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    seeder_counts: dict[str, Any] = {}

    def cell(client: str, column: str, res: Result) -> None:
        matrix.setdefault(client, {})[column] = res.render()

    with switchable_web_seed(work / "served") as web:
        mirrors = {fmt: build(work, fmt, announce, web.base) for fmt in FORMATS}
        for fmt, m in mirrors.items():
            for what in ("pack", "meta"):
                row = m[what]
                torrent = m["data_dir"] / row["torrent_path"]
                col = f"load {fmt}" + (" metadata" if what == "meta" else "")
                cell(TRANSMISSION, col, load_transmission(torrent, row))
                cell(ARIA2, col, load_aria2(torrent, row))
                cell(LIBTORRENT, col, load_libtorrent(torrent, row, m["packs_dir"]))
                for extra in EXTRA_CLIENTS:
                    if extra.installed():
                        cell(extra.label(), col, extra.load(torrent, row, m["packs_dir"], work))

        hashes = [h for m in mirrors.values() for h in m["hashes"] if h]
        with opentracker(hashes, port, host=HOST):
            for fmt, m in mirrors.items():
                seeder_counts[fmt] = seed_downloads(work, fmt, m, cell)
        for fmt, m in mirrors.items():
            web.serve(m["packs_dir"])
            web_downloads(work, fmt, m, cell)
            web.serve(None)
            notes.append(f"{fmt}: web seed requests with a Range header: {web.ranges()}")
    return {"matrix": matrix, "seeder": seeder_counts, "notes": notes}


def _downloaders(expected: dict) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        (LIBTORRENT, download_libtorrent),
        (ARIA2, download_aria2),
        (TRANSMISSION, lambda t, o, s: download_transmission(t, o, s, expected)),
    ]
    for extra in EXTRA_CLIENTS:
        if extra.installed():
            out.append((extra.label(), lambda t, o, s, e=extra: e.download(t, o, s, expected)))
    return out


def seed_downloads(work: Path, fmt: str, m: dict, cell) -> dict[str, Any]:
    """Each client downloads the tier-1 pack from `ccmirror seed` alone (web seed off)."""
    row = m["pack"]
    torrent = m["data_dir"] / row["torrent_path"]
    expected = {f"{row['name']}/{k}": v for k, v in payload(m["packs_dir"] / row["name"]).items()}
    served = 0
    args = ("--interface", HOST) if HOST != "127.0.0.1" else ()
    with SeedProcess(Path(m["manifest"]), *args) as seeder:
        seeder.next_status(lambda s: s["states"].get("seeding", 0) >= 2, 60, "seeding")
        for client, fn in _downloaders(expected):
            out = work / f"seed-{fmt}-{re.sub(r'[^a-z0-9]+', '-', client.lower())}"
            out.mkdir()
            res = verify(fn(torrent, out, TIMEOUT), out, expected)
            served += res.ok
            cell(client, f"from ccmirror seed ({fmt})", res)
        time.sleep(2 * 0.2)  # two status intervals: the last uploads are counted
        seeder.stop()
    last = [s for s in seeder.seen if s.get("packs")]
    up = next((p["uploaded"] for p in last[-1]["packs"] if p["name"] == row["name"]), 0)
    return {
        "pack": row["name"],
        "data_size": row["data_size"],
        "complete_downloads": served,
        "seeder_uploaded": up,
    }


def web_downloads(work: Path, fmt: str, m: dict, cell) -> None:
    row = m["pack"]
    torrent = m["data_dir"] / row["torrent_path"]
    expected = {f"{row['name']}/{k}": v for k, v in payload(m["packs_dir"] / row["name"]).items()}
    for client, fn in _downloaders(expected):
        out = work / f"web-{fmt}-{re.sub(r'[^a-z0-9]+', '-', client.lower())}"
        out.mkdir()
        cell(client, f"web seed alone ({fmt})", verify(fn(torrent, out, TIMEOUT), out, expected))


def render(result: dict[str, Any]) -> str:
    matrix = result["matrix"]
    columns: list[str] = []
    for row in matrix.values():
        columns += [c for c in row if c not in columns]
    lines = ["| client | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for client, row in matrix.items():
        lines.append(f"| {client} | " + " | ".join(row.get(c, "") for c in columns) + " |")
    lines.append("")
    for fmt, s in result["seeder"].items():
        lines.append(
            f"- {fmt}: `ccmirror seed` uploaded {s['seeder_uploaded']} bytes for"
            f" {s['complete_downloads']} complete downloads of {s['pack']}"
            f" ({s['data_size']} bytes of content each)"
        )
    lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccmirror-interop-"))
    try:
        result = measure(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2, default=str) if args.json else render(result))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
