"""Creative Commons URLs and titles -> licence ids (DESIGN §5).

Creative Commons' own table of its 639 legal tools (package data) is the only source of
ids and canonical URLs. Anything uncertain (no version, an unknown port, a unit that does not
exist in that version) maps to None rather than to a guess.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Licence:
    """One CC legal tool, as the table describes it."""

    id: str  # DESIGN §5 id: SPDX where it has one, else LicenseRef-...
    url: str  # canonical URL (https, trailing slash)
    name: str  # CC's title, e.g. "Attribution-ShareAlike 4.0 International"
    identifier: str  # CC's identifier, e.g. "CC BY-SA 4.0"
    category: str  # licenses | publicdomain
    unit: str  # by-sa, zero, mark, sampling+, ...
    version: str
    jurisdiction: str  # "" for unported / international

    @property
    def family(self) -> tuple[str, str]:
        """Unit and version, ignoring the port: what a file's tags agree on."""
        return (self.unit, self.version)

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "url": self.url, "name": self.name}


def licence_id(identifier: str, spdx: str) -> str:
    """SPDX id where SPDX has one, else LicenseRef- + CC identifier (spaces -, + -PLUS)."""
    if spdx:
        return spdx
    return "LicenseRef-" + identifier.replace("+", "-PLUS").replace(" ", "-")


@dataclass(frozen=True)
class _Table:
    by_id: dict[str, Licence]
    by_key: dict[tuple[str, str, str, str], Licence]  # (category, unit, version, jurisdiction)
    units: dict[str, list[str]]  # version -> units of category "licenses" (no port)
    jurisdictions: frozenset[str]


@lru_cache(maxsize=1)
def table() -> _Table:
    """Load the CC legal tools table once."""
    text = (resources.files("ccmirror") / "data" / "cc-legal-tools.csv").read_text("utf-8")
    by_id: dict[str, Licence] = {}
    by_key: dict[tuple[str, str, str, str], Licence] = {}
    units: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        lic = Licence(
            id=licence_id(row["IDENTIFIER"], row["SPDX_IDENTIFIER"]),
            url=row["CANONICAL_URL"],
            name=row["TITLE"],
            identifier=row["IDENTIFIER"],
            category=row["CATEGORY"],
            unit=row["UNIT"],
            version=row["VERSION"],
            jurisdiction=row["JURISDICTION"],
        )
        by_id[lic.id] = lic
        by_key[(lic.category, lic.unit, lic.version, lic.jurisdiction)] = lic
        if lic.category == "licenses" and lic.unit not in units.setdefault(lic.version, []):
            units[lic.version].append(lic.unit)
    jurisdictions = frozenset(k[3] for k in by_key if k[3])
    return _Table(by_id, by_key, units, jurisdictions)


def licence_info(licence_id: str | None) -> dict[str, str] | None:
    """{id, url, name} for a licence id (for ATTRIBUTION.md), or None when unknown."""
    lic = table().by_id.get(licence_id or "")
    return lic.to_dict() if lic else None


def by_id(licence_id: str | None) -> Licence | None:
    return table().by_id.get(licence_id or "")


# --- URLs -------------------------------------------------------------------------------

_URL_RE = re.compile(
    r"(?:https?:/+)?(?:[a-z0-9-]+\.)?creativecommons\.org"
    r"((?:/+[a-z0-9.+%_~-]*)*)",
    re.IGNORECASE,
)
_CATEGORY = {"licenses": "licenses", "licences": "licenses", "licence": "licenses"}
_CATEGORY["license"] = "licenses"
_CATEGORY.update({"l": "licenses", "publicdomain": "publicdomain", "p": "publicdomain"})
_VERSION_RE = re.compile(r"^(\d\.\d)(?!\d)(.*)$")


def _from_path(path: str) -> Licence | None:
    t = table()
    parts = [unquote(p).lower() for p in path.split("/") if p]
    if len(parts) < 2:
        return None
    category = _CATEGORY.get(parts[0])
    if category is None:
        return None
    if category == "licenses" and parts[1] == "publicdomain":
        # The old "public domain" tool, as IA still records it: the PD certification.
        return t.by_key.get(("publicdomain", "certification", "1.0", "us"))
    vm = _VERSION_RE.match(parts[2]) if len(parts) > 2 else None
    if vm is None:
        return None  # no version: uncertain
    unit, version = parts[1].replace(" ", "+"), vm.group(1)
    if vm.group(2):
        parts = parts[:3]  # garbage glued to the version ends the URL
    jurisdiction = ""
    if len(parts) > 3 and parts[3] in t.jurisdictions:
        jurisdiction = parts[3]
    elif len(parts) > 3 and not _tail_ok(parts[3]):
        return None  # an unknown segment where a port would be
    return t.by_key.get((category, unit, version, jurisdiction))


