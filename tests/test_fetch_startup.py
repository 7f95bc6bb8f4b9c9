"""Fetch's start-up: what a run without a compact tier or a budget never loads."""

from __future__ import annotations

import json
import subprocess
import sys

from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from iafake import IAServer
from iahelpers import make_ia_archive

# The compact stage (licence check, encoder, decode workers) and the budget's ranking: a
# third of `ccmirror fetch`'s start-up, and no-ops for a mirror that uses neither.
NOT_LOADED = ["ccmirror.budget", "ccmirror.compact.run", "ccmirror.licence.check"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_fetch_without_compact_tiers_or_budget_loads_neither(tmp_path):
    with IAServer() as ia:
        make_ia_archive(ia, 1, kinds=("wav",), seconds=0.2)
        manifest = tmp_path / "m.toml"
        manifest.write_text(
            f'[mirror]\nname = "t"\ndata_dir = "{tmp_path / "data"}"\n\n'
            f'[[source]]\nkind = "ia"\nquery = "collection:netlabels"\nendpoint = "{ia.url}"\n',
            encoding="utf-8",
        )
        with open_mirror(manifest) as mirror:
            harvest(mirror)
        code = (
            "import atexit, sys\n"
            f"atexit.register(lambda: print(sorted(set({NOT_LOADED!r}) & set(sys.modules)),"
            " file=sys.stderr))\n"
            "from ccmirror.cli import main\n"
            f"main(['fetch', {str(manifest)!r}, '--json'])\n"
        )
        r = _run(code)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fetched"] == 1  # the run did its work
    assert r.stderr.strip().splitlines()[-1] == "[]"
