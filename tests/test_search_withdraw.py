"""search (FTS5) and withdraw (takedowns), on a real catalogue with real packs."""

from __future__ import annotations

import json

import pytest

from ccmirror.catalogue import transaction
from ccmirror.errors import UsageError
from ccmirror.packs import pack
from ccmirror.search import fts_query, search
from ccmirror.withdraw import withdraw
from conftest import run_cli
from packhelpers import add_file, add_item, make_mirror, sample_mirror, write_manifest

HOSTILE = [
    '<script>alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    "\"double\" & 'single' quotes",
    "مرحبا بالعالم (right-to-left)",
    "A" * 10_000,
]


def _mirror(tmp_path):
    m = make_mirror(tmp_path)
    a = add_item(m, "ia", "beethoven_sonatas-1987", popularity=50, title="Piano Sonatas")
    add_file(m, a, "01.flac", seed=1)
    with transaction(m.db):
        m.db.execute(
            "UPDATE items SET creator = 'Ludwig van Béethoven', album = 'Complete Works'"
            " WHERE id = ?",
            (a,),
        )
    b = add_item(m, "fma", "12345", popularity=500, title="Night Drive", creator="AC/DC Tribute")
    add_file(m, b, "12345.flac", seed=2)
    c = add_item(m, "ia", "quiet_item", popularity=5, title="Night Sounds")
    add_file(m, c, "a.flac", seed=3, verdict="conflict")
    return m, a, b, c


def test_search_fields_prefixes_identifiers_and_ranking(tmp_path):
    m, a, b, c = _mirror(tmp_path)
    # Creator with diacritics folded, album, title prefix.
    assert [h["id"] for h in search(m, "beethoven")["hits"]] == ["ia:beethoven_sonatas-1987"]
    assert [h["id"] for h in search(m, "complete wor")["hits"]] == ["ia:beethoven_sonatas-1987"]
    # Every match, the more popular first.
    night = search(m, "night")
    assert night["total"] == 2
    assert [h["id"] for h in night["hits"]] == ["fma:12345", "ia:quiet_item"]
    # Identifiers: the prefixed id, the bare id, an ISRC that the licence check found later.
    assert search(m, "fma:12345")["hits"][0]["title"] == "Night Drive"
    assert search(m, "beethoven_sonatas-1987")["total"] == 1
    with transaction(m.db):
        m.db.execute("UPDATE files SET isrc = 'USRC17607839' WHERE item_id = ?", (c,))
    assert [h["id"] for h in search(m, "USRC17607839")["hits"]] == ["ia:quiet_item"]
    # A renamed item is found under its new title only.
    with transaction(m.db):
        m.db.execute("UPDATE items SET title = 'Morning Sounds' WHERE id = ?", (c,))
    assert search(m, "night")["total"] == 1
    assert search(m, "morning")["hits"][0]["id"] == "ia:quiet_item"
    assert search(m, "night", limit=1)["shown"] == 1


def test_search_input_is_never_fts_syntax(tmp_path):
    m, *_ = _mirror(tmp_path)
    assert search(m, "AC/DC")["hits"][0]["id"] == "fma:12345"
    for q in ['"unbalanced', "NEAR(night", "night OR", "col:umn", "a AND", "x*y"]:
        search(m, q)  # no FTS5 syntax error
    assert fts_query('say "hi"') == '"say"* """hi"""*'
    with pytest.raises(UsageError):
        search(m, "  ")
    with pytest.raises(UsageError):
        search(m, "*** ---")


def test_search_hit_shows_licence_verdicts_tier_and_pack(tmp_path):
    m, a, b, c = _mirror(tmp_path)
    pack(m, seal_partial=True)
    hit = search(m, "night drive")["hits"][0]
    assert hit["licence_id"] == "CC-BY-4.0"
    assert hit["verdicts"] == {"verified": 1}
    assert hit["tier"] == 1
    assert hit["packs"] and hit["packs"][0].startswith("test-t1-")
    unpacked = search(m, "night sounds")["hits"][0]
    assert unpacked["verdicts"] == {"conflict": 1}
    assert unpacked["packs"] == []