def _tail_ok(segment: str) -> bool:
    """What may follow the version: deed, legal code, badges, stray punctuation; but a
    two- or three-letter segment is a port we do not know, so the URL is uncertain."""
    return re.fullmatch(r"[a-z]{2,3}", segment) is None


def licences_in_urls(text: str) -> list[tuple[str, Licence | None]]:
    """Every creativecommons.org URL in `text`, with the licence it names (None if none)."""
    out = []
    for m in _URL_RE.finditer(text):
        out.append((m.group(0), _from_path(m.group(1))))
    return out


def normalise_url(url: str | None) -> Licence | None:
    """The licence a Creative Commons URL names, in any spelling; None if not exactly one."""
    if not url:
        return None
    found = {lic for _, lic in licences_in_urls(url)}
    if len(found) != 1:
        return None
    return found.pop()


# --- Titles and text ----------------------------------------------------------------------

# Phrases -> marker tokens. Upper-case markers are full words (no "CC" needed); the bare
# abbreviations by/nc/sa/nd count only next to "CC" or "Creative Commons".
_PHRASES = [
    (r"creative\s*commons", " cc "),
    (r"\bcc0\b", " cc ZERO "),
    (r"public\s+domain\s+mark", " PDM "),
    (r"non[\s-]*commercial", " NC "),
    (r"share[\s-]*alike", " SA "),
    (r"\bno[\s-]*deriv(?:ative)?s?(?:[\s-]*works?)?\b", " ND "),
    (r"\battribution\b", " BY "),
    (r"sampling\s*(?:\+|plus\b)", " SAMPLINGPLUS "),
    (r"\bsampling\b", " SAMPLING "),
    (r"developing\s+nations", " DEVNATIONS "),
    (r"\bdevnations\b", " DEVNATIONS "),
]
_PHRASES_RE = [(re.compile(p, re.IGNORECASE), r) for p, r in _PHRASES]
_ASIDE = re.compile(r"\([^()]*\)")
_WORD_RE = re.compile(r"[A-Za-z0-9.+]+")
_VER_TOKEN = re.compile(r"^v?(\d\.\d)$", re.IGNORECASE)
_FULL = {"BY", "NC", "SA", "ND", "PDM", "ZERO", "SAMPLINGPLUS", "SAMPLING", "DEVNATIONS"}
_ABBR = {"by", "nc", "sa", "nd"}
_FILLER = {"cc", "licenseref", "license", "licence", "the", "a", "under", "dedication"}
_NO_PORT = {"generic", "unported", "international", "universal", "worldwide"}
# English (and the table's own) names of CC's ports.
_PORT_NAMES = {
    "argentina": "ar", "armenia": "am", "australia": "au", "austria": "at", "osterreich": "at",
    "azerbaijan": "az", "belgium": "be", "brazil": "br", "brasil": "br", "bulgaria": "bg",
    "canada": "ca", "switzerland": "ch", "schweiz": "ch", "chile": "cl", "china": "cn",
    "colombia": "co", "costa rica": "cr", "czech republic": "cz", "czechia": "cz",
    "germany": "de", "deutschland": "de", "denmark": "dk", "ecuador": "ec", "estonia": "ee",
    "egypt": "eg", "spain": "es", "espana": "es", "finland": "fi", "france": "fr",
    "georgia": "ge", "greece": "gr", "guatemala": "gt", "hong kong": "hk", "croatia": "hr",
    "hungary": "hu", "ireland": "ie", "igo": "igo", "israel": "il", "india": "in",
    "italy": "it", "italia": "it", "japan": "jp", "korea": "kr", "south korea": "kr",
    "luxembourg": "lu", "macedonia": "mk", "malta": "mt", "mexico": "mx", "malaysia": "my",
    "netherlands": "nl", "norway": "no", "norge": "no", "new zealand": "nz", "peru": "pe",
    "philippines": "ph", "poland": "pl", "polska": "pl", "puerto rico": "pr", "portugal": "pt",
    "romania": "ro", "serbia": "rs", "scotland": "scotland", "uk scotland": "scotland",
    "sweden": "se", "singapore": "sg", "slovenia": "si", "thailand": "th", "taiwan": "tw",
    "uganda": "ug", "england and wales": "uk", "england wales": "uk", "uk england wales": "uk",
    "uk england and wales": "uk", "united kingdom": "uk", "uk": "uk", "united states": "us",
    "us": "us", "usa": "us", "venezuela": "ve", "vietnam": "vn", "south africa": "za",
}  # fmt: skip


def _marked(text: str) -> str:
    for pattern, repl in _PHRASES_RE:
        text = pattern.sub(repl, text)
    return text


