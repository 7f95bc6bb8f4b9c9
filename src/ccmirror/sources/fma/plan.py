"""What the catalogue should hold for one FMA track: its item row, file row and
per-recording columns, made from the row's fields by position.

The expensive mappings (licence URL/title -> verdict, date stamps, genre lists, durations)
are memoised per distinct value: the dataset repeats them heavily. Memos are bounded
(`_Memo`) so a column of all-distinct values costs its parse, never memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
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
        """What `items.fingerprint` records: the row's fingerprint, then the plan's (the
        repr of the values written: str, int, float and None only, so it is exact)."""
        item = self.item
        values = [item[c] for c in ITEM_COLUMNS]
        values[_POPULARITY] = float(item["popularity"] or 0)
        a = self.audio
        audio = (a.name, a.url, a.size, a.sha1, a.format) if a else None
        text = repr((values, audio, self.est_size)).encode("utf-8", "surrogatepass")
        return f"{self.raw}:{hashlib.blake2b(text, digest_size=8).hexdigest()}"


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
    """Makes a `Planned` of a track; one per harvest (it holds the memos)."""

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

    def declared(self, t: Track) -> Declared:
        f, at = t.fields, self.at
        return self.gate(f[at["license_url"]].strip(), _text(f[at["license_title"]]) or "")

    def plan(self, t: Track, found: Audio | None, missing: str | None, raw: str) -> Planned:
        f, at = t.fields, self.at
        url = f[at["license_url"]].strip()
        title = _text(f[at["license_title"]]) or ""
        declared: Declared = self.gate(url, title)
        if not declared.allowed:
            status, reason = "refused", declared.reason or "licence not allowed"
        elif found is None:
            status, reason = "empty", missing
        else:
            status, reason = "ok", None
        extra = self._extra(t)
        created = extra.get("date_created")
        recorded = extra.get("date_recorded")
        creator = _text(f[at["artist_name"]])
        item = {
            "title": _text(f[at["track_title"]]),
            "creator": creator,
            "album": _text(f[at["album_title"]]),
            "date": (recorded or created or "")[:10] or None,
            "source_url": f[at["track_url"]].strip() or None,
            "licence_url": url or None,
            "licence_title": title or None,
            "declared_licence_id": declared.licence_id,
            "popularity": float(t.listens),
            "extra": extra_json(extra),
            "status": status,
            "reason": reason,
        }
        est = None
        if found is not None and found.size is None:
            est = self.estimate(f[at["track_bit_rate"]].strip(), f[at["track_duration"]].strip())
        number = extra.get("track_number")
        recording = (
            self.artists(creator),
            str(number) if number is not None else None,
            extra.get("genres"),
            extra.get("composer"),
            extra.get("lyricist"),
            extra.get("producer"),
            extra.get("engineer"),
            extra.get("publisher"),
            self.day(extra.get("release_date")),
        )
        seconds = extra.get("duration")
        return Planned(
            source_id(t.track_id),
            item,
            found,
            est,
            raw,
            recording,
            float(seconds) if seconds else None,
        )

    def _extra(self, t: Track) -> dict[str, Any]:
        f, at = t.fields, self.at
        extra = {
            "track_id": t.track_id,
            "favorites": t.favorites,
            "interest": t.interest,
            "artist_id": _int(f[at["artist_id"]].strip()),
            "artist_url": f[at["artist_url"]].strip() or None,
            "album_id": _int(f[at["album_id"]].strip()),
            "album_url": f[at["album_url"]].strip() or None,
            "copyright_c": _text(f[at["track_copyright_c"]]),
            "copyright_p": _text(f[at["track_copyright_p"]]),
            "composer": _text(f[at["track_composer"]]),
            "publisher": _text(f[at["track_publisher"]]),
            "track_number": _int(f[at["track_number"]].strip()),
            "duration": self.seconds(f[at["track_duration"]].strip()),
            "date_created": self.stamp(f[at["track_date_created"]].strip()),
            "date_recorded": self.stamp(f[at["track_date_recorded"]].strip()),
            "track_file": f[at["track_file"]].strip() or None,
            "lyricist": f[at["track_lyricist"]].strip() or None,
            "genres": self.genres(f[at["track_genres"]].strip()),
        }
        album = self.albums.get(f[at["album_id"]].strip())
        if album:
            extra.update(album)
        return extra


def extra_json(extra: dict[str, Any]) -> str:
    """`json.dumps(extra without its None values, sort_keys=True, ensure_ascii=False)`,
    written out for the keys a plan makes (str and int values): a third of its cost."""
    if extra.keys() - _EXTRA_ORDER:
        kept = {k: v for k, v in extra.items() if v is not None}
        return json.dumps(kept, sort_keys=True, ensure_ascii=False)
    parts = []
    for k in _EXTRA_KEYS:
        v = extra.get(k)
        if v is None:
            continue
        if v.__class__ is str:
            parts.append(f'"{k}": {encode_basestring(v)}')
        elif v.__class__ is int:
            parts.append(f'"{k}": {v}')
        else:
            kept = {k: v for k, v in extra.items() if v is not None}
            return json.dumps(kept, sort_keys=True, ensure_ascii=False)
    return "{" + ", ".join(parts) + "}"


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
_EXTRA_KEYS = (
    "album_id",
    "album_url",
    "artist_id",
    "artist_url",
    "composer",
    "copyright_c",
    "copyright_p",
    "date_created",
    "date_recorded",
    "duration",
    "engineer",
    "favorites",
    "genres",
    "interest",
    "lyricist",
    "producer",
    "publisher",
    "release_date",
    "track_file",
    "track_id",
    "track_number",
)
_EXTRA_ORDER = frozenset(_EXTRA_KEYS)
