"""A re-harvest of the FMA dataset: the range compare of unchanged batches
(`_Run._unchanged_range`), checked against the staged path it stands in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ccmirror.catalogue.fma_load as fma_load
import ccmirror.sources.fma as fma
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from ccmirror.withdraw import withdraw
from fmahelpers import CC0, FMA_LIMITED, track_row, write_audio_tree, write_metadata_zip

ITEM_STATE = (
    "SELECT i.source_id, i.title, i.popularity, i.status, i.reason, i.extra, i.fingerprint,"
    " f.name, f.size, f.est_size, f.status FROM items AS i LEFT JOIN files AS f"
    " ON f.item_id = i.id ORDER BY i.source_id, f.id"
)


def _rows(ids, changed: dict | None = None) -> list:
    changed = changed or {}
    rows = []
    for n in ids:
        licence = FMA_LIMITED if n % 5 == 0 else CC0  # refused ones among them
        rows.append(track_row(n, licence=licence, **changed.get(n, {})))
    return rows


def _mirror(tmp: Path, name: str, meta: Path, tree: Path):
    data = tmp / name
    manifest = tmp / f"{name}.toml"
    manifest.write_text(
        f'[mirror]\nname = "t"\ndata_dir = "{data}"\n\n[[source]]\nkind = "fma"\n'
        f'metadata = "{meta}"\naudio_root = "{tree}"\n'
    )
    return open_mirror(manifest)


def _both(tmp_path, monkeypatch, files: list[list], between=None) -> tuple[list, list]:
    """Harvest each of `files` in turn into two catalogues, one with the range compare
    and one where every batch takes the staged path; the results and final item states
    must be equal. Returns (results, how many batches each harvest staged)."""
    monkeypatch.setattr(fma, "BATCH", 3)
    tree = tmp_path / "fma_full"
    write_audio_tree(tree, [2, 3, 4, 7, 8, 11, 1000001])  # the others: empty
    results: dict[bool, list] = {True: [], False: []}
    states: dict[bool, list] = {}
    staged: list[int] = []
    real_stage = fma_load.stage

    def counting_stage(db, rows):
        staged[-1] += 1
        real_stage(db, rows)

    monkeypatch.setattr(fma_load, "stage", counting_stage)
    for fast in (True, False):
        with monkeypatch.context() as mp:
            if not fast:
                mp.setattr(fma._Run, "_unchanged_range", lambda self, batch, raws: False)
            for i, rows in enumerate(files):
                meta = write_metadata_zip(tmp_path / f"meta-{fast}-{i}.zip", rows)
                with _mirror(tmp_path, f"fast-{fast}", meta, tree) as m:
                    if between and i:
                        between(m, i)
                    staged.append(0)
                    r = harvest(m)
                    r.pop("sources")
                    results[fast].append(r)
                    states[fast] = [tuple(x) for x in m.db.execute(ITEM_STATE)]
    assert results[True] == results[False]
    assert states[True] == states[False]
    return results[True], staged[: len(files)]


def test_unchanged_batches_are_counted_by_range_without_staging(tmp_path, monkeypatch):
    ids = list(range(2, 14))
    results, staged = _both(tmp_path, monkeypatch, [_rows(ids), _rows(ids)])
    again = results[1]
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 12)
    assert again["found"] == results[0]["found"] == 12
    assert again["bytes"] > 0 and again["bytes"] == results[0]["bytes"]
    assert again["refused_items"] == 2 and again["empty"] == results[0]["empty"] > 0
    # A first harvest (the source empty) writes every row as new, unstaged; the second
    # finds every batch unchanged by its range.
    assert staged == [0, 0]


def test_batches_that_differ_take_the_staged_path(tmp_path, monkeypatch):
    """A changed row, a row the file no longer lists (its item still in the range), rows
    out of order, a batch across 999999 -> 1000000 (text order is not numeric order
    there): each such batch is staged, and the counts are the staged path's."""
    first = list(range(2, 14)) + [999998, 999999, 1000001]
    moved = {3: {"track_listens": "77"}}
    changed = _rows(first, moved)
    gone = _rows([n for n in first if n != 9], moved)
    shuffled = _rows([2, 3, 4, 6, 5, 7, 8, 10, 11, 12, 13, 999998, 999999, 1000001], moved)
    results, staged = _both(tmp_path, monkeypatch, [_rows(first), changed, gone, shuffled])
    assert results[1]["updated"] == 1 and results[1]["unchanged"] == 14
    # Batches of 3: the changed row's, and [999998 999999 1000001] ("999998" > "1000001").
    assert staged[1] == 2
    # [8 10 11] has item 9 in its range; so has [12 13 999998] item 1000001 ("1000001"
    # sorts between "000012" and "999998"); [999999 1000001] is across the digits.
    assert staged[2] == 3
    # The same three, and [6 5 7] out of order.
    assert staged[3] == 4
    assert results[3]["unchanged"] == 14 and results[3]["updated"] == 0