def _unit_for(markers: list[str], version: str) -> tuple[str, str] | None:
    """(category, unit) for the licence elements named before a version."""
    s = set(markers)
    if "ZERO" in s:
        return ("publicdomain", "zero") if s <= {"ZERO"} else None
    if "PDM" in s:
        return ("publicdomain", "mark") if s <= {"PDM"} else None
    if "DEVNATIONS" in s:
        return ("licenses", "devnations") if s <= {"DEVNATIONS"} else None
    if "SAMPLINGPLUS" in s:
        rest = s - {"SAMPLINGPLUS"}
        return {frozenset(): ("licenses", "sampling+"), frozenset({"NC"}): ("licenses", "nc-sampling+")}.get(
            frozenset(rest)
        )  # fmt: skip
    if "SAMPLING" in s:
        return ("licenses", "sampling") if s <= {"SAMPLING"} else None
    elements = {m.lower() for m in s}
    if not elements or not elements <= _ABBR or {"sa", "nd"} <= elements:
        return None
    for unit in table().units.get(version, []):
        if set(unit.split("-")) == elements:
            return ("licenses", unit)
    return None


def _port_after(rest: str) -> str:
    """The port named right after a version; "" for none, international or unknown words."""
    words = re.findall(r"[A-Za-z]+", rest[:60])
    if not words:
        return ""
    low = [
        w.lower().replace("ö", "o").replace("ñ", "n") for w in words if w.lower() not in ("the",)
    ]
    # Longest name first: "UK: Scotland" is the Scotland port, not the UK's.
    for n in (4, 3, 2):
        name = " ".join(low[:n])
        if name in _PORT_NAMES:
            return _PORT_NAMES[name]
    if words[0].isupper() and words[0].lower() in table().jurisdictions:
        return words[0].lower()  # "CC BY 3.0 DE"
    if low[0] in _PORT_NAMES and (low[0] not in ("us", "uk") or words[0].isupper()):
        return _PORT_NAMES[low[0]]
    return ""


def licences_in_text(text: str) -> list[Licence]:
    """CC licences written as titles or ids in `text` (URLs are not looked at here)."""
    text = text.replace("_", " ")
    marked = _marked(text)
    found: list[Licence] = []
    t = table()
    for m in re.finditer(r"\bv?(\d\.\d)(?![\d.]*\d)", marked):
        version = m.group(1)
        # "(aka Music Sharing)" and other asides between the name and the version are skipped
        before = _WORD_RE.findall(_ASIDE.sub(" ", marked[max(0, m.start() - 200) : m.start()]))
        markers: list[str] = []
        has_cc = False
        for word in reversed(before):
            if word in _FULL:
                markers.append(word)
            elif word.lower() in _ABBR:
                markers.append("abbr:" + word.upper())
            elif word.lower() in _FILLER:
                has_cc = has_cc or word.lower() == "cc"
            else:
                break
        if not markers:
            continue
        if any(x.startswith("abbr:") for x in markers) and not has_cc:
            continue  # "by 3.0" in prose is not a licence
        unit = _unit_for([x.removeprefix("abbr:") for x in markers], version)
        if unit is None:
            continue
        port = _port_after(marked[m.end() :])
        lic = t.by_key.get((unit[0], unit[1], version, port))
        if lic is None and port:
            continue  # a port that does not exist for this licence: uncertain
        if lic is not None and lic not in found:
            found.append(lic)
    return found


def normalise_title(title: str | None) -> Licence | None:
    """The licence a CC title or id names ("CC BY-SA 4.0", "Attribution 3.0 Unported")."""
    if not title:
        return None
    direct = table().by_id.get(title.strip())
    if direct is not None:
        return direct
    found = licences_in_text(title)
    return found[0] if len(found) == 1 else None


def normalise(text: Any) -> Licence | None:
    """A URL or a title -> the one licence it names, else None. Never raises on a string."""
    if not isinstance(text, str) or not text.strip():
        return None
    urls = licences_in_urls(text)
    if urls:
        named = {lic for _, lic in urls}
        return named.pop() if len(named) == 1 else None
    return normalise_title(text)


def find_licences(text: str) -> list[Licence]:
    """Every licence `text` states, by URL or by title, in order of appearance."""
    out: list[Licence] = []
    for _, lic in licences_in_urls(text):
        if lic is not None and lic not in out:
            out.append(lic)
    rest = _URL_RE.sub(" ", text)
    for lic in licences_in_text(rest):
        if lic not in out:
            out.append(lic)
    return out


_RESERVED_RE = re.compile(r"\ball\s+rights\s+reserved\b", re.IGNORECASE)


def rights_reserved(text: str) -> bool:
    """Does `text` reserve all rights (the opposite of a free licence)?"""
    return bool(_RESERVED_RE.search(text))
