"""raw_tracks.csv rows -> valid tracks, streaming, in flat memory.

A track is a plain tuple (`Track`): the row's fields by position (the header is read
once into `Columns`), never a dict per row: at ten million rows every per-row object
counts. Repeated track ids are found with a bitmap (one bit per id up to `BITMAP_IDS`,
a set beyond: real ids are small), not a set of every id seen.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, TextIO

from ccmirror.errors import UsageError

log = logging.getLogger("ccmirror.sources.fma")

# Columns without which a file is not raw_tracks.csv at all; the others may be absent.
REQUIRED = ("track_id", "license_url", "license_title", "track_title", "track_listens")
INT_COLUMNS = ("track_listens", "track_favorites", "track_interest")
MAX_EXAMPLES = 10  # malformed rows quoted in the result and logged one by one
BITMAP_IDS = 1 << 27  # ids below this are remembered in a bitmap (at most 16 MiB)

# Real rows hold long free text (track_information, lyrics); allow big fields.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass
class ReadStats:
    rows: int = 0
    malformed: int = 0
    duplicates: int = 0
    examples: list[dict[str, object]] = field(default_factory=list)

    def bad(self, name: str, line: int, problem: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"line": line, "problem": problem})
            log.warning("%s line %d: %s; row skipped", name, line, problem)
        elif self.malformed == MAX_EXAMPLES + 1:
            log.warning("%s: more malformed rows; only the count is reported", name)


class Columns:
    """Where each column sits in a row. A column the file lacks points one past the
    row's end, where `Track.fields` holds an empty string."""

    def __init__(self, header: list[str]) -> None:
        self.names = header
        self.width = len(header)
        self._at = {name: i for i, name in enumerate(header)}

    def __getitem__(self, name: str) -> int:
        return self._at.get(name, self.width)


class Track(NamedTuple):
    """One valid row: its fields (plus a trailing "" for absent columns) and counts."""

    track_id: int
    line: int
    fields: tuple[str, ...]  # a tuple of str: the cyclic GC stops tracking it (a list it
    # never does: a batch of 10,000 lists made every collection walk them, 1.5 us a row)
    listens: int
    favorites: int
    interest: int


def _count(value: str) -> int | None:
    v = value.strip()
    if not v:
        return 0
    if v.isdecimal():
        return int(v)
    if v[0] == "-" and v[1:].isdecimal():
        return 0
    try:  # pandas-written copies carry "12.0"
        f = float(v)
    except ValueError:
        return None
    return max(0, int(f)) if f == int(f) else None


class _Seen:
    """Track ids met so far: a growing bitmap for ids below BITMAP_IDS, a set above."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.big: set[int] = set()

    def add(self, tid: int) -> bool:
        """Record `tid`; False when it was already there."""
        if tid >= BITMAP_IDS:
            if tid in self.big:
                return False
            self.big.add(tid)
            return True
        byte, bit = tid >> 3, 1 << (tid & 7)
        bits = self.bits
        if byte >= len(bits):
            bits.extend(bytes(byte - len(bits) + 65536))
        if bits[byte] & bit:
            return False
        bits[byte] |= bit
        return True


def read_header(name: str, reader: Iterator[list[str]]) -> Columns:
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError(f"FMA metadata {name} is empty") from None
    except csv.Error as e:
        raise UsageError(f"FMA metadata {name}: unreadable header: {e}") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    # tracks.csv-style exports have an unnamed index column; raw_tracks.csv does not.
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UsageError(
            f"FMA metadata {name} is not raw_tracks.csv: no column {', '.join(missing)}"
        )
    return Columns(header)


def read_tracks(
    name: str, text: TextIO, stats: ReadStats, columns: list[Columns] | None = None
) -> Iterator[Track]:
    """Valid tracks in file order; malformed rows and repeated ids are counted and skipped.

    A row is malformed when its field count differs from the header's, its track_id is
    not a positive integer, or a count column is not a number; csv errors (NUL bytes,
    a runaway quote) are reported with the line where the record starts. The header's
    `Columns` is appended to `columns` when given.
    """
    reader = csv.reader(text, strict=True)
    cols = read_header(name, reader)
    if columns is not None:
        columns.append(cols)
    width = cols.width
    i_tid = cols["track_id"]
    i_listens, i_favorites, i_interest = (cols[c] for c in INT_COLUMNS)
    seen = _Seen()
    bits = seen.bits
    make = tuple.__new__  # Track(...) without its Python-level __new__: one call less a row
    prev_end = reader.line_num
    while True:
        start = prev_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            prev_end = reader.line_num
            stats.rows += 1
            stats.bad(name, start, f"unparseable CSV ({e})")
            continue
        prev_end = reader.line_num
        if len(fields) != width:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            stats.rows += 1
            stats.bad(name, start, f"{len(fields)} fields where the header has {width}")
            continue
        stats.rows += 1
        tid_text = fields[i_tid]
        if not tid_text.isdecimal():
            tid_text = tid_text.strip()
        tid = int(tid_text) if tid_text.isdecimal() else 0
        if tid <= 0:
            stats.bad(name, start, f"track_id {tid_text[:40]!r} is not a positive integer")
            continue
        fields.append("")  # what an absent column reads
        a, b, c = fields[i_listens], fields[i_favorites], fields[i_interest]
        listens = int(a) if a.isdecimal() else _count(a)
        favorites = int(b) if b.isdecimal() else _count(b)
        interest = int(c) if c.isdecimal() else _count(c)
        if listens is None or favorites is None or interest is None:
            bad = INT_COLUMNS[[listens, favorites, interest].index(None)]
            stats.bad(name, start, f"{bad} {fields[cols[bad]][:40]!r} is not a number")
            continue
        # seen.add(tid), inline for the bitmap (nearly every id)
        byte = tid >> 3
        if tid < BITMAP_IDS and byte < len(bits):
            bit = 1 << (tid & 7)
            fresh = not bits[byte] & bit
            bits[byte] |= bit
        else:
            fresh = seen.add(tid)
        if not fresh:
            stats.duplicates += 1
            log.warning("%s line %d: track %d repeated; the first row is kept", name, start, tid)
            continue
        yield make(Track, (tid, start, tuple(fields), listens, favorites, interest))