def test_search_cli_json_with_hostile_titles(tmp_path):
    manifest = write_manifest(tmp_path)
    m = make_mirror(tmp_path)
    for n, title in enumerate(HOSTILE):
        item = add_item(m, "ia", f"hostile-{n}", popularity=10 + n, title=title, creator=title)
        add_file(m, item, "x.flac", seed=n)
    m.close()
    r = run_cli("search", str(manifest), "alert", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON document
    assert {h["title"] for h in doc["hits"]} == set(HOSTILE[:2])
    r = run_cli("search", str(manifest), "right", "--json")
    assert json.loads(r.stdout)["hits"][0]["creator"] == HOSTILE[3]
    r = run_cli("search", str(manifest), "A" * 50, "--json")
    assert json.loads(r.stdout)["hits"][0]["title"] == HOSTILE[4]
    r = run_cli("search", str(manifest), "nothing-matches-this")
    assert r.returncode == 0 and "No item matches" in r.stdout
    r = run_cli("search", str(manifest), "** ++")
    assert r.returncode == 2 and r.stderr.startswith("ccmirror: ")


def _payload(m, pack_name):
    root = m.packs_dir / pack_name
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_withdraw_then_pack_seals_replacements_without_it(tmp_path):
    m = sample_mirror(tmp_path, pack_size="300KiB")
    pack(m, seal_partial=True)
    item_id = m.db.execute("SELECT id FROM items WHERE source_id = 'ia-item-2'").fetchone()[0]
    held = [
        r[0]
        for r in m.db.execute(
            "SELECT DISTINCT p.name FROM packs p JOIN pack_files pf ON pf.pack_id = p.id"
            " JOIN files f ON f.id = pf.file_id WHERE f.item_id = ?",
            (item_id,),
        )
    ]
    assert held
    store = [
        m.data_dir / r[0]
        for r in m.db.execute(
            "SELECT store_path FROM files WHERE item_id = ? AND store_path IS NOT NULL", (item_id,)
        )
    ]
    assert store and all(p.exists() for p in store)
    siblings = {
        r[0]
        for r in m.db.execute(
            "SELECT pf.file_id FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
            " JOIN files f ON f.id = pf.file_id WHERE p.obsolete = 0 AND f.item_id != ?"
            f" AND p.name IN ({','.join('?' * len(held))})",
            (item_id, *held),
        )
    }

    assert siblings  # the packs held other items too: they must come back in new packs
    r = withdraw(m, "ia:ia-item-2", "request from the rights holder")
    assert r["packs_obsoleted"] == held and not r["already_withdrawn"]
    assert r["files_deleted"] >= 4  # two store copies and two pack payload copies
    assert not any(p.exists() for p in store)
    for name in held:
        assert not any("ia-item-2" in p for p in _payload(m, name))
    assert m.db.execute("SELECT status FROM items WHERE id = ?", (item_id,)).fetchone()[0] == (
        "withdrawn"
    )
    assert {
        r[0] for r in m.db.execute("SELECT status FROM files WHERE item_id = ?", (item_id,))
    } == {"refused"}
    withdrawn = json.loads((m.public_dir / "withdrawn.json").read_text())
    assert [w["id"] for w in withdrawn] == ["ia:ia-item-2"]
    assert withdrawn[0]["reason"] == "request from the rights holder"
    torrents = {t["name"]: t for t in json.loads((m.public_dir / "torrents.json").read_text())}
    assert all(torrents[name]["obsolete"] for name in held)
    page = (m.public_dir / "index.html").read_text("utf-8")
    assert "Title of ia-item-2" not in page
    assert "(1 recording withdrawn on request)" in page

    # Again: nothing breaks, nothing is recorded twice.
    again = withdraw(m, "ia-item-2", "second notice")
    assert again["already_withdrawn"] and again["files_deleted"] == 0
    assert len(json.loads((m.public_dir / "withdrawn.json").read_text())) == 1

    # The next pack puts the other files of the obsolete packs into new packs.
    pack(m, seal_partial=True)
    live = {
        r[0]: r[1]
        for r in m.db.execute(
            "SELECT pf.file_id, p.name FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
            " WHERE p.obsolete = 0 AND p.status = 'sealed'"
        )
    }
    assert siblings <= set(live)
    assert all(live[f] not in held for f in siblings)
    withdrawn_files = {
        r[0] for r in m.db.execute("SELECT id FROM files WHERE item_id = ?", (item_id,))
    }
    assert not withdrawn_files & set(live)
    for name in set(live.values()):
        assert not any("ia-item-2" in p for p in _payload(m, name))
    assert "ia-item-2" not in "".join(
        (m.packs_dir / name / "MANIFEST.csv").read_text() for name in set(live.values())
    )


def test_withdraw_ids_and_errors(tmp_path):
    manifest = write_manifest(tmp_path)
    m = make_mirror(tmp_path)
    add_item(m, "ia", "same", popularity=1)
    add_item(m, "fma", "same", popularity=1)
    add_item(m, "fma", "777", popularity=1)
    with pytest.raises(UsageError, match="ambiguous"):
        withdraw(m, "same", "x")
    with pytest.raises(UsageError, match="no item"):
        withdraw(m, "ia:missing", "x")
    with pytest.raises(UsageError, match="reason"):
        withdraw(m, "777", "  ")
    assert withdraw(m, "777", "dmca")["id"] == "fma:777"
    m.close()
    r = run_cli("withdraw", str(manifest), "same", "--reason", "x")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "ambiguous" in r.stderr
    r = run_cli("withdraw", str(manifest), "fma:same", "--reason", "artist asked", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "fma:same"
    r = run_cli("withdraw", str(manifest), "ia:same")
    assert r.returncode == 2 and "--reason" in r.stderr


def test_a_word_no_other_term_extends_is_searched_exactly_with_the_same_hits(tmp_path):
    # `_match` makes a word's prefix phrase an exact one only when the index holds no
    # longer term starting with it: the rows and their bm25 scores stay those of the
    # prefix query (the order among equally popular items depends on the scores).
    from ccmirror.search import _match

    m = make_mirror(tmp_path)
    for n, title in enumerate(["Track One", "Tracks Two", "Track Three", "Trackless", "Drum"]):
        add_item(m, "fma", str(n), popularity=7, title=f"{title} {'long ' * n}words")
    db = m.db
    assert _match(db, "items_fts", "track") == '"track"*'  # tracks, trackless extend it
    assert _match(db, "items_fts", "three words") == '"three" "words"'
    assert _match(db, "items_fts", "thr wor") == '"thr"* "wor"*'
    assert _match(db, "items_fts", "Drum") == '"Drum"'
    assert _match(db, "items_fts", "café") == '"café"*'  # not ASCII: left to the tokenizer
    for text in ("track", "words", "three words", "long words", "drum", "t", "zzz"):
        got = _match(db, "items_fts", text)
        sql = "SELECT rowid, bm25(items_fts) FROM items_fts WHERE items_fts MATCH ? ORDER BY rowid"
        assert (
            db.execute(sql, (got,)).fetchall() == db.execute(sql, (fts_query(text),)).fetchall()
        ), text
    hits = search(m, "words")["hits"]
    assert [h["title"].split()[0] for h in hits] == [
        "Track",
        "Tracks",
        "Track",
        "Trackless",
        "Drum",
    ]
    m.close()