def test_a_voided_fingerprint_sends_its_batch_to_the_staged_path(tmp_path, monkeypatch):
    """A takedown voids the item's fingerprint: its batch is staged and re-planned (it
    stays withdrawn and counts as such), the others still go by range."""
    ids = list(range(2, 14))

    def takedown(m, i):
        withdraw(m, "fma:000004", reason="test takedown")

    results, staged = _both(tmp_path, monkeypatch, [_rows(ids), _rows(ids)], between=takedown)
    assert staged[1] == 1
    again = results[1]
    assert again["updated"] == 1 and again["unchanged"] == 11
    assert again["found"] == 12


# The whole-input skip (sources/fma/inputs.py, catalogue/harvest_inputs.py, 0065).

IDS = list(range(2, 14))


class _Site:
    """One mirror whose manifest, metadata zip and audio tree tests rewrite in place."""

    def __init__(self, tmp: Path, monkeypatch) -> None:
        monkeypatch.setattr(fma, "BATCH", 3)
        self.tmp, self.monkeypatch = tmp, monkeypatch
        self.tree = tmp / "fma_full"
        write_audio_tree(self.tree, [2, 3, 4, 7, 8, 11])
        self.meta = write_metadata_zip(tmp / "fma_metadata.zip", _rows(IDS))
        self.licence = ""

    def harvest(self, **kw) -> dict:
        manifest = self.tmp / "m.toml"
        manifest.write_text(
            f'[mirror]\nname = "t"\ndata_dir = "{self.tmp / "data"}"\n\n[[source]]\n'
            f'kind = "fma"\nmetadata = "{self.meta}"\naudio_root = "{self.tree}"\n' + self.licence
        )
        with open_mirror(manifest) as m:
            before = _dump(m)
            r = harvest(m, **kw)
            self.changed = _dump(m) != before
        src = r.pop("sources")[0]
        if "skipped_pass" in src:
            r["skipped_pass"] = src["skipped_pass"]
        return r

    def edit(self, sql: str) -> None:
        with open_mirror(self.tmp / "m.toml") as m:
            m.db.execute(sql)


def _dump(m) -> list:
    return [tuple(r) for r in m.db.execute(ITEM_STATE)]


def _counts(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "skipped_pass"}


def test_unchanged_inputs_skip_the_row_pass(tmp_path, monkeypatch):
    site = _Site(tmp_path, monkeypatch)
    first = site.harvest()
    assert first["new"] == 12 and "skipped_pass" not in first

    def no_reading(*a, **k):
        raise AssertionError("the metadata was read")

    with monkeypatch.context() as mp:
        mp.setattr(fma, "open_raw_tracks", no_reading)
        again = site.harvest()
    assert again["skipped_pass"]["since"]
    assert not site.changed
    full = site.harvest(full=True)  # every row read: the same counts
    assert "skipped_pass" not in full and full["unchanged"] == 12
    assert _counts(again) == full
    assert not site.changed
    assert site.harvest()["skipped_pass"]  # --full recorded its pass again


def test_a_killed_harvest_leaves_no_record(tmp_path, monkeypatch):
    """A, then B killed half-way (one batch with a changed row committed), then A again
    (the same bytes): the record of A was forgotten when B's pass began."""
    site = _Site(tmp_path, monkeypatch)
    site.harvest()
    a = site.meta.read_bytes()
    write_metadata_zip(site.meta, _rows(IDS + [20, 21], {3: {"track_title": "Moved"}}))
    real = fma_load.insert_new

    def killed(db, rows, now):
        real(db, rows, now)
        raise KeyboardInterrupt  # after its writes, before its commit

    with monkeypatch.context() as mp:
        mp.setattr(fma_load, "insert_new", killed)
        with pytest.raises(KeyboardInterrupt):
            site.harvest()
    site.meta.write_bytes(a)
    back = site.harvest()
    assert "skipped_pass" not in back
    assert (back["updated"], back["unchanged"], back["new"]) == (1, 11, 0)


