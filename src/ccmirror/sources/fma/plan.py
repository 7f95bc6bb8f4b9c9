"""What the catalogue should hold for one FMA track: its item row, file row and
per-recording columns, made from the row's fields by position.

The expensive mappings (licence URL/title -> verdict, date stamps, genre lists, durations)
are memoised per distinct value: the dataset repeats them heavily. Memos are bounded
(`_Memo`) so a column of all-distinct values costs its parse, never memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
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


class _Memo:
    """fn(value), remembered per distinct value (at most MEMO_LIMIT at a time)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seen: dict[Any, Any] = {}

    def __call__(self, *key: Any) -> Any:
        seen = self.seen
        try:
            return seen[key]
        except KeyError:
            pass
        if len(seen) >= MEMO_LIMIT:
            seen.clear()
        value = seen[key] = self.fn(*key)
        return value


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
    first load writes its tuples as they are, `plan` wraps them in a `Planned`."""

    def __init__(
        self, columns: Columns, config: LicenceConfig, albums: dict[str, dict[str, Any]]
    ) -> None:
        self.c = columns
        self.albums = albums
        self.gate = _Memo(lambda url, title: judge_declared(url or None, title or None, config))
        self.stamp = _Memo(_stamp)
        self.day = _Memo(iso_date)
        self.genres = _Memo(parse_genres)
        self.seconds = _Memo(duration)
        self.estimate = _Memo(estimate_size)
        self.artists = _Memo(_artists)
        self.at = {name: columns[name] for name in _USED}
        self.pick = itemgetter(*(columns[name] for name in _USED))

    def declared(self, t: Track) -> Declared:
        f, at = t.fields, self.at
        return self.gate(f[at["license_url"]].strip(), _text(f[at["license_title"]]) or "")

    def plan(self, t: Track, found: Audio | None, missing: str | None, raw: str) -> Planned:
        sized = found is not None and found.size is not None
        values, est, recording, seconds = self.values(t, found, missing, sized)
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
    ) -> tuple[tuple[Any, ...], int | None, tuple[Any, ...], float | None]:
        """(item values in ITEM_COLUMNS order, est_size, recording values, duration) of
        a track whose audio is `found` (None: there is none, for the reason `missing`);
        `sized`: that audio's size is known (no estimate)."""
        (album_id, album_title, album_url, artist_id, artist_name, artist_url, licence_title,
            licence_url, bit_rate, composer, copyright_c, copyright_p, created, recorded,
            length, track_file, genres, lyricist, number, publisher, title, track_url,
        ) = self.pick(t.fields)  # fmt: skip
        url = licence_url.strip()
        ltitle = _text(licence_title) or ""
        declared: Declared = self.gate(url, ltitle)
        status, reason = _status(declared, found, missing)
        album_id = album_id.strip()
        album = self.albums.get(album_id) or _NO_ALBUM
        length = length.strip()
        seconds = self.seconds(length)
        created = self.stamp(created.strip())
        recorded = self.stamp(recorded.strip())
        composer = _text(composer)
        publisher = _text(publisher)
        genres = self.genres(genres.strip())
        lyricist = lyricist.strip() or None
        number = number.strip()
        number = int(number) if number.isdecimal() else None
        producer, engineer = album.get("producer"), album.get("engineer")
        release = album.get("release_date")
        artist_id = artist_id.strip()
        extra = _extra(
            t, album_id, album_url, artist_id, artist_url, composer, copyright_c, copyright_p,
            created, recorded, seconds, engineer, genres, lyricist, producer, publisher,
            release, track_file, number,
        )  # fmt: skip
        creator = _text(artist_name)
        item = (
            _text(title),
            creator,
            _text(album_title),
            (recorded or created or "")[:10] or None,
            track_url.strip() or None,
            url or None,
            ltitle or None,
            declared.licence_id,
            float(t.listens),
            extra,
            status,
            reason,
        )
        est = None
        if found is not None and not sized:
            est = self.estimate(bit_rate.strip(), length)
        recording = (
            self.artists(creator),
            str(number) if number is not None else None,
            genres,
            composer,
            lyricist,
            producer,
            engineer,
            publisher,
            self.day(release),
        )
        return item, est, recording, float(seconds) if seconds else None


_NO_ALBUM: dict[str, Any] = {}


def _status(declared: Declared, found: object, missing: str | None) -> tuple[str, str | None]:
    """An item's status and reason: the licence first, then whether audio was found."""
    if not declared.allowed:
        return "refused", declared.reason or "licence not allowed"
    if found is None:
        return "empty", missing
    return "ok", None


def _extra(
    t: Track, album_id: str, album_url: str, artist_id: str, artist_url: str,
    composer: str | None, copyright_c: str, copyright_p: str, created: str | None,
    recorded: str | None, seconds: int | None, engineer: str | None, genres: str | None,
    lyricist: str | None, producer: str | None, publisher: str | None, release: str | None,
    track_file: str, number: int | None,
) -> str:  # fmt: skip
    """items.extra: json.dumps(its non-None values, sort_keys=True, ensure_ascii=False),
    written out key by key in sorted order (str and int values only)."""
    parts = []
    if album_id.isdecimal():
        parts.append('"album_id": ' + str(int(album_id)))
    _put(parts, '"album_url": ', album_url.strip() or None)
    if artist_id.isdecimal():
        parts.append('"artist_id": ' + str(int(artist_id)))
    _put(parts, '"artist_url": ', artist_url.strip() or None)
    _put(parts, '"composer": ', composer)
    _put(parts, '"copyright_c": ', _text(copyright_c))
    _put(parts, '"copyright_p": ', _text(copyright_p))
    _put(parts, '"date_created": ', created)
    _put(parts, '"date_recorded": ', recorded)
    if seconds is not None:
        parts.append('"duration": ' + str(seconds))
    _put(parts, '"engineer": ', engineer)
    parts.append('"favorites": ' + str(t.favorites))
    _put(parts, '"genres": ', genres)
    parts.append('"interest": ' + str(t.interest))
    _put(parts, '"lyricist": ', lyricist)
    _put(parts, '"producer": ', producer)
    _put(parts, '"publisher": ', publisher)
    _put(parts, '"release_date": ', release)
    _put(parts, '"track_file": ', track_file.strip() or None)
    parts.append('"track_id": ' + str(t.track_id))
    if number is not None:
        parts.append('"track_number": ' + str(number))
    return "{" + ", ".join(parts) + "}"


def _put(parts: list[str], key: str, value: str | None) -> None:
    if value is not None:
        parts.append(key + encode_basestring(value))


def fingerprint(raw: str, values: Sequence[Any], audio: object, est_size: int | None) -> str:
    """What `items.fingerprint` records: the row's fingerprint `raw`, then the plan's (the
    repr of the values written: str, int, float and None only, so it is exact).
    `values`: ITEM_COLUMNS order; `audio`: (name, url, size, sha1, format) or None."""
    values = list(values)
    values[_POPULARITY] = float(values[_POPULARITY] or 0)
    text = repr((values, audio, est_size)).encode("utf-8", "surrogatepass")
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
