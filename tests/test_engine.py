"""The one engine: `sync --dry-run` reports what the following run does, from the same plan
steps; fetch's --max-bytes caps each run."""

from __future__ import annotations

import json

import pytest

from iafake import IAServer
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


def _file_row(tmp_path):
    from ccmirror import catalogue

    db = catalogue.connect(tmp_path / "catalogue.sqlite")
    with catalogue.transaction(db):
        item = db.execute(
            "INSERT INTO items (source, source_id, first_seen, harvested_at)"
            " VALUES ('ia', 'x', 'now', 'now')"
        ).lastrowid
        fid = db.execute(
            "INSERT INTO files (item_id, name, status, store_path, fetched_at, verdict,"
            " verdict_reason, checked_at, checked_size, checked_mtime_ns, checked_key)"
            " VALUES (?, 'a.flac', 'fetched', 'store/ia/x/a.flac', 'now', 'declared', 'ok',"
            " 'now', 1, 2, 'k')",
            (item,),
        ).lastrowid
    return db, fid


def test_back_to_pending_clears_the_copy_and_its_verdict(tmp_path):
    from ccmirror.catalogue.states import files_back_to_pending

    db, fid = _file_row(tmp_path)
    files_back_to_pending(db, [("bytes changed", fid)])
    row = db.execute("SELECT * FROM files WHERE id = ?", (fid,)).fetchone()
    assert (row["status"], row["reason"]) == ("pending", "bytes changed")
    cleared = ("store_path", "fetched_at", "verdict", "verdict_reason", "checked_at")
    assert [row[k] for k in (*cleared, "checked_size", "checked_mtime_ns", "checked_key")] == [
        None
    ] * 8


def test_a_state_change_joins_the_callers_transaction(tmp_path):
    from ccmirror import catalogue
    from ccmirror.catalogue.states import files_back_to_pending

    db, fid = _file_row(tmp_path)
    with pytest.raises(RuntimeError), catalogue.transaction(db):
        files_back_to_pending(db, [("bytes changed", fid)])
        raise RuntimeError("crash before the caller's other changes")
    assert db.execute("SELECT status FROM files WHERE id = ?", (fid,)).fetchone()[0] == "fetched"


def test_dry_run_foresees_the_packs_a_stricter_policy_retires(cli, ia, write_manifest):
    make_ia_archive(ia, 4)
    extra = '[torrents]\npack_size = "48KiB"\ntrackers = ["udp://127.0.0.1:6969/announce"]\n'
    path = ia_manifest(write_manifest, ia, extra=extra)
    first = _json(cli, "sync", str(path))
    assert first["stages"]["pack"]["sealed"]
    # Only licences embedded in the files may be published now: every sealed pack goes.
    path.write_text(path.read_text() + "\n[licence]\nrequire_embedded = true\n")
    plan = _json(cli, "sync", str(path), "--dry-run")
    real = _json(cli, "sync", str(path))
    foreseen = plan["stages"]["pack"]
    assert foreseen["obsoleted"] == real["stages"]["pack"]["obsoleted"] > 0
    assert len(foreseen["would_obsolete"]) == foreseen["obsoleted"]
    assert {p["name"] for p in first["stages"]["pack"]["sealed"]} >= {
        p["name"] for p in foreseen["would_obsolete"]
    }
    for key in ("copied", "failed", "released"):  # no compact tier: nothing to foresee
        assert plan["stages"]["compact"][key] == real["stages"]["compact"][key] == 0
