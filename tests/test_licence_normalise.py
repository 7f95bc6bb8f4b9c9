"""Licence ids from CC URLs and titles, the default policy, and the harvest's gate."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccmirror.licence import judge_declared
from ccmirror.licence.normalise import (
    find_licences,
    licence_info,
    normalise,
    normalise_title,
    normalise_url,
    rights_reserved,
    table,
)
from ccmirror.licence.policy import NEVER_ALLOWED, Policy
from ccmirror.manifest import LicenceConfig


def _rows() -> list[dict[str, str]]:
    text = (resources.files("ccmirror") / "data" / "cc-legal-tools.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


ROWS = _rows()


def test_table_has_every_tool_once():
    t = table()
    assert len(ROWS) == 639
    assert len(t.by_id) == 639
    assert {lic.url for lic in t.by_id.values()} == {r["CANONICAL_URL"] for r in ROWS}


def test_ids_follow_design():
    assert licence_info("CC-BY-SA-4.0") == {
        "id": "CC-BY-SA-4.0",
        "url": "https://creativecommons.org/licenses/by-sa/4.0/",
        "name": "Attribution-ShareAlike 4.0 International",
    }
    for lid in (
        "CC-BY-NC-SA-2.0-UK",
        "CC0-1.0",
        "CC-PDM-1.0",
        "CC-PDDC",
        "LicenseRef-CC-BY-NC-SA-3.0-US",
        "LicenseRef-CC-SAMPLING-PLUS-1.0",
        "LicenseRef-CC-NC-SAMPLING-PLUS-1.0",
    ):
        assert licence_info(lid) is not None, lid
    assert licence_info("CC-BY-5.0") is None
    assert licence_info(None) is None


@pytest.mark.parametrize(
    ("url", "lid"),
    [
        ("http://creativecommons.org/licenses/by-nc-sa/3.0/", "CC-BY-NC-SA-3.0"),
        ("https://www.creativecommons.org/licenses/by/3.0/de/deed.de", "CC-BY-3.0-DE"),
        ("creativecommons.org/licenses/by-nc/2.5/scotland/", "LicenseRef-CC-BY-NC-2.5-SCOTLAND"),
        ("http://i.creativecommons.org/l/by-sa/3.0/88x31.png", "CC-BY-SA-3.0"),
        ("http://i.creativecommons.org/p/zero/1.0/88x31.png", "CC0-1.0"),
        ("https://creativecommons.org/licenses/by/4.0/legalcode.fr?x=1#y", "CC-BY-4.0"),
        ("https://creativecommons.org/licenses/by/4.0/legalcode", "CC-BY-4.0"),
        ("HTTP://CreativeCommons.org/Licenses/BY-SA/2.0/UK", "CC-BY-SA-2.0-UK"),
        ("http://creativecommons.org/licenses/by-sa/3.0/us/ and then some", "LicenseRef-CC-BY-SA-3.0-US"),
        ("<a href=\"http://creativecommons.org/licenses/by/3.0/\">", "CC-BY-3.0"),
        ("https://creativecommons.org/licenses/by-sa/3.0/.", "CC-BY-SA-3.0"),
        ("http://creativecommons.org/licenses/publicdomain/", "CC-PDDC"),
        ("http://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
        ("https://creativecommons.org/licenses/sampling%2B/1.0/", "LicenseRef-CC-SAMPLING-PLUS-1.0"),
        ("https://creativecommons.org/licenses/by-nd-nc/1.0/", "CC-BY-NC-ND-1.0"),
    ],
)  # fmt: skip
def test_url_forms(url, lid):
    lic = normalise_url(url)
    assert lic is not None and lic.id == lid
    assert normalise(url) == lic


@pytest.mark.parametrize(
    "url",
    [
        "http://creativecommons.org/licenses/by/",  # no version
        "http://creativecommons.org/licenses/by/4.0/de/",  # no such port
        "http://creativecommons.org/licenses/by/3.0/xx/",  # unknown port
        "http://creativecommons.org/licenses/by-sa-nd/3.0/",
        "http://creativecommons.org/licenses/by/9.9/",
        "https://example.org/licenses/by/4.0/",
        "http://creativecommons.org/",
        "",
    ],
)
def test_uncertain_urls_map_to_nothing(url):
    assert normalise_url(url) is None


@pytest.mark.parametrize(
    ("title", "lid"),
    [
        ("Attribution-NonCommercial-ShareAlike 3.0 Unported", "CC-BY-NC-SA-3.0"),
        ("CC BY-SA 4.0", "CC-BY-SA-4.0"),
        ("CC-BY-NC 3.0", "CC-BY-NC-3.0"),
        ("Creative Commons Attribution 3.0 license", "CC-BY-3.0"),
        ("Attribution-Noncommercial-No Derivative Works 3.0", "CC-BY-NC-ND-3.0"),
        # the FMA dataset's titles
        ("Attribution-NonCommercial-ShareAlike 3.0 International", "CC-BY-NC-SA-3.0"),
        ("Attribution-Noncommercial-No Derivative Works 3.0 United States", "LicenseRef-CC-BY-NC-ND-3.0-US"),
        ("Creative Commons Attribution-NonCommercial-NoDerivatives 4.0", "CC-BY-NC-ND-4.0"),
        ("Public Domain Mark 1.0", "CC-PDM-1.0"),
        ("CC0 1.0 Universal", "CC0-1.0"),
        ("Attribution 3.0", "CC-BY-3.0"),
        ("Attribution-NonCommercial-NoDerivatives (aka Music Sharing) 3.0 International", "CC-BY-NC-ND-3.0"),
        ("Attribution 2.5 (Argentina)", "LicenseRef-CC-BY-2.5-AR"),
        ("CC BY-NC-SA 2.0 UK", "CC-BY-NC-SA-2.0-UK"),
        ("Attribution-ShareAlike 2.0 England and Wales", "CC-BY-SA-2.0-UK"),
        ("Attribution 3.0 Germany", "CC-BY-3.0-DE"),
        ("Attribution-NoDerivs-NonCommercial 1.0", "CC-BY-NC-ND-1.0"),
        ("Sampling Plus 1.0", "LicenseRef-CC-SAMPLING-PLUS-1.0"),
        ("NonCommercial Sampling Plus 1.0", "LicenseRef-CC-NC-SAMPLING-PLUS-1.0"),
        ("Developing Nations 2.0", "LicenseRef-CC-DEVNATIONS-2.0"),
        ("CC-BY-SA-4.0", "CC-BY-SA-4.0"),
        ("CC-PDDC", "CC-PDDC"),
        ("Licensed under a Creative Commons Attribution-ShareAlike 3.0 Unported License.", "CC-BY-SA-3.0"),
    ],
)  # fmt: skip
def test_titles(title, lid):
    lic = normalise_title(title)
    assert lic is not None and lic.id == lid


@pytest.mark.parametrize(
    "title",
    [
        "FMA-Limited: Download Only",
        "Sound Recording Common Law",
        "Public Domain",
        "CC BY-SA",  # no version
        "Attribution",
        "produced by 3.0 studios",  # "by" without CC is prose
        "CC BY-SA-ND 3.0",
        "CC BY-SA 4.0 DE",  # no such port
        "",
    ],
)
def test_uncertain_titles_map_to_nothing(title):
    assert normalise_title(title) is None


def test_every_identifier_maps_back():
    for lic in table().by_id.values():
        if lic.unit == "certification":  # "CERTIFICATION 1.0 US" is not CC prose
            continue
        assert normalise_title(lic.identifier) == lic, lic.identifier
        assert normalise_title(lic.id) == lic


def test_find_licences_and_reserved():
    text = (
        "2008 Foo. Licensed to the public under http://creativecommons.org/licenses/by-sa/3.0/"
        " verify at http://example.org/page.html"
    )
    assert [lic.id for lic in find_licences(text)] == ["CC-BY-SA-3.0"]
    both = "CC BY 3.0; also https://creativecommons.org/licenses/by-nc/4.0/"
    assert {lic.id for lic in find_licences(both)} == {"CC-BY-3.0", "CC-BY-NC-4.0"}
    assert rights_reserved("(C) 2001 Label. All Rights Reserved.")
    assert not rights_reserved("Some rights reserved")


SPELLINGS = st.sampled_from(
    [
        lambda u: u,
        lambda u: u.replace("https://", "http://"),
        lambda u: u.replace("https://", "http://www."),
        lambda u: u.replace("https://", ""),
        lambda u: u.rstrip("/"),
        lambda u: u + "deed.de",
        lambda u: u + "deed.en_US",
        lambda u: u + "legalcode",
        lambda u: u + "legalcode.fr",
        lambda u: u + "?ref=chooser#top",
        lambda u: u + " some garbage after",
        lambda u: u.upper(),
        lambda u: "Licensed under <" + u + ">.",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ROWS), SPELLINGS)
def test_every_canonical_url_in_every_spelling_maps_back(row, spell):
    lic = normalise_url(spell(row["CANONICAL_URL"]))
    assert lic is not None
    assert lic.url == row["CANONICAL_URL"]


def test_every_canonical_url_maps_back_exhaustively():
    for row in ROWS:
        url = row["CANONICAL_URL"]
        for variant in (url, url.replace("https://www.", "http://"), url + "legalcode"):
            lic = normalise_url(variant)
            assert lic is not None and lic.url == url, variant


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_normaliser_never_raises(text):
    normalise(text)
    normalise_title(text)
    normalise_url(text)
    find_licences(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["creativecommons.org/", "licenses/", "by-sa/", "3.0/", "de", "CC", "BY", " ", "4.0", "Attribution", "-", "%2B", "/", "publicdomain", "l/"]), max_size=12))  # fmt: skip
def test_normaliser_never_raises_on_near_misses(parts):
    text = "".join(parts)
    normalise(text)
    find_licences(text)


def test_default_policy():
    p = Policy()
    allowed = {lic.unit for lic in table().by_id.values() if p.allows(lic.id)}
    denied = {lic.unit for lic in table().by_id.values() if not p.allows(lic.id)}
    assert denied == {"sampling", "devnations"}
    assert {"by", "by-sa", "by-nc", "by-nd", "by-nc-sa", "by-nc-nd", "by-nd-nc"} <= allowed
    assert {"nc", "nd", "sa", "nc-sa", "nd-nc", "sampling+", "nc-sampling+"} <= allowed
    assert {"zero", "mark", "certification"} <= allowed
    assert p.judge(None) is not None and p.judge("MIT") is not None


def test_policy_globs_cover_licenseref_ports():
    p = Policy.from_config(LicenceConfig(allow=("CC-BY-*",), deny=("CC-BY-NC-*",)))
    assert p.allows("LicenseRef-CC-BY-1.0-FI")
    assert p.allows("CC-BY-SA-2.0-UK")
    assert not p.allows("CC-BY-NC-4.0")
    assert not p.allows("LicenseRef-CC-BY-NC-SA-3.0-US")
    assert not p.allows("CC0-1.0")
    always = Policy.from_config(LicenceConfig(allow=("*",)))
    assert always.judge("LicenseRef-CC-SAMPLING-1.0") == NEVER_ALLOWED
    assert always.allows("CC0-1.0")


def test_judge_declared():
    cfg = LicenceConfig()
    d = judge_declared("http://creativecommons.org/licenses/by-nc-nd/3.0/us/", None, cfg)
    assert (d.licence_id, d.allowed, d.reason) == ("LicenseRef-CC-BY-NC-ND-3.0-US", True, None)
    assert d.licence_url == "https://creativecommons.org/licenses/by-nc-nd/3.0/us/"
    # FMA: the title is read when there is no URL
    d = judge_declared(None, "Attribution-NonCommercial-ShareAlike 3.0 International", cfg)
    assert (d.licence_id, d.allowed) == ("CC-BY-NC-SA-3.0", True)
    # the URL decides when it names a licence
    d = judge_declared("http://creativecommons.org/licenses/by/4.0/", "CC BY-SA 3.0", cfg)
    assert d.licence_id == "CC-BY-4.0"
    for title in ("FMA-Limited: Download Only", "Sound Recording Common Law"):
        d = judge_declared(None, title, cfg)
        assert (d.allowed, d.reason) == (False, NEVER_ALLOWED)
    d = judge_declared("http://freemusicarchive.org/FMA_Limited", "Attribution 3.0", cfg)
    assert not d.allowed
    assert judge_declared(None, None, cfg).reason == "no licence declared"
    assert judge_declared(None, "Public Domain", cfg).reason == "not a recognised CC licence"
    assert judge_declared("http://creativecommons.org/licenses/sampling/1.0/", None, cfg).reason == NEVER_ALLOWED  # fmt: skip
    d = judge_declared("http://creativecommons.org/licenses/publicdomain/", None, cfg)
    assert (d.licence_id, d.allowed) == ("CC-PDDC", True)
    strict = LicenceConfig(allow=("CC0-1.0",))
    d = judge_declared("https://creativecommons.org/licenses/by/4.0/", None, strict)
    assert (d.allowed, d.reason) == (False, "licence not in allow list")


def test_judge_declared_lists_and_odd_values():
    cfg = LicenceConfig()
    assert judge_declared([BY4, BY4], None, cfg).licence_id == "CC-BY-4.0"  # type: ignore[arg-type]
    two = judge_declared([BY4, "https://creativecommons.org/licenses/by-nc/4.0/"], None, cfg)  # type: ignore[arg-type]
    assert (two.licence_id, two.allowed) == (None, False)
    assert judge_declared("   ", "", cfg).reason == "no licence declared"


BY4 = "https://creativecommons.org/licenses/by/4.0/"
