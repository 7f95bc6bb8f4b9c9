"""`[mirror] budget`: sync and fetch fill the store with exactly the selection `plan`
reports for the budget, through the one selection function."""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path

from iafake import IAServer
from iahelpers import audio_bytes, ia_manifest, make_ia_archive

# (identifier, downloads, seconds of FLAC): tiers at shares [0.5, 0.8, 1.0].
SPEC = [("a", 500, 2.0), ("b", 200, 1.0), ("c", 100, 2.0), ("d", 90, 0.5), ("e", 60, 1.5),
        ("f", 50, 0.5)]  # fmt: skip


def _archive(ia: IAServer) -> dict[str, int]:
    """The items of SPEC on the server; each one's FLAC size (iahelpers' seeds)."""
    specs = [
        {"identifier": i, "downloads": d, "kinds": ("flac",), "seconds": s} for i, d, s in SPEC
    ]
    make_ia_archive(ia, specs)
    return {
        ident: len(audio_bytes("flac", zlib.crc32(f"{ident}/0".encode()) & 0xFFFF, secs))
        for ident, _d, secs in SPEC
    }


def _store_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in (data_dir / "store").rglob("*") if p.is_file())


def test_budget_fills_the_store_with_the_plan(cli, write_manifest, data_dir):
    with IAServer(latency=0.0) as ia:
        sizes = _archive(ia)
        # Tier 1 (a), tier 2 (b, c) fit; tier 3 (d, e, f) is cut: room for d and f only.
        budget = sizes["a"] + sizes["b"] + sizes["c"] + sizes["d"] + sizes["f"] + 100
        manifest = ia_manifest(
            write_manifest,
            ia,
            extra="[tiers]\nshares = [0.5, 0.8, 1.0]\n",
        )
        text = manifest.read_text().replace("[mirror]\n", f"[mirror]\nbudget = {budget}\n", 1)
        manifest.write_text(text)
        assert cli("harvest", str(manifest)).returncode == 0
        r = cli("plan", str(manifest), "--json")  # the manifest's budget
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)
        assert plan["budget"] == budget and plan["cut_tier"] == 3
        assert [t["included"] for t in plan["tiers"]] == ["full", "full", "partial"]
        r = cli("sync", str(manifest), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["budget"]["stopped_by_budget"] is True
        assert (
            out["budget"]["left_out_items"] == 1 and "budget stops growth" in out["budget"]["note"]
        )
        stored = _store_bytes(data_dir)
        assert stored == plan["bytes"] <= budget
        # The cut tier seals what the budget holds of it: the rest waits for no one.
        sealed = sorted(p["name"] for p in out["stages"]["pack"]["sealed"])
        assert sealed == ["test-t1-0001", "test-t2-0001", "test-t3-0001"]
        conn = sqlite3.connect(data_dir / "catalogue.sqlite")
        names = {n for (n,) in conn.execute("SELECT name FROM files WHERE status = 'fetched'")}
        conn.close()
        assert {n.split("-")[0] for n in names} == {"a", "b", "c", "d", "f"}
        # The store and what plan says agree after the run too; a second sync adds nothing.
        again = json.loads(cli("plan", str(manifest), "--json").stdout)
        assert again["bytes"] == stored
        r2 = json.loads(cli("sync", str(manifest), "--json").stdout)
        assert r2["stages"]["fetch"]["fetched"] == 0 and _store_bytes(data_dir) == stored
        # status: budget, bytes used, share of listening covered.
        st = json.loads(cli("status", str(manifest), "--json").stdout)["budget"]
        assert st["budget"] == budget and st["store_bytes"] == stored
        assert abs(st["covered_share"] - plan["popularity_share"]) < 1e-6
        text = cli("status", str(manifest)).stdout
        assert "Budget:" in text and "of listening" in text


def test_plan_needs_a_budget(cli, write_manifest):
    with IAServer(latency=0.0) as ia:
        manifest = ia_manifest(write_manifest, ia)
        r = cli("plan", str(manifest))
    assert r.returncode == 2 and "--budget" in r.stderr and "[mirror] budget" in r.stderr


def _set_budget(manifest: Path, budget: int) -> None:
    lines = [ln for ln in manifest.read_text().splitlines() if not ln.startswith("budget =")]
    text = "\n".join(lines).replace("[mirror]\n", f"[mirror]\nbudget = {budget}\n", 1)
    manifest.write_text(text + "\n")


def test_a_smaller_budget_makes_room_sealed_files_stay(cli, write_manifest, data_dir):
    with IAServer(latency=0.0) as ia:
        sizes = _archive(ia)
        manifest = ia_manifest(write_manifest, ia, extra="[tiers]\nshares = [0.5, 0.8, 1.0]\n")
        _set_budget(manifest, sum(sizes.values()))
        assert cli("sync", str(manifest)).returncode == 0  # everything fetched and sealed
        assert _store_bytes(data_dir) == sum(sizes.values())
        # Fetch more items unpacked: new items at the bottom of the ranking.
        make_ia_archive(
            ia,
            [
                {"identifier": f"z{i}", "downloads": 1, "kinds": ("flac",), "seconds": 1.0}
                for i in range(3)
            ],  # fmt: skip
        )
        extra = sum(
            len(audio_bytes("flac", zlib.crc32(f"z{i}/0".encode()) & 0xFFFF, 1.0)) for i in range(3)
        )
        _set_budget(manifest, sum(sizes.values()) + extra)
        assert cli("harvest", str(manifest)).returncode == 0
        assert cli("fetch", str(manifest)).returncode == 0
        assert _store_bytes(data_dir) == sum(sizes.values()) + extra
        # A smaller budget: the unsealed files leave; the sealed ones stay, seeded.
        _set_budget(manifest, sum(sizes.values()) + extra // 2)
        r = cli("fetch", str(manifest), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)["budget"]
        plan = json.loads(cli("plan", str(manifest), "--json").stdout)
        assert _store_bytes(data_dir) == plan["bytes"]
        assert _store_bytes(data_dir) <= sum(sizes.values()) + extra // 2
        for ident in sizes:
            assert (data_dir / "store" / "ia" / ident).is_dir()
        kept = plan["items"] - len(SPEC)  # z items the smaller budget still holds
        assert out["evicted_files"] == 3 - kept
        # However small the budget, sealed files stay: only the unsealed ones leave.
        _set_budget(manifest, 1)
        r = json.loads(cli("fetch", str(manifest), "--json").stdout)["budget"]
        assert r["evicted_files"] == kept
        assert _store_bytes(data_dir) == sum(sizes.values())
        assert "sealed" in json.loads(cli("plan", str(manifest), "--json").stdout)["note"]
