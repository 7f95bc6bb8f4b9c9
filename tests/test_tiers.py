"""Tiers and the storage plan."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ccmirror.catalogue import transaction
from ccmirror.tiers import plan, rank_items, ranked, summarise, tier_of, tier_table
from packhelpers import add_file, add_item, make_mirror


def test_tiers_follow_cumulative_share(tmp_path):
    m = make_mirror(tmp_path, shares=(0.5, 0.9, 1.0))
    ids = [add_item(m, "ia", f"i{n}", popularity=p) for n, p in enumerate([50, 30, 10, 5, 5])]
    ranked = rank_items(m.db, m.manifest.tiers.shares)
    assert [r.id for r in ranked] == ids
    # 0% before i0 -> t1; 50% before i1 -> t2; 80% -> t2; 90% -> t3; 95% -> t3.
    assert [r.tier for r in ranked] == [1, 2, 2, 3, 3]
    assert abs(sum(r.share for r in ranked) - 1.0) < 1e-9


def test_ties_broken_by_id_and_sources_ranked_apart(tmp_path):
    m = make_mirror(tmp_path, shares=(0.5, 1.0))
    a = add_item(m, "fma", "b", popularity=10)
    b = add_item(m, "fma", "a", popularity=10)
    c = add_item(m, "ia", "x", popularity=1_000_000)
    d = add_item(m, "ia", "y", popularity=1)
    ranked = {r.id: r for r in rank_items(m.db, m.manifest.tiers.shares)}
    # Equal popularity: the lower catalogue id ranks first, whatever the name.
    assert (ranked[a].tier, ranked[b].tier) == (1, 2)
    # FMA's small numbers are not swamped by IA's: each source has its own tier 1.
    assert (ranked[c].tier, ranked[d].tier) == (1, 2)
    assert abs(ranked[a].share - 0.25) < 1e-9
    assert abs(ranked[c].share - 0.5 * 1_000_000 / 1_000_001) < 1e-9


def test_packed_item_keeps_its_tier(tmp_path):
    m = make_mirror(tmp_path, shares=(0.5, 1.0))
    hot = add_item(m, "ia", "hot", popularity=90)
    cold = add_item(m, "ia", "cold", popularity=10)
    with transaction(m.db):
        m.db.execute("UPDATE items SET tier = 2 WHERE id = ?", (hot,))
    ranked = {r.id: r for r in rank_items(m.db, m.manifest.tiers.shares)}
    assert ranked[hot].tier == 2 and ranked[hot].pinned
    assert ranked[cold].tier == 2 and not ranked[cold].pinned


@settings(max_examples=60, deadline=None)
@given(
    pops=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40),
    shares=st.sampled_from([(0.5, 0.9, 0.99, 1.0), (0.3, 1.0), (1.0,), (0.5, 0.8)]),
)
def test_tiers_ordered_property(pops, shares):
    """Tiers never decrease down the ranking, and each tier's items are the ones needed to
    reach its share: before an item of tier k, less than shares[k-1] was reached."""
    order = sorted(range(len(pops)), key=lambda i: (-pops[i], i))
    total = sum(pops)
    cum, last = 0, 1
    for i in order:
        k = tier_of(cum, total, shares)
        assert k >= last
        if total:
            assert k == len(shares) + 1 or cum / total < shares[k - 1] + 1e-9
            if k > 1 and k <= len(shares):
                assert cum / total >= shares[k - 2] - 1e-9
        last = k
        cum += pops[i]


def _sized_mirror(tmp_path):
    m = make_mirror(tmp_path, shares=(0.5, 1.0))
    # Tier 1: "big" (50%). Tier 2: three items; "dense" has the best share per byte.
    spec = [("big", 50, 2.0), ("long", 25, 3.0), ("dense", 15, 0.5), ("mid", 10, 1.0)]
    ids = {}
    for n, (sid, pop, secs) in enumerate(spec):
        ids[sid] = add_item(m, "ia", sid, popularity=pop)
        add_file(m, ids[sid], "a.wav", seconds=secs, seed=n)
    return m, ids


def test_tier_table_counts(tmp_path):
    m, _ = _sized_mirror(tmp_path)
    r = tier_table(m)
    assert [t["tier"] for t in r["tiers"]] == [1, 2]
    assert [t["items"] for t in r["tiers"]] == [1, 3]
    wav = 48000 * 2 * 2  # bytes per second, 16-bit stereo
    assert abs(r["tiers"][0]["bytes"] - 2 * wav) < 4096
    assert r["tiers"][1]["cumulative_bytes"] == r["bytes"]
    assert r["tiers"][0]["popularity_share"] == 0.5
    assert r["tiers"][1]["cumulative_share"] == 1.0


def test_plan_fills_cut_tier_by_popularity_per_byte(tmp_path):
    m, ids = _sized_mirror(tmp_path)
    wav = 48000 * 2 * 2
    # Room for tier 1 (2 s) plus 1.6 s: "long" (3 s) does not fit; "dense" (0.5 s, the best
    # share per byte) and "mid" (1 s) do.
    r = plan(m, int(3.6 * wav))
    assert r["cut_tier"] == 2
    assert [t["included"] for t in r["tiers"]] == ["full", "partial"]
    assert r["tiers"][1]["items"] == 2
    assert abs(r["popularity_share"] - 0.75) < 1e-6
    assert r["bytes"] <= 3.6 * wav
    assert "popularity per byte" in r["note"]
    everything = plan(m, 10**12)
    assert everything["cut_tier"] is None and everything["popularity_share"] == 1.0
    nothing = plan(m, 0)
    assert nothing["items"] == 0 and nothing["tiers"][0]["included"] == "none"


def test_cli_tiers_and_plan(tmp_path, cli):
    m, _ = _sized_mirror(tmp_path)
    m.close()
    manifest = str(tmp_path / "mirror.toml")
    r = cli("tiers", manifest, "--json")
    assert r.returncode == 0, r.stderr
    assert [t["items"] for t in json.loads(r.stdout)["tiers"]] == [1, 3]
    r = cli("plan", manifest, "--budget", "1MB", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["budget"] == 1_000_000 and doc["cut_tier"] == 2
    r = cli("plan", manifest, "--budget", "lots")
    assert r.returncode == 2 and "--budget" in r.stderr and "Traceback" not in r.stderr
    r = cli("plan", manifest, "--budget", "2TB")
    assert r.returncode == 0 and "everything fits" in r.stdout


def test_index_page_and_tier_table_share_one_aggregation(tmp_path):
    from ccmirror.publish.page_data import page_data

    m, _ = _sized_mirror(tmp_path)
    table = tier_table(m)["tiers"]
    page = page_data(m, [])["tiers"]
    assert [(t["tier"], t["items"]) for t in page] == [(t["tier"], t["items"]) for t in table]
    assert [t["cumulative_bytes"] for t in page] == [t["cumulative_bytes"] for t in table]
    for p, t in zip(page, table, strict=True):
        assert abs(p["share"] - t["popularity_share"]) < 1e-6
        assert abs(p["cumulative_share"] - t["cumulative_share"]) < 1e-6
    # The exact (unrounded) form the page uses sums to the whole listening.
    exact = summarise(ranked(m), ndigits=None)
    assert abs(exact[-1]["cumulative_share"] - sum(it.share for it in ranked(m))) < 1e-12
    assert [t["files"] for t in exact] == [1, 3]
    m.close()


def _reference(rows, shares):
    """The ranking as it was computed in Python, item by item (the specification)."""
    rows = sorted(rows, key=lambda r: (r[1], -r[2], r[0]))
    totals: dict[str, float] = {}
    for _, src, pop, _ in rows:
        totals[src] = totals.get(src, 0.0) + max(pop, 0.0)
    weighted = sum(1 for t in totals.values() if t > 0) or 1
    cum: dict[str, float] = {}
    out = {}
    for item_id, src, pop, pinned in rows:
        computed = tier_of(cum.get(src, 0.0), totals[src], shares)
        cum[src] = cum.get(src, 0.0) + max(pop, 0.0)
        share = max(pop, 0.0) / totals[src] / weighted if totals[src] > 0 else 0.0
        out[item_id] = (pinned if pinned is not None else computed, share)
    return out


@settings(max_examples=80, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(["ia", "fma"]),
            st.one_of(st.integers(0, 50), st.integers(-3, 10_000), st.just(7)),
            st.one_of(st.none(), st.none(), st.none(), st.integers(1, 5)),
            st.sampled_from(["ok", "ok", "ok", "refused"]),
        ),
        max_size=60,
    ),
    shares=st.sampled_from([(0.5, 0.9, 0.99, 1.0), (0.3, 1.0), (1.0,), (0.5, 0.8), (0.1, 0.2)]),
)
def test_sql_ranking_matches_the_item_by_item_rule(tmp_path_factory, items, shares):
    """Tier boundaries found in SQL give every item the tier and share the item-by-item
    walk gives it: ties, zero and negative popularity, pinned tiers, two sources."""
    from ccmirror.catalogue import connect
    from ccmirror.catalogue.tiers import ranking

    db = connect(tmp_path_factory.mktemp("rank") / "c.sqlite")
    with transaction(db):
        db.executemany(
            "INSERT INTO items (source, source_id, popularity, tier, status, first_seen,"
            " harvested_at) VALUES (?, ?, ?, ?, ?, 'x', 'x')",
            [(src, str(n), pop, pin, status) for n, (src, pop, pin, status) in enumerate(items)],
        )
    rows = [
        (r["id"], r["source"], r["popularity"], r["tier"])
        for r in db.execute("SELECT * FROM items WHERE status = 'ok'")
    ]
    want = _reference(rows, shares)
    rk = ranking(db, shares)
    sel, params = rk.ranked_sql()
    got = {r["id"]: (r["tier"], r["share"]) for r in db.execute(sel, params)}
    assert got.keys() == want.keys()
    for item_id, (tier, share) in want.items():
        assert got[item_id][0] == tier, (item_id, got[item_id], tier)
        assert abs(got[item_id][1] - share) < 1e-12
    db.close()


@settings(max_examples=80, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(["ia", "fma"]),
            st.one_of(st.integers(0, 6), st.integers(-3, 10_000), st.just(7)),
            st.one_of(st.none(), st.none(), st.none(), st.integers(1, 5)),
            st.sampled_from(["ok", "ok", "ok", "refused"]),
        ),
        max_size=80,
    ),
    shares=st.sampled_from([(0.5, 0.9, 0.99, 1.0), (0.3, 1.0), (1.0,), (0.5, 0.8), (0.1, 0.2)]),
)
def test_run_counts_and_shares_are_the_sums_sqlite_gives(tmp_path_factory, items, shares):
    """Items and share per run from the ranking's counts (`run_items`) equal, to the last
    bit, SQLite's count(*) and sum() over each run of the index plus the pinned items."""
    from ccmirror.catalogue import connect
    from ccmirror.catalogue.runitems import run_items
    from ccmirror.catalogue.tiers import ranking
    from ccmirror.catalogue.tiersums import ITEMS, part_sums

    db = connect(tmp_path_factory.mktemp("runs") / "c.sqlite")
    with transaction(db):
        db.executemany(
            "INSERT INTO items (source, source_id, popularity, tier, status, first_seen,"
            " harvested_at) VALUES (?, ?, ?, ?, ?, 'x', 'x')",
            [(src, str(n), pop, pin, status) for n, (src, pop, pin, status) in enumerate(items)],
        )
    rk = ranking(db, shares)
    share, sp = rk.share_sql()
    want = part_sums(db, rk, lambda _t: (f"sum({share})", sp), ITEMS)
    assert run_items(db, rk) == want
    db.close()
