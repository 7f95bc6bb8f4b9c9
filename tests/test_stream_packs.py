"""Pack assignment, sealing's popularity, the dry run's and pack's waiting tiers, the
budget's held items and compact's items, streamed through SQL (issue 12), give what the
item-by-item Python over `rank_items` gave: on a catalogue with ties, zero popularity,
pinned tiers, withdrawn items, unpublishable and pending files."""

from __future__ import annotations

import random

import pytest

from ccmirror.budget import held_sql
from ccmirror.catalogue import transaction, utcnow
from ccmirror.catalogue.assign import waiting_tiers
from ccmirror.catalogue.compact import CompactItems
from ccmirror.catalogue.tiers import ranking
from ccmirror.licence import publishable_verdicts
from ccmirror.packs import _file_shares, pack, plan_pack
from ccmirror.packs.assign import plan_assign
from ccmirror.tiers import rank_items, ranked, select
from packhelpers import make_mirror


def _catalogue(tmp_path, seed: int, **manifest):
    m = make_mirror(tmp_path, shares=(0.3, 0.7, 0.9), **manifest)
    rnd = random.Random(seed)
    now = utcnow()
    store = m.data_dir / "store"
    store.mkdir(parents=True, exist_ok=True)
    with transaction(m.db):
        for n in range(300):
            pop = rnd.choice([0, 0, 1, 5, 5, 40, rnd.randint(0, 5000)])
            status = "withdrawn" if n % 19 == 0 else "ok"
            tier = rnd.choice([1, 2, 4]) if n % 23 == 0 else None
            item = m.db.execute(
                "INSERT INTO items (source, source_id, title, popularity, tier, status,"
                " first_seen, harvested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("ia" if n % 3 else "fma", f"s{n}", f"t{n}", pop, tier, status, now, now),
            ).lastrowid
            for k in range(rnd.choice([0, 1, 1, 2, 3])):
                fstatus = rnd.choice(["pending", "fetched", "fetched", "fetched", "failed"])
                verdict = rnd.choice([None, "verified", "verified", "declared", "rejected"])
                size = rnd.randint(1, 3000)
                rel = f"store/{n}-{k}.mp3"
                if fstatus == "fetched":
                    (m.data_dir / rel).write_bytes(b"x" * size)
                m.db.execute(
                    "INSERT INTO files (item_id, name, size, status, verdict, url, store_path)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (item, f"f{k}.mp3", size, fstatus, verdict, f"http://x/{n}/{k}",
                     rel if fstatus == "fetched" else None),
                )  # fmt: skip
    return m


def _waiting_reference(m, held=None):
    tier_of = {it.id: it.tier for it in rank_items(m.db, m.manifest.tiers.shares)}
    if held is not None:
        tier_of = {i: t for i, t in tier_of.items() if i in held}
    waiting = m.db.execute(
        "SELECT DISTINCT f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.compact IS NOT 'derivative' AND (f.status = 'pending'"
        " OR (f.status = 'fetched' AND f.verdict IS NULL))"
    )
    return {tier_of[i] for (i,) in waiting if i in tier_of}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_waiting_tiers_and_held_items_match_the_item_by_item(tmp_path, seed):
    m = _catalogue(tmp_path, seed)
    rk = ranking(m.db, m.manifest.tiers.shares)
    assert waiting_tiers(m.db, rk) == _waiting_reference(m)
    total = sum(it.bytes for it in ranked(m))
    for budget in (0, total // 5, total // 2, total):
        sel = select(m, budget)
        cond = held_sql(sel, "id")
        held = {i for (i,) in m.db.execute(f"SELECT id FROM items WHERE {cond}")}
        assert held == sel.chosen, budget
        assert waiting_tiers(m.db, sel.ranking, held_sql(sel)) == _waiting_reference(m, held)
    # The dry run's form: pending files only, less those its fetch brings.
    pending = m.db.execute(
        "SELECT f.id, f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.status = 'pending'"
    ).fetchall()
    taken = {r[0] for r in pending[::2]}
    tier_of = {it.id: it.tier for it in rank_items(m.db, m.manifest.tiers.shares)}
    want = {tier_of[r[1]] for r in pending if r[0] not in taken}
    assert waiting_tiers(m.db, rk, taken=taken) == want
    m.close()


@pytest.mark.parametrize("seed", [4, 5])
def test_sealed_popularity_matches_the_share_basis(tmp_path, seed):
    m = _catalogue(tmp_path, seed, pack_size="20KiB")
    pack(m)
    allowed = publishable_verdicts(m.manifest.licence.require_embedded)
    marks = ",".join("?" * len(allowed))
    counts = dict(
        m.db.execute(
            "SELECT item_id, count(*) FROM files WHERE status = 'fetched'"
            f" AND store_path IS NOT NULL AND verdict IN ({marks}) GROUP BY item_id",
            allowed,
        ).fetchall()
    )
    basis = {
        it.id: it.share / max(1, counts.get(it.id, 1))
        for it in rank_items(m.db, m.manifest.tiers.shares)
    }
    packs = m.db.execute("SELECT id FROM packs WHERE is_metadata = 0").fetchall()
    assert packs
    for (pack_id,) in packs:
        rows = m.db.execute(
            "SELECT f.id, f.item_id FROM pack_files pf JOIN files f ON f.id = pf.file_id"
            " WHERE pf.pack_id = ? ORDER BY pf.path",
            (pack_id,),
        ).fetchall()
        shares = _file_shares(m, pack_id, None)
        assert [shares.get(f, 0.0) for f, _ in rows] == [basis.get(i, 0.0) for _, i in rows]
    m.close()


def test_compact_items_match_the_ranking(tmp_path):
    m = _catalogue(tmp_path, 6)
    for quality in (("original", "original", "compact"), ("original", "compact", "original")):
        ci = CompactItems(m.db, ranking(m.db, m.manifest.tiers.shares), quality)

        def compact(t, q=quality):
            return q[min(t, len(q)) - 1] == "compact"

        want = {it.id: it.tier for it in rank_items(m.db, m.manifest.tiers.shares)}
        want = {i: t for i, t in want.items() if compact(t)}
        ids = [r[0] for r in m.db.execute("SELECT id FROM items")]
        assert {i: ci[i] for i in ids if i in ci} == want
        assert bool(ci) == bool(want)
    m.close()


def test_assign_plan_streamed_matches_what_pack_records(tmp_path):
    m = _catalogue(tmp_path, 7, pack_size="20KiB")
    plan = plan_assign(m)
    entries = list(plan.entries())
    assert len(entries) == plan.files and sum(e[3] for e in entries) == plan.bytes
    per_slot = {}
    for slot, _, _, size in entries:
        per_slot[slot] = per_slot.get(slot, 0) + size
    assert {n: s.added for n, s in enumerate(plan.slots) if s.files} == per_slot
    pp = plan_pack(m, seal_partial=True)
    assert pp.assign.files == plan.files
    r = pack(m, seal_partial=True)
    assert r["assigned_files"] == plan.files and r["assigned_items"] == plan.item_count
    got = m.db.execute(
        "SELECT p.name, pf.file_id, pf.path FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " ORDER BY pf.rowid"
    ).fetchall()
    assert [(plan.slots[s].name, f, p) for s, f, p, _ in entries] == [tuple(g) for g in got]
    m.close()
