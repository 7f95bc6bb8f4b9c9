"""The operator's front door: global options anywhere, init, read-only commands that
create nothing, and the other CLI promises of issue 13."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest

from ccmirror.cli import cli as group
from ccmirror.init import TEMPLATES
from ccmirror.manifest import load_manifest
from conftest import run_cli
from packhelpers import add_file, add_item, make_mirror

GLOBAL = {"--data-dir", "--json", "--quiet", "--verbose", "--log-file", "--debug"}
REPO = Path(__file__).resolve().parent.parent


def _commands(cmd: click.Command, path: str = "ccmirror"):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, f"{path} {name}")
    else:
        yield path, cmd


def test_every_command_takes_the_global_options():
    seen = 0
    for path, cmd in _commands(group):
        names = {o for p in cmd.params for o in p.opts}
        assert names >= GLOBAL, (path, GLOBAL - names)
        seen += 1
    assert seen >= 17
    assert {o for p in group.params for o in p.opts} >= GLOBAL


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("front")
    m = make_mirror(tmp)
    add_file(m, add_item(m, "ia", "harbour", popularity=5, title="Harbour Lights"), "a.flac")
    add_file(m, add_item(m, "ia", "other", popularity=3, title="Harbour Dawn"), "b.flac")
    path = m.manifest.path
    m.close()
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("status", "{m}", "--debug", "--json"),
        ("--debug", "status", "{m}", "--json"),
        ("--json", "status", "{m}", "--verbose"),
        ("status", "{m}", "--json", "--quiet", "--log-file", "{log}"),
    ],
)
def test_global_options_before_or_after(mirror, tmp_path, args):
    args = [a.format(m=mirror, log=tmp_path / "x.log") for a in args]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["items"]


def test_search_takes_several_words(mirror):
    r = run_cli("search", str(mirror), "harbour", "lights", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["query"] == "harbour lights"
    assert [h["title"] for h in doc["hits"]] == ["Harbour Lights"]


def test_seed_help_tells_the_truth():
    r = run_cli("seed", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "JSON lines" in text and "exactly one JSON document" not in text
    # Every other command still promises one document.
    assert "exactly one JSON document" in run_cli("status", "--help").stdout


def test_harvest_json_prints_its_document_when_the_source_is_down(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(
        f'[mirror]\nname = "down"\ndata_dir = "{tmp_path / "data"}"\n'
        '[[source]]\nkind = "ia"\nquery = "collection:x"\nendpoint = "http://127.0.0.1:9"\n'
    )
    r = run_cli("harvest", str(path), "--json")
    assert r.returncode == 4, r.stderr
    doc = json.loads(r.stdout)
    assert doc["unreachable"] and doc["exit_code"] == 4
    assert doc["sources"][0]["ok"] is False
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("ccmirror: ia: cannot reach")
    assert not any("ERROR" in ln for ln in lines)  # said once, by the last line


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("tiers",),
        ("plan", "--budget", "1TB"),
        ("search", "words"),
        ("seed-plan", "--budget", "1TB"),
        ("export-torrents", "--to", "{watch}"),
    ],
)
def test_read_only_commands_never_create_a_catalogue(tmp_path, args):
    path = tmp_path / "m.toml"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    path.write_text('[mirror]\nname = "x"\ndata_dir = "d"\n[[source]]\nkind = "ia"\nquery = "q"\n')
    cmd, *rest = [a.format(watch=tmp_path / "watch") for a in args]
    r = run_cli(cmd, str(path), *rest, "--data-dir", str(wrong))
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("ccmirror: no catalogue in") and str(wrong) in line
    assert list(wrong.iterdir()) == [] and not (tmp_path / "d").exists()


def test_licence_inspect_missing_path_is_exit_1(tmp_path):
    r = run_cli("licence", "inspect", str(tmp_path / "nope.mp3"), "--json")
    assert r.returncode == 1
    (row,) = json.loads(r.stdout)["files"]
    assert row["error"] and row["verdict"] == "unreadable"


@pytest.mark.parametrize("name", ["--budget", "--space"])
def test_seed_plan_budget_with_space_as_alias(mirror, name):
    r = run_cli("seed-plan", str(mirror), name, "1KiB", "--timeout", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["space"] == 1024
    assert "--budget" in run_cli("seed-plan", "--help").stdout


def test_demo_on_a_file_is_a_usage_error(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    r = run_cli("demo", str(f))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and f.read_text() == "x"


def test_init_writes_each_template_and_never_overwrites(tmp_path):
    for source in TEMPLATES:
        path = tmp_path / f"{source}.toml"
        r = run_cli("init", str(path), "--source", source, "--data-dir", str(tmp_path / "d x"))
        assert r.returncode == 0, r.stderr
        m = load_manifest(path)
        assert m.data_dir == tmp_path / "d x" and m.sources[0].kind == source
        assert "# " in path.read_text()  # commented
        # The same text as the repo's manifests/ (one file: manifests/ links to it).
        shipped = (REPO / "manifests" / TEMPLATES[source]).read_text()
        assert [ln for ln in path.read_text().splitlines() if not ln.startswith("data_dir")] == [
            ln for ln in shipped.splitlines() if not ln.startswith("data_dir")
        ]
        before = path.read_bytes()
        r = run_cli("init", str(path), "--source", source)
        assert r.returncode == 2 and "already exists" in r.stderr
        assert path.read_bytes() == before
    r = run_cli("--data-dir", str(tmp_path / "g"), "init", str(tmp_path / "g.toml"))
    assert r.returncode == 0 and load_manifest(tmp_path / "g.toml").data_dir == tmp_path / "g"
    r = run_cli("init", str(tmp_path / "x.toml"), "--source", "nope")
    assert r.returncode == 2 and not (tmp_path / "x.toml").exists()


def test_init_then_sync_dry_run_on_a_fresh_machine(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    path = tmp_path / "mirror.toml"
    r = run_cli("init", str(path), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("sync", str(path), "--dry-run", "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True and set(doc["stages"]) >= {"harvest", "fetch", "publish"}
    # The data dir of the template, under the fresh HOME; a dry run touched nothing.
    assert doc["data_dir"] == str(home / "ccmirror" / "netlabels")
    assert os.listdir(home) == [] and sorted(os.listdir(tmp_path)) == ["home", "mirror.toml"]
