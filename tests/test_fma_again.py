"""A re-harvest of the FMA dataset: the range compare of unchanged batches
(`_Run._unchanged_range`), checked against the staged path it stands in for."""

from __future__ import annotations

from pathlib import Path

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
    assert staged == [4, 0]  # a first harvest stages every batch; the second none


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
