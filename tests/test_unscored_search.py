"""search without bm25 when popularity alone orders the shown hits: the same hits, in the
same order, with the same total, as the scored statement (`search._scored`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ccmirror import search as s
from packhelpers import add_file, add_item, make_mirror

WORDS = ["night", "drive", "nights", "sound", "dr", "blue"]


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.integers(-2, 6).map(float),  # few values: ties
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
            st.booleans(),  # a file whose name holds the first word
        ),
        min_size=1,
        max_size=14,
    ),
    query=st.lists(st.sampled_from(["night", "dr", "sound", "blue", "ni"]), min_size=1, max_size=2),
    limit=st.integers(1, 6),
)
def test_search_equals_the_scored_order(tmp_path_factory, items, query, limit):
    m = make_mirror(tmp_path_factory.mktemp("m"))
    for n, (pop, words, named) in enumerate(items):
        item = add_item(m, "fma", str(n), popularity=pop, title=" ".join(words))
        if named:
            add_file(m, item, f"{words[0]}_{n}.flac", status="pending", verdict=None)
    text = " ".join(query)
    im, fm = (s._match(m.db, t, text) for t in ("items_fts", "files_fts"))
    want_rows, want_total = s._scored(m.db, im, fm, limit)
    got = s.search(m, text, limit=limit)
    assert got["total"] == want_total
    assert [h["id"] for h in got["hits"]] == [f"fma:{r['source_id']}" for r in want_rows]
    fast, total = s._unscored(m.db, im, fm, limit)
    if fast is not None:  # taken only when no two shown (or last shown and next) tie
        pops = [r["popularity"] for r in want_rows]
        assert len(set(pops)) == len(pops) and total == want_total
    m.close()


def test_ties_among_the_shown_fall_back_to_the_scores(tmp_path):
    m = make_mirror(tmp_path)
    for n, title in enumerate(["blue blue blue", "blue", "blue night", "night"]):
        add_item(m, "fma", str(n), popularity=5 if n < 3 else 9, title=title)
    im, fm = (s._match(m.db, t, "blue") for t in ("items_fts", "files_fts"))
    assert s._unscored(m.db, im, fm, 2)[0] is None
    hits = s.search(m, "blue", limit=2)["hits"]
    assert [h["id"] for h in hits] == [
        f"fma:{r['source_id']}" for r in s._scored(m.db, im, fm, 2)[0]
    ]
    im, fm = (s._match(m.db, t, "night") for t in ("items_fts", "files_fts"))
    fast, total = s._unscored(m.db, im, fm, 1)
    assert [r["source_id"] for r in fast] == ["3"] and total == 2
    m.close()
