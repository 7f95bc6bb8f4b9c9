"""The command line as a user's script sees it (DESIGN §4, §5, §6), run for real on a demo mirror.

One `ccmirror demo` builds the mirror (no network); every check runs the real console entry
point in a child process and looks only at stdout, stderr, exit codes and the files written.
"""

from __future__ import annotations

import csv
import fcntl
import json
import socket
import sqlite3
from pathlib import Path

import libtorrent as lt
import pytest
from click.testing import CliRunner

from ccmirror.cli import cli as group
from conftest import run_cli

DESIGN_ROW_KEYS = [
    "path",
    "licence_id",
    "licence_url",
    "rights_reserved",
    "verdict",
    "reason",
    "evidence",
    "isrc",
    "error",
]
TORRENTS_JSON_KEYS = {
    "name",
    "tier",
    "btih",
    "magnet_link",
    "torrent_path",
    "torrent_size",
    "num_files",
    "data_size",
    "popularity_share",
    "licences",
    "added_at",
    "obsolete",
    "is_metadata",
}
MANIFEST_CSV_COLUMNS = [
    "path",
    "size",
    "md5",
    "sha1",
    "sha256",
    "source",
    "source_id",
    "source_url",
    "title",
    "creator",
    "album",
    "date",
    "licence_id",
    "licence_url",
    "verdict",
    "isrc",
    "popularity",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo's manifest; its sample server is gone once the demo ends."""
    folder = tmp_path_factory.mktemp("demo")
    r = run_cli("demo", str(folder), "--quiet", timeout=120)
    assert r.returncode == 0, r.stderr
    return folder / "demo.toml"


def _data(demo: Path) -> Path:
    return demo.parent / "data"


def _one_error_line(r, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ccmirror: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def _final_line(r, code: int) -> str:
    """A run that printed its result and logs, then exactly one `ccmirror:` line, last."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    ours = [x for x in r.stderr.splitlines() if x.startswith("ccmirror: ")]
    assert len(ours) == 1 and r.stderr.rstrip().endswith(ours[0]), r.stderr
    assert "Traceback" not in r.stderr
    return ours[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_manifest(tmp_path: Path) -> Path:
    path = tmp_path / "down.toml"
    path.write_text(
        f'[mirror]\nname = "down"\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[[source]]\nkind = "ia"\nquery = "x"\nendpoint = "http://127.0.0.1:{_closed_port()}"\n',
        encoding="utf-8",
    )
    return path


def _commands() -> list[list[str]]:
    out = []
    for name, command in group.commands.items():
        subs = getattr(command, "commands", None)
        out += [[name, sub] for sub in subs] if subs else [[name]]
    return out


@pytest.mark.parametrize("argv", _commands(), ids=" ".join)
def test_every_command_help_says_what_and_shows_an_example(argv):
    r = CliRunner().invoke(group, [*argv, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example" in r.output and f"ccmirror {' '.join(argv)} " in r.output
    if argv != ["demo"] and argv[0] != "licence":
        assert "--json" in r.output and "--quiet" in r.output


READ_ONLY = [
    ["status", "{m}"],
    ["tiers", "{m}"],
    ["plan", "{m}", "--budget", "100KiB"],
    ["search", "{m}", "harbour"],
    ["sync", "{m}", "--dry-run"],
    ["licence", "inspect", "{m}", "{m}"],
]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: a[0])
def test_json_is_one_document_and_quiet_prints_nothing(demo, cli, argv):
    args = [a.format(m=demo) for a in argv]
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), dict)  # one document, nothing else on stdout
    assert r.stderr == ""
    q = cli(*args, "--quiet")
    assert (q.returncode, q.stdout, q.stderr) == (0, "", "")
    # Global flags before the command mean the same.
    g = cli("--json", *args)
    assert json.loads(g.stdout).keys() == json.loads(r.stdout).keys()


def test_read_only_commands_work_while_a_writer_holds_the_lock(demo, cli):
    data = _data(demo)
    with open(data / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for argv in READ_ONLY:
            r = cli(*[a.format(m=demo) for a in argv], "--json")
            assert r.returncode == 0, (argv, r.stderr)
            json.loads(r.stdout)
        audio = next((data / "store").rglob("*.flac"))
        r = cli("licence", "inspect", str(audio), "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["files"][0]["verdict"] == "verified"

        for argv in (["check"], ["pack"], ["publish"], ["harvest"], ["fetch"], ["sync"]):
            r = cli(*argv, str(demo), "--json")
            line = _one_error_line(r, 3)
            assert "lock" in line and r.stdout == ""
        r = cli("withdraw", str(demo), "ia:demo-night-walk", "--reason", "x", "--lock-wait", "0.2")
        assert "waited" in _one_error_line(r, 3)
    assert (data / "store/ia/demo-night-walk").is_dir()  # nothing was withdrawn


def test_missing_or_broken_manifest_is_exit_2_naming_file_and_key(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[mirror]\nname = "x"\ndata_dir = "{tmp_path}/d"\ncolour = 1\n')
    broken = tmp_path / "broken.toml"
    broken.write_text("[mirror\n")
    for command in (["status"], ["sync"], ["plan", "--budget", "1GiB"]):
        line = _one_error_line(cli(command[0], str(tmp_path / "nope.toml"), *command[1:]), 2)
        assert "nope.toml" in line
        line = _one_error_line(cli(command[0], str(bad), *command[1:], "--json"), 2)
        assert "bad.toml" in line and "mirror.colour" in line
        assert "broken.toml" in _one_error_line(cli(command[0], str(broken), *command[1:]), 2)
    assert not (tmp_path / "d").exists()


def test_a_log_file_that_cannot_be_opened_is_a_usage_error(demo, cli, tmp_path):
    for before in (True, False):
        opt = ["--log-file", str(tmp_path / "no-such-folder/sync.log")]
        argv = [*opt, "status", str(demo)] if before else ["status", str(demo), *opt]
        line = _one_error_line(cli(*argv), 2)
        assert "--log-file" in line and "no-such-folder" in line


def test_no_command_is_one_line_naming_the_commands(cli):
    for argv, names in (([], ("status", "sync")), (["licence"], ("inspect",))):
        line = _one_error_line(cli(*argv), 2)
        assert "missing command" in line and all(n in line for n in names)
        assert "Usage:" not in line


def test_sync_with_its_source_down_ends_with_one_ccmirror_line(cli, tmp_path):
    manifest = _unreachable_manifest(tmp_path)
    log = tmp_path / "sync.log"
    r = cli("sync", str(manifest), "--quiet", "--log-file", str(log))
    line = _final_line(r, 4)
    assert r.stdout == "" and "sync: exit 4" in line and "cannot reach" in line
    assert "sync: exit 4" in log.read_text()
    # --json still prints the run's one document, and the same one line on stderr.
    j = cli("sync", str(manifest), "--json")
    assert json.loads(j.stdout)["exit_code"] == 4 and "sync: exit 4" in _final_line(j, 4)


def test_a_stage_that_crashes_logs_no_traceback_without_debug(cli, tmp_path):
    manifest = _unreachable_manifest(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/public").write_text("a file where public/ should be")
    log = tmp_path / "sync.log"
    r = cli("sync", str(manifest), "--log-file", str(log))
    assert "sync: exit" in _final_line(r, 4)
    assert "internal error" in r.stderr  # the stage's one line says what went wrong
    assert "Traceback" in log.read_text()  # the operator's log keeps the details
    d = cli("--debug", "sync", str(manifest))
    assert d.returncode == 4 and "Traceback" in d.stderr


def test_a_result_with_failures_is_exit_1_with_one_line(demo, cli, tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "demo-t1-0001.torrent").write_bytes(b"someone else's file")
    r = cli("export-torrents", str(demo), "--to", str(watch), "--json")
    doc = json.loads(r.stdout)
    assert doc["conflicts"] == 1 and doc["failed"] == 1
    line = _final_line(r, 1)
    assert "export-torrents" in line and "1 failed" in line
    assert (watch / "demo-t1-0001.torrent").read_bytes() == b"someone else's file"


def test_a_foreign_catalogue_is_one_line_not_an_internal_error(cli, tmp_path):
    manifest = _unreachable_manifest(tmp_path)
    (tmp_path / "data").mkdir()
    db = sqlite3.connect(tmp_path / "data/catalogue.sqlite")
    db.execute("CREATE TABLE notours (x)")
    db.commit()
    db.close()
    line = _one_error_line(cli("status", str(manifest)), 1)
    assert "internal error" not in line and "catalogue" in line
    r = cli("--debug", "status", str(manifest))
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_licence_inspect_rows_match_design_in_order_and_never_stop(demo, cli, tmp_path):
    data = _data(demo)
    good = next((data / "store").rglob("*.flac"))
    junk = tmp_path / "junk.mp3"
    junk.write_text("not audio")
    paths = [str(good), str(tmp_path / "missing.ogg"), str(junk), str(tmp_path), str(good)]
    r = cli("licence", "inspect", *paths, "--json")
    # The missing path and the folder are not files: their rows say so, and the run exits 1
    # with its one ccmirror: line; every row is still in the one document.
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("ccmirror: ")
    doc = json.loads(r.stdout)
    assert doc["failed"] == 2
    rows = doc["files"]
    assert [row["path"] for row in rows] == paths
    for row in rows:
        assert [k for k in row if k in DESIGN_ROW_KEYS] == DESIGN_ROW_KEYS
        assert isinstance(row["rights_reserved"], bool)
        assert all(set(e) == {"tag", "value"} for e in row["evidence"])
    assert [row["verdict"] for row in rows] == [
        "verified",
        "unreadable",
        "unreadable",
        "unreadable",
        "verified",
    ]
    assert rows[0]["licence_id"] == rows[4]["licence_id"] and rows[0]["evidence"]
    assert all(row["error"] for row in rows[1:4]) and rows[0]["error"] is None


def test_torrents_json_manifest_csv_and_pack_layout(demo):
    data = _data(demo)
    torrents = json.loads((data / "public/torrents.json").read_text())
    assert isinstance(torrents, list) and torrents
    assert sum(t["is_metadata"] for t in torrents) == 1
    for t in torrents:
        assert set(t) >= TORRENTS_JSON_KEYS, TORRENTS_JSON_KEYS - set(t)
        info = lt.torrent_info(str(data / t["torrent_path"]))
        assert str(info.info_hashes().v1) == t["btih"] and info.name() == t["name"]
        assert info.num_files() == t["num_files"]
        if t["is_metadata"]:
            continue
        assert t["name"].startswith(f"demo-t{t['tier']}-") and len(t["name"].split("-")[-1]) == 4
        files = info.layout()
        names = sorted(files.file_path(i) for i in range(files.num_files()))
        pack = t["name"]
        assert f"{pack}/ATTRIBUTION.md" in names and f"{pack}/MANIFEST.csv" in names
        audio = [n for n in names if n.split("/")[-1] not in ("ATTRIBUTION.md", "MANIFEST.csv")]
        assert audio and all(n.startswith(f"{pack}/ia/") and n.count("/") == 3 for n in audio)
        with open(data / "packs" / pack / "MANIFEST.csv", newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader)
            # The contract's columns first, in order; additive columns only after them.
            assert header[: len(MANIFEST_CSV_COLUMNS)] == MANIFEST_CSV_COLUMNS
            assert header[len(MANIFEST_CSV_COLUMNS) :] == [
                "genre",
                "duration_s",
                "composer",
                "publisher",
                "release_date",
                "track",
                "codec",
                "bit_rate",
                "sample_rate",
                "channels",
                "artists",
                "lyricist",
                "producer",
                "engineer",
                "mbid",
            ]
            rows = list(reader)
        assert sorted(f"{pack}/{row[0]}" for row in rows) == sorted(audio)
        assert sum(t["licences"].values()) == len(rows)
