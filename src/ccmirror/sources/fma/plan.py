"""What the catalogue should hold for one FMA track: its item row, file row and
per-recording columns, made from the row's fields by position.

The expensive mappings (licence URL/title -> verdict, album and artist, date stamps,
genre lists, durations) are memoised per distinct raw value: the dataset repeats them
heavily. Memos are bounded (MEMO_LIMIT) so a column of all-distinct values costs its
parse, never memory.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from ccmirror.catalogue.fma_load import ITEM_WRITE
from ccmirror.licence import Declared, judge_declared
from ccmirror.manifest import LicenceConfig
from ccmirror.recording import parse_genres
from ccmirror.sources.fma.audio import Audio
from ccmirror.sources.fma.rows import Columns, Track
from ccmirror.sources.values import iso_date, unescape

# Item columns the harvest owns, in the order used for writes and fingerprints.
ITEM_COLUMNS = ITEM_WRITE
_POPULARITY = ITEM_COLUMNS.index("popularity")
MEMO_LIMIT = 65536  # distinct values remembered per mapping before starting afresh


def source_id(track_id: int) -> str:
    """The catalogue id of a track: its id zero-padded to six digits, as in the dataset."""
    return f"{track_id:06d}"


@dataclass
class Planned:
    """What the catalogue should hold for one track."""

    source_id: str
    item: dict[str, Any]
    audio: Audio | None
    est_size: int | None = None  # bytes from bit rate x duration, when the size is unknown
    raw: str = ""  # the row fingerprint that made it
    recording: tuple[Any, ...] = ()  # values of catalogue.fma_load.RECORDING
    duration: float | None = None

    def fingerprint(self) -> str:
        """What `items.fingerprint` records (`fingerprint`)."""
        a = self.audio
        audio = (a.name, a.url, a.size, a.sha1, a.format) if a else None
        values = [self.item[c] for c in ITEM_COLUMNS]
        return fingerprint(self.raw, values, audio, self.est_size)


def _stamp(text: str) -> str | None:
    return iso_date(text, with_time=True)


def _text(value: str) -> str | None:
    """A free-text field as the catalogue keeps it: HTML entities unescaped (the dataset
    writes `Sharper &amp; Clearer`), stripped, None when empty (values.clean_text)."""
    if "&" in value:
        value = unescape(value)
    return value.strip() or None


def _int(text: str) -> int | None:
    return int(text) if text.isdecimal() else None


def duration(text: str) -> int | None:
    """'02:48' or '1:02:48' -> seconds."""
    parts = text.split(":")
    if not text or not all(p.isdecimal() for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def estimate_size(bit_rate: str, length: str) -> int | None:
    """Bytes of a track of `bit_rate` bit/s lasting `length` ('02:48'), if both known."""
    seconds = duration(length)
    rate = _int(bit_rate)
    if not seconds or not rate:
        return None
    return rate * seconds // 8


def album_facts(row: dict[str, str]) -> dict[str, Any]:
    """An album's release date, producer and engineer as a track's `extra` keeps them."""
    return {
        "release_date": iso_date(row.get("album_date_released"), with_time=True),
        "producer": row.get("album_producer") or None,
        "engineer": row.get("album_engineer") or None,
    }


def _artists(creator: str | None) -> str | None:
    return json.dumps([creator], ensure_ascii=False) if creator else None


class Planner:
    """Makes the catalogue values of a track; one per harvest (it holds the memos).

    `values` is the one mapping of a row to its item, file and recording values: the
    first load writes its tuples as they are, `plan` wraps them in a `Planned`.

    Fields that repeat (the licence, the album and artist, the dates, duration and bit
    rate, genres, track number) are mapped once per distinct raw value, straight to what
    the row's tuples and items.extra need (`_licence`, `_album`, `_dates`, `_length`,
    `_genres`, `_number`); a row then costs a few dict lookups and one string build."""

    def __init__(
        self, columns: Columns, config: LicenceConfig, albums: dict[str, dict[str, Any]]
    ) -> None:
        self.c = columns
        self.albums = albums
        self.gate = functools.lru_cache(maxsize=MEMO_LIMIT)(
            lambda url, title: judge_declared(url or None, title or None, config)
        )
        self.at = {name: columns[name] for name in _USED}
        self.pick = itemgetter(*(columns[name] for name in _USED))
        # One dict per memo, read inline (`memo.get(key) or self._miss(...)`): every value
        # is a non-empty tuple, so a miss is the only falsy answer.
        self.memos: dict[str, dict[Any, tuple[Any, ...]]] = {
            name: {}
            for name in (
                "licence",
                "album",
                "dates",
                "length",
                "genres",
                "number",
                "listens",
                "status",
            )
        }

    def declared(self, t: Track) -> Declared:
        f, at = t.fields, self.at
        return self.gate(f[at["license_url"]].strip(), _text(f[at["license_title"]]) or "")

    def plan(self, t: Track, found: Audio | None, missing: str | None, raw: str) -> Planned:
        sized = found is not None and found.size is not None
        values, est, recording, seconds, _ = self.values(t, found, missing, sized)
        return Planned(
            source_id(t.track_id),
            dict(zip(ITEM_COLUMNS, values, strict=True)),
            found,
            est,
            raw,
            recording,
            seconds,
        )

    def values(
        self, t: Track, found: object, missing: str | None, sized: bool
    ) -> tuple[tuple[Any, ...], int | None, tuple[Any, ...], float | None, str]:
        """(item values in ITEM_COLUMNS order, est_size, recording values, duration,
        repr(list(item values))) of a track whose audio is `found` (None: there is none,
        for the reason `missing`); `sized`: that audio's size is known (no estimate).
        The repr is what the plan's fingerprint hashes, made of pieces the memos hold."""
        (album_id, album_title, album_url, artist_id, artist_name, artist_url, licence_title,
            licence_url, bit_rate, composer, copyright_c, copyright_p, created, recorded,
            length, track_file, genres, lyricist, number, publisher, title, track_url,
        ) = self.pick(t.fields)  # fmt: skip
        m = self.memos
        url, ltitle, licence_id, refusal, licence_shown = m["licence"].get(
            (licence_url, licence_title)
        ) or self._licence(licence_url, licence_title)
        if refusal is not None:
            status, reason = "refused", refusal
        elif found is None:
            status, reason = "empty", missing
        else:
            status, reason = "ok", None
        key = (album_id, album_url, artist_id, artist_url, artist_name, album_title)
        head, album, creator, artists, producer, engineer, release, day, tail, album_shown = m[
            "album"
        ].get(key) or self._album(key)
        date, created, recorded, dates, date_shown = m["dates"].get(
            (created, recorded)
        ) or self._dates(created, recorded)
        seconds, estimate, span = m["length"].get((length, bit_rate)) or self._length(
            length, bit_rate
        )
        genres, listed = m["genres"].get(genres) or self._genres(genres)
        number, numbered = m["number"].get(number) or self._number(number)
        listens, listens_shown = m["listens"].get(t.listens) or self._listens(t.listens)
        status_shown = m["status"].get((status, reason)) or self._status(status, reason)
        # Free text mostly empty: _text only for a field that holds something.
        composer = _text(composer) if composer else None
        publisher = _text(publisher) if publisher else None
        lyricist = (lyricist.strip() or None) if lyricist else None
        copyright_c = _text(copyright_c) if copyright_c else None
        copyright_p = _text(copyright_p) if copyright_p else None
        track_file = track_file.strip()
        # items.extra: json.dumps(its non-None values, sort_keys=True, ensure_ascii=False),
        # written out key by key in sorted order; "favorites" is always there, so what
        # comes before it ends in ", " and what comes after starts with one.
        extra = (
            f"{{{head}"
            f"{'' if composer is None else _KEY_COMPOSER + _json(composer) + ', '}"
            f"{'' if copyright_c is None else _KEY_COPY_C + _json(copyright_c) + ', '}"
            f"{'' if copyright_p is None else _KEY_COPY_P + _json(copyright_p) + ', '}"
            f'{dates}{span}{engineer}"favorites": {t.favorites}{listed}'
            f', "interest": {t.interest}'
            f"{'' if lyricist is None else _KEY_LYRICIST + _json(lyricist)}{producer}"
            f"{'' if publisher is None else _KEY_PUBLISHER + _json(publisher)}{release}"
            f"{_KEY_TRACK_FILE + _json(track_file) if track_file else ''}"
            f', "track_id": {t.track_id}{numbered}}}'
        )
        title, source_url = _text(title), track_url.strip() or None
        item = (title, creator, album, date, source_url, url, ltitle, licence_id, listens,
                extra, status, reason)  # fmt: skip
        shown = (
            f"[{title!r}, {album_shown}, {date_shown}, {source_url!r}, {licence_shown},"
            f" {listens_shown}, {_json_repr(extra)}, {status_shown}]"
        )
        recording = (artists, None if number is None else str(number), genres, composer,
                     lyricist, tail[0], tail[1], publisher, day)  # fmt: skip
        est = estimate if found is not None and not sized else None
        return item, est, recording, float(seconds) if seconds else None, shown

    # The memos' misses: each computes what the row needs of one distinct raw value.

    def _remember(self, name: str, key: Any, value: tuple[Any, ...]) -> tuple[Any, ...]:
        memo = self.memos[name]
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = value
        return value

    def _licence(self, licence_url: str, licence_title: str) -> tuple[Any, ...]:
        """(licence_url, licence_title, declared licence id, refusal reason or None)."""
        url = licence_url.strip()
        ltitle = _text(licence_title) or ""
        declared: Declared = self.gate(url, ltitle)
        refusal = None if declared.allowed else declared.reason or "licence not allowed"
        url, ltitle = url or None, ltitle or None
        shown = f"{url!r}, {ltitle!r}, {declared.licence_id!r}"
        value = (url, ltitle, declared.licence_id, refusal, shown)
        return self._remember("licence", (licence_url, licence_title), value)

    def _album(self, key: tuple[str, ...]) -> tuple[Any, ...]:
        """items.extra's album and artist keys, the album title, the creator and its
        artists list, and the album row's producer, engineer and release date (as
        extra's keys and as recording values)."""
        album_id, album_url, artist_id, artist_url, artist_name, album_title = key
        album_id, artist_id = album_id.strip(), artist_id.strip()
        facts = self.albums.get(album_id) or _NO_ALBUM
        head = []
        if album_id.isdecimal():
            head.append(f'"album_id": {int(album_id)}, ')
        _put(head, '"album_url": ', album_url.strip() or None)
        if artist_id.isdecimal():
            head.append(f'"artist_id": {int(artist_id)}, ')
        _put(head, '"artist_url": ', artist_url.strip() or None)
        producer, engineer = facts.get("producer"), facts.get("engineer")
        release = facts.get("release_date")
        creator = _text(artist_name)
        value = (
            "".join(head),
            _text(album_title),
            creator,
            _artists(creator),
            "" if producer is None else ', "producer": ' + _json(producer),
            "" if engineer is None else '"engineer": ' + _json(engineer) + ", ",
            "" if release is None else ', "release_date": ' + _json(release),
            iso_date(release),
            (producer, engineer),
            f"{creator!r}, {_text(album_title)!r}",
        )
        return self._remember("album", key, value)

    def _dates(self, created: str, recorded: str) -> tuple[Any, ...]:
        """(items.date, date_created, date_recorded, their keys in items.extra)."""
        stamp_c, stamp_r = _stamp(created.strip()), _stamp(recorded.strip())
        keys = []
        _put(keys, '"date_created": ', stamp_c)
        _put(keys, '"date_recorded": ', stamp_r)
        date = (stamp_r or stamp_c or "")[:10] or None
        value = (date, stamp_c, stamp_r, "".join(keys), repr(date))
        return self._remember("dates", (created, recorded), value)

    def _length(self, length: str, bit_rate: str) -> tuple[Any, ...]:
        """(seconds, estimated size, the duration key of items.extra)."""
        text = length.strip()
        seconds = duration(text)
        span = "" if seconds is None else f'"duration": {seconds}, '
        value = (seconds, estimate_size(bit_rate.strip(), text), span)
        return self._remember("length", (length, bit_rate), value)

    def _genres(self, raw: str) -> tuple[Any, ...]:
        genres = parse_genres(raw.strip())
        return self._remember(
            "genres", raw, (genres, "" if genres is None else ', "genres": ' + _json(genres))
        )

    def _listens(self, listens: int) -> tuple[Any, ...]:
        popularity = float(listens)
        return self._remember("listens", listens, (popularity, repr(popularity)))

    def _status(self, status: str, reason: str | None) -> str:
        return self._remember("status", (status, reason), f"{status!r}, {reason!r}")  # type: ignore[return-value]

    def _number(self, raw: str) -> tuple[Any, ...]:
        text = raw.strip()
        number = int(text) if text.isdecimal() else None
        numbered = "" if number is None else f', "track_number": {number}'
        return self._remember("number", raw, (number, numbered))


