"""The FMA planner's memos and the first load's inline rows, against a plain mapping.

`Planner.values` maps repeated fields once per distinct raw value and builds
items.extra by hand; `_Run.new_rows` inlines the fingerprint. Here a plain reference
(no memo, json.dumps, the library's parsers called on every row) says what each row
must give, on rows whose fields are drawn from the dataset's odd values (entities,
odd dates, padding, missing fields, unknown licences), one planner shared across all
of them with memos small enough to be cleared midway."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ccmirror.sources.fma as fma
import ccmirror.sources.fma.plan as plan
from ccmirror.licence import judge_declared
from ccmirror.manifest import LicenceConfig
from ccmirror.recording import parse_genres
from ccmirror.sources.fma.audio import Audio, AudioIndex
from ccmirror.sources.fma.rows import Columns, Track
from ccmirror.sources.values import iso_date, unescape
from fmahelpers import BY_4, BY_NC_ND_3_US, BY_NC_SA_3, CC0, COLUMNS, FMA_LIMITED, SAMPLING_1

TEXT = ["", " ", "Plain", "Sharper &amp; Clearer", "&amp;amp; twice", "&notes", " pad ",
        "caf&eacute;", "&#233;t&#xE9;", "q\"uo'te", "back\\slash", "tab\tin", "\u00e9\u4e2d",
        "&lt;b&gt;", "x&y;z", "del\x7f", "new\nline"]  # fmt: skip
DATES = ["", "11/26/2008 01:48:12 AM", "11/26/2008", "1/01/08", "2/30/2008", "13/01/2008",
         "2008-01-01", "2008", "0000-00-00", " 3/4/99 12:00 PM ", "12/31/1999 11:59:59 pm",
         "garbage", "1/1/30", "2008-00-00"]  # fmt: skip
LENGTHS = ["", "02:48", "1:02:48", "00:00", "5", "x:10", "99:99", "1:2:3:4", " 03:00 "]
RATES = ["", "320000", "0", "abc", " 256000 ", "128000"]
GENRES = ["", "[{'genre_id': '21', 'genre_title': 'Hip-Hop'}]", "[]", "[{'genre_id': '1'}]",
          "Rock;Pop", "[bad", "{'genre_title': 'Solo'}",
          "[{'genre_title': 'A'}, {'genre_title': 'A'}, {'genre_title': 'B &amp; C'}]"]  # fmt: skip
LICENCES = [BY_4, BY_NC_SA_3, CC0, FMA_LIMITED, SAMPLING_1, BY_NC_ND_3_US, ("", ""),
            ("Attribution &amp; more", ""), (" Attribution ", f" {BY_4[1]} ")]  # fmt: skip
IDS = ["", "12", " 12 ", "x", "1001", "1002", "0042", "\u0663"]
FILES = ["", "music/A/B/t.mp3", "music/a b/t.MP3", "/abs/x.flac", "http://x/y.mp3",
         "../up.mp3", "music/x.weird_ext", "m/t", "a/.hidden.mp3", " music/pad.ogg "]  # fmt: skip
ALBUMS = {
    "12": {"album_date_released": "3/14/2009", "album_producer": "P &amp; Q"},
    "1001": {"album_engineer": "Eng", "album_date_released": "bogus"},
    "1002": {"album_producer": "Pro", "album_engineer": "E\"n'g", "album_date_released": "2010"},
}
CONFIG = LicenceConfig()


def _pick(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), st.text(max_size=6))


ROW = st.fixed_dictionaries(
    {
        "album_id": _pick(IDS),
        "album_title": _pick(TEXT),
        "album_url": _pick(["", "http://a/", " http://b/ "]),
        "artist_id": _pick(IDS),
        "artist_name": _pick(TEXT),
        "artist_url": _pick(["", "http://ar/"]),
        "licence": st.sampled_from(LICENCES),
        "track_bit_rate": _pick(RATES),
        "track_composer": _pick(TEXT),
        "track_copyright_c": _pick(TEXT),
        "track_copyright_p": _pick(TEXT),
        "track_date_created": _pick(DATES),
        "track_date_recorded": _pick(DATES),
        "track_duration": _pick(LENGTHS),
        "track_file": _pick(FILES),
        "track_genres": _pick(GENRES),
        "track_lyricist": _pick(TEXT),
        "track_number": _pick(["", "1", "07", "x", " 3 ", "0"]),
        "track_publisher": _pick(TEXT),
        "track_title": _pick(TEXT),
        "track_url": _pick(["", " u ", "http://t/"]),
        "counts": st.tuples(st.integers(0, 10**9), st.integers(0, 99), st.integers(0, 99)),
        "audio": st.sampled_from(["url", "sized", "unsized"]),
    }
)


def _track(n: int, row: dict[str, Any]) -> Track:
    values = {c: "" for c in COLUMNS}
    values.update({k: v for k, v in row.items() if k in values})
    values["license_title"], values["license_url"] = row["licence"]
    values["track_id"] = str(n)
    listens, favorites, interest = row["counts"]
    return Track(n, n, (*(values[c] for c in COLUMNS), ""), listens, favorites, interest)


def _text(value: str) -> str | None:
    return unescape(value).strip() or None


def reference(t: Track, found: Audio | None, missing: str | None) -> tuple[Any, ...]:
    """What a row maps to, the plain way: (item values, est_size, recording, duration)."""
    cols = Columns(list(COLUMNS))

    def f(name: str) -> str:
        return t.fields[cols[name]]

    url, ltitle = f("license_url").strip(), _text(f("license_title"))
    declared = judge_declared(url or None, ltitle, CONFIG)
    if not declared.allowed:
        status, reason = "refused", declared.reason or "licence not allowed"
    elif found is None:
        status, reason = "empty", missing
    else:
        status, reason = "ok", None
    album_id, artist_id = f("album_id").strip(), f("artist_id").strip()
    facts = plan.album_facts(ALBUMS.get(album_id, {}))
    seconds = plan.duration(f("track_duration").strip())
    created = iso_date(f("track_date_created"), with_time=True)
    recorded = iso_date(f("track_date_recorded"), with_time=True)
    genres = parse_genres(f("track_genres").strip())
    number = f("track_number").strip()
    number = int(number) if number.isdecimal() else None
    composer, publisher = _text(f("track_composer")), _text(f("track_publisher"))
    lyricist = f("track_lyricist").strip() or None
    extra = {
        "album_id": int(album_id) if album_id.isdecimal() else None,
        "album_url": f("album_url").strip() or None,
        "artist_id": int(artist_id) if artist_id.isdecimal() else None,
        "artist_url": f("artist_url").strip() or None,
        "composer": composer,
        "copyright_c": _text(f("track_copyright_c")),
        "copyright_p": _text(f("track_copyright_p")),
        "date_created": created,
        "date_recorded": recorded,
        "duration": seconds,
        "engineer": facts["engineer"],
        "favorites": t.favorites,
        "genres": genres,
        "interest": t.interest,
        "lyricist": lyricist,
        "producer": facts["producer"],
        "publisher": publisher,
        "release_date": facts["release_date"],
        "track_file": f("track_file").strip() or None,
        "track_id": t.track_id,
        "track_number": number,
    }
    extra_json = json.dumps(
        {k: v for k, v in extra.items() if v is not None}, sort_keys=True, ensure_ascii=False
    )
    creator = _text(f("artist_name"))
    item = (
        _text(f("track_title")),
        creator,
        _text(f("album_title")),
        (recorded or created or "")[:10] or None,
        f("track_url").strip() or None,
        url or None,
        ltitle,
        declared.licence_id,
        float(t.listens),
        extra_json,
        status,
        reason,
    )
    est = None
    if found is not None and found.size is None:
        est = plan.estimate_size(f("track_bit_rate").strip(), f("track_duration").strip())
    recording = (
        json.dumps([creator], ensure_ascii=False) if creator else None,
        str(number) if number is not None else None,
        genres,
        composer,
        lyricist,
        facts["producer"],
        facts["engineer"],
        publisher,
        iso_date(facts["release_date"]),
    )
    return item, est, recording, float(seconds) if seconds else None


def _audio(t: Track, kind: str) -> AudioIndex:
    index = AudioIndex(None, "http://files.example/")
    if kind != "url":
        size = 1234 if kind == "sized" else None
        index.entries[t.track_id] = Audio(f"{t.track_id:06d}.mp3", "file:///a", size, None, "MP3")
    return index


def _run(index: AudioIndex, planner: plan.Planner) -> fma._Run:
    run = fma._Run(None, CONFIG, Columns(list(COLUMNS)), index, {}, "salt", {}, True)
    run.planner = planner
    run.result = fma.harvest_counts() | {"bytes": 0}
    return run


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=40))
def test_memoised_rows_equal_the_plain_mapping(rows):
    """One planner over every row (its memos cleared every 5 distinct values) gives
    each row exactly what the plain mapping gives it; the first load's tuples are
    exactly those `_rows(plan(...))` makes, fingerprint included."""
    old, plan.MEMO_LIMIT = plan.MEMO_LIMIT, 5
    try:
        albums = {k: plan.album_facts(v) for k, v in ALBUMS.items()}
        planner = plan.Planner(Columns(list(COLUMNS)), CONFIG, albums)
        for n, row in enumerate(rows, 2):
            t = _track(n, row)
            index = _audio(t, row["audio"])
            found, missing = index.lookup(t.track_id, t.fields[COLUMNS.index("track_file")].strip())
            sized = found is not None and found.size is not None
            *values, shown = planner.values(t, found, missing, sized)
            assert tuple(values) == reference(t, found, missing)
            assert shown == repr(list(values[0]))  # what the plan's fingerprint hashes
            raw = hashlib.sha1(repr(t).encode()).hexdigest()[:16]
            assert _run(index, planner).new_rows([t], [raw]) == [
                fma._rows(planner.plan(t, found, missing, raw))
            ]
    finally:
        plan.MEMO_LIMIT = old


ODD = st.text(st.sampled_from("a \"'\\\x7f\x00\n\u00e9\u2028\U0001f600"), max_size=8)


@given(st.recursive(st.none() | st.integers() | st.text() | ODD, lambda x: st.lists(x, max_size=3)))
@example("it's")
@example("del\x7f")
@example("back\\slash")
@example("caf\u00e9")
@example(["plain", 1, None])
def test_json_repr_is_repr(value):
    """The shortcut for items.extra's repr: exactly repr, quotes, backslashes, DEL and
    text beyond ASCII included."""
    text = json.dumps({"k": value}, ensure_ascii=False)
    assert plan._json_repr(text) == repr(text)


def test_the_memos_are_bounded():
    planner = plan.Planner(Columns(list(COLUMNS)), CONFIG, {})
    old, plan.MEMO_LIMIT = plan.MEMO_LIMIT, 3
    try:
        for n in range(2, 12):
            planner.values(_track(n, {"licence": CC0, "counts": (0, 0, 0),
                                      "track_date_created": f"1/{n}/08"}), None, "x", False)  # fmt: skip
    finally:
        plan.MEMO_LIMIT = old
    assert 1 <= len(planner.memos["dates"]) <= 3
