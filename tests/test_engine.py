"""The one engine: `sync --dry-run` reports what the following run does, from the same plan
steps; fetch's --max-bytes caps each run."""

from __future__ import annotations

import json

import pytest

from ccmirror.iaserver import IAServer
from iahelpers import ia_manifest, make_ia_archive


@pytest.fixture
def ia():
    with IAServer(latency=0.0) as server:
        yield server


def _json(cli, *args):
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _headline(doc):
    st = doc["stages"]
    return (
        st["fetch"]["fetched"],
        st["fetch"]["bytes"],
        st["check"]["checked"],
        [p["name"] for p in st["pack"]["sealed"]],
    )


def test_dry_run_and_the_following_sync_agree(cli, ia, write_manifest):
    make_ia_archive(ia, 8)
    path = ia_manifest(
        write_manifest,
        ia,
        extra='[torrents]\npack_size = "48KiB"\ntrackers = ["udp://127.0.0.1:6969/announce"]\n',
    )
    _json(cli, "harvest", str(path))
    seen = []
    for _ in range(8):
        plan = _json(cli, "sync", str(path), "--dry-run", "--max-bytes", "60KiB")
        assert plan["dry_run"] is True
        assert "unknown until the bytes are read" in plan["stages"]["check"]["verdicts"]
        real = _json(cli, "sync", str(path), "--max-bytes", "60KiB")
        assert real["dry_run"] is False
        assert _headline(plan) == _headline(real), (plan["stages"], real["stages"])
        for stage in ("fetch", "check", "pack"):
            # Every key of the real run, but what only reading the bytes can tell.
            unforeseeable = {"seconds", "run", "verdicts", "licences"}
            assert set(real["stages"][stage]) - unforeseeable <= set(plan["stages"][stage])
        seen.append(_headline(real))
        if not real["stages"]["fetch"]["considered"]:
            break
    fetched = [h[0] for h in seen]
    sealed = [n for h in seen for n in h[3]]
    # The cap held every run, several runs fetched, and packs were sealed along the way,
    # the last one (partial) once nothing of its tier was pending.
    assert sum(1 for n in fetched if n) >= 3
    assert all(0 < h[1] <= 60 * 1024 for h in seen if h[0])
    assert len(sealed) >= 2 and len(set(sealed)) == len(sealed)
    assert seen[-1][0] == 0