_NO_ALBUM: dict[str, Any] = {}
_json = encode_basestring
_KEY_COMPOSER = '"composer": '
_KEY_COPY_C = '"copyright_c": '
_KEY_COPY_P = '"copyright_p": '
_KEY_LYRICIST = ', "lyricist": '
_KEY_PUBLISHER = ', "publisher": '
_KEY_TRACK_FILE = ', "track_file": '


def _json_repr(text: str) -> str:
    """repr(text) of JSON that encode_basestring wrote (no character below U+0020):
    without a quote, a backslash, DEL or anything beyond ASCII, repr only adds quotes
    (its own choice: single ones, as the text holds none); else repr itself."""
    if text.isascii() and "'" not in text and "\\" not in text and "\x7f" not in text:
        return f"'{text}'"
    return repr(text)


def _put(parts: list[str], key: str, value: str | None) -> None:
    """`key` and `value` as JSON, then ", " (keys before "favorites" in items.extra)."""
    if value is not None:
        parts.append(key + encode_basestring(value) + ", ")


def fingerprint(raw: str, values: Sequence[Any], audio: object, est_size: int | None) -> str:
    """What `items.fingerprint` records: the row's fingerprint `raw`, then the plan's (the
    repr of the values written: str, int, float and None only, so it is exact).
    `values`: ITEM_COLUMNS order; `audio`: (name, url, size, sha1, format) or None."""
    values = list(values)
    values[_POPULARITY] = float(values[_POPULARITY] or 0)
    return fingerprint_shown(raw, repr(values), audio, est_size)


def fingerprint_shown(raw: str, shown: str, audio: object, est_size: int | None) -> str:
    """`fingerprint` from `shown`, repr of the values list (popularity a float): what
    `Planner.values` returns, so the first load hashes the same text without a repr."""
    text = f"({shown}, {audio!r}, {est_size!r})".encode("utf-8", "surrogatepass")
    return f"{raw}:{hashlib.blake2b(text, digest_size=8).hexdigest()}"


_USED = (
    "album_id",
    "album_title",
    "album_url",
    "artist_id",
    "artist_name",
    "artist_url",
    "license_title",
    "license_url",
    "track_bit_rate",
    "track_composer",
    "track_copyright_c",
    "track_copyright_p",
    "track_date_created",
    "track_date_recorded",
    "track_duration",
    "track_file",
    "track_genres",
    "track_lyricist",
    "track_number",
    "track_publisher",
    "track_title",
    "track_url",
)