def test_a_killed_first_harvest_leaves_no_record(tmp_path, monkeypatch):
    site = _Site(tmp_path, monkeypatch)
    real = fma_load.insert_new
    calls = []

    def killed(db, rows, now):
        calls.append(1)
        real(db, rows, now)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(fma_load, "insert_new", killed)
        with pytest.raises(KeyboardInterrupt):
            site.harvest()
    again = site.harvest()
    assert "skipped_pass" not in again and (again["new"], again["unchanged"]) == (3, 9)


@pytest.mark.parametrize(
    "write",
    [
        "withdrawal",
        "UPDATE items SET title = 'edited' WHERE source_id = '000007'",
        "UPDATE files SET size = 1 WHERE name = '000007.mp3'",  # as a fetch of a URL does
        "DELETE FROM files WHERE name = '000008.mp3'",
        "DELETE FROM items WHERE source_id = '000009'",
    ],
)
def test_writes_to_the_items_since_forget_the_record(tmp_path, monkeypatch, write):
    site = _Site(tmp_path, monkeypatch)
    site.harvest()
    if write == "withdrawal":
        with open_mirror(tmp_path / "m.toml") as m:
            withdraw(m, "fma:000004", reason="test takedown")
    else:
        site.edit(write)
    after = site.harvest()
    assert "skipped_pass" not in after
    # Until a pass finds every row new or unchanged, then the next one skips it with
    # the counts that pass had.
    steady = after if after["updated"] == 0 else site.harvest()
    assert "skipped_pass" not in steady and steady["updated"] == 0
    skipped = site.harvest()
    assert skipped["skipped_pass"] and not site.changed
    assert _counts(skipped) == site.harvest(full=True)  # what reading every row counts


def test_writes_elsewhere_keep_the_record(tmp_path, monkeypatch):
    """What the counts and plans do not read: a fetch of a file whose size was known,
    an item's tier, another source's items."""
    site = _Site(tmp_path, monkeypatch)
    site.harvest()
    site.edit(
        "UPDATE files SET status = 'fetched', size = size, fetched_at = '2026' WHERE"
        " name = '000007.mp3'"
    )
    site.edit("UPDATE items SET tier = 1 WHERE source_id = '000007'")
    site.edit(
        "INSERT INTO items (source, source_id, title, first_seen, harvested_at)"
        " VALUES ('ia', 'x1', 'other', '2026', '2026')"
    )
    assert site.harvest()["skipped_pass"]


def _policy(site):
    site.licence = '\n[licence]\ndeny = ["CC0-1.0"]\n'


def _albums(site):
    write_metadata_zip(site.meta, _rows(IDS), albums=[{"album_id": "1", "album_producer": "P"}])


def _tree(site):
    write_audio_tree(site.tree, [13])


def _audio_size(site):
    path = site.tree / "000" / "000007.mp3"
    path.write_bytes(path.read_bytes() + b"\0")


def _schema(site):
    site.edit("INSERT INTO migrations (name, applied_at) VALUES ('9999_test', '2026')")


def _metadata(site):
    write_metadata_zip(site.meta, _rows(IDS, {5: {"track_listens": "9"}}))


@pytest.mark.parametrize("change", [_policy, _albums, _tree, _audio_size, _schema, _metadata])
def test_changed_inputs_are_read_again(tmp_path, monkeypatch, change):
    site = _Site(tmp_path, monkeypatch)
    site.harvest()
    assert site.harvest()["skipped_pass"]
    change(site)
    assert "skipped_pass" not in site.harvest()


def test_a_pass_that_updated_rows_records_nothing(tmp_path, monkeypatch):
    site = _Site(tmp_path, monkeypatch)
    site.harvest()
    write_metadata_zip(site.meta, _rows(IDS, {5: {"track_listens": "9"}}))
    assert site.harvest()["updated"] == 1
    steady = site.harvest()
    assert "skipped_pass" not in steady and steady["unchanged"] == 12
    assert _counts(site.harvest()) == steady


def test_cli_harvest_json_says_the_pass_was_skipped_and_full_reads(
    tmp_path, data_dir, write_manifest, cli
):
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows(IDS))
    manifest = write_manifest(
        f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\naudio_base_url = "http://127.0.0.1:9/"\n'
    )
    docs = []
    for args in ([], [], ["--full"]):
        p = cli("harvest", str(manifest), "--json", *args)
        assert p.returncode == 0, p.stderr
        docs.append(json.loads(p.stdout))
    assert [("skipped_pass" in d["sources"][0]) for d in docs] == [False, True, False]
    assert docs[1]["found"] == docs[2]["found"] == 12
    assert docs[1]["unchanged"] == docs[2]["unchanged"] == 12
    assert {k: v for k, v in docs[1]["sources"][0].items() if k != "skipped_pass"} == docs[2][
        "sources"
    ][0]
