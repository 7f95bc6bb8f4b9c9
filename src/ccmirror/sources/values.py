"""Values as sources write them -> values as the catalogue keeps them.

Dates: the FMA dataset writes US-style stamps (`1/01/08`, `11/26/2008 01:48:12 AM`), IA
uploaders write anything from `2008` to `2008-01-01 12:00:00` and the placeholder
`0000-00-00`. The catalogue keeps ISO 8601 (`2008`, `2008-01`, `2008-01-01`,
`2008-11-26T01:48:12`); a date that names no real day is dropped, never kept as text.

Text: the FMA dataset (and some IA uploads) carry HTML entities (`Sharper &amp; Clearer`);
they are unescaped once at harvest so the catalogue, ATTRIBUTION.md and MANIFEST.csv hold
the text itself.
"""

from __future__ import annotations

import html
import re
from datetime import date

# Two-digit years: 00-29 are 20xx, 30-99 are 19xx (the FMA dataset ends in 2017; the
# recordings it describes go back to the 1930s).
_PIVOT = 30

_US = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?: ?([AaPp])\.?[Mm]\.?)?)?$"
)
_ISO = re.compile(
    r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$"
)
# Only entities that end in ";": html.unescape alone would turn "&notes" into "¬es".
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < _PIVOT else 1900
    return y


def _real_day(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def _time(hour: str | None, minute: str | None, second: str | None, ampm: str | None) -> str:
    if hour is None or minute is None:
        return ""
    h, mi, s = int(hour), int(minute), int(second or 0)
    if ampm is not None:
        if not 1 <= h <= 12:
            return ""
        h = h % 12 + (12 if ampm.lower() == "p" else 0)
    if h > 23 or mi > 59 or s > 59:
        return ""
    return f"T{h:02d}:{mi:02d}:{s:02d}"


def iso_date(value: object, *, with_time: bool = False) -> str | None:
    """`value` as ISO 8601 (year, year-month, date, or date and time with `with_time`);
    None for an empty, impossible (`0000-00-00`, `2008-02-30`) or unreadable one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    m = _US.match(text)
    if m is not None:
        y, mo, d = _year(m[3]), int(m[1]), int(m[2])
        if y < 1 or not _real_day(y, mo, d):
            return None
        day = f"{y:04d}-{mo:02d}-{d:02d}"
        return day + (_time(m[4], m[5], m[6], m[7]) if with_time else "")
    m = _ISO.match(text)
    if m is None:
        return None
    y = int(m[1])
    if y < 1:
        return None  # "0000-00-00": IA's placeholder for no date
    if m[2] is None:
        return f"{y:04d}"
    mo = int(m[2])
    if m[3] is None:
        return f"{y:04d}-{mo:02d}" if 1 <= mo <= 12 else None
    d = int(m[3])
    if not _real_day(y, mo, d):
        if mo == 0 and d == 0:
            return f"{y:04d}"  # "2008-00-00": a year, written as a date
        return None
    day = f"{y:04d}-{mo:02d}-{d:02d}"
    return day + (_time(m[4], m[5], m[6], None) if with_time else "")


def unescape(value: str) -> str:
    """HTML entities replaced by their characters, also when escaped twice (`&amp;amp;`)."""
    for _ in range(3):
        out = _ENTITY.sub(lambda m: html.unescape(m.group(0)), value)
        if out == value:
            break
        value = out
    return value


def clean_text(value: object) -> str | None:
    """Source text as the catalogue keeps it: entities unescaped, stripped; None if empty."""
    if value is None:
        return None
    text = unescape(str(value)).strip()
    return text or None
