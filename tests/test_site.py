"""The public site: self-contained public/, pack pages, contact, a phone's width."""

from __future__ import annotations

import csv
import os

import pytest

from ccmirror.errors import ManifestError
from ccmirror.manifest import load_manifest
from ccmirror.packs import pack
from ccmirror.publish.run import publish
from ccmirror.withdraw import withdraw
from packhelpers import add_file, add_item, make_mirror, write_manifest
from sitehelpers import broken_links, page_links, phone_overflow

LONG_WORD = "Supercalifragilisticexpialidocious" * 8
TITLES = [
    LONG_WORD,
    "A title with many words that goes on and on past what a phone screen can hold in one line",
    '<script>alert("x")</script> & "quotes"',
    "مرحبا بالعالم",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    m = make_mirror(tmp, pack_size="300KiB", contact="takedowns@mirror.example.org")
    for n, title in enumerate(TITLES * 2):
        item = add_item(
            m, "ia", f"item-{n}", popularity=1000 - n * 50, title=title, creator=title[::-1]
        )
        add_file(m, item, f"{n:02d}-{LONG_WORD[:40]}.flac", seed=n)
    pack(m, seal_partial=True)
    result = publish(m)
    yield m, result
    m.close()


def test_every_link_resolves_inside_public(site):
    m, _ = site
    assert broken_links(m.public_dir) == []
    # The checker itself finds a link that leaves public/ or names no file.
    bad = m.public_dir / "packs" / "zz-bad.html"
    bad.write_text('<a href="../../torrents/x.torrent">x</a><a href="nope.html">y</a>')
    try:
        assert len(broken_links(m.public_dir)) == 2
    finally:
        bad.unlink()


def test_public_holds_nothing_from_store_quarantine_or_catalogue(site):
    m, result = site
    files = [p for p in m.public_dir.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".html", ".json", ".torrent"}
    names = {p.name for p in files}
    assert "catalogue.sqlite" not in names
    store_inodes = {
        os.stat(p).st_ino
        for d in (m.store_dir, m.quarantine_dir, m.packs_dir)
        for p in d.rglob("*")
        if p.is_file()
    }
    assert not any(os.stat(p).st_ino in store_inodes for p in files)
    # The .torrent files are copies inside public/, byte for byte the sealed ones.
    sealed = m.db.execute("SELECT name, torrent_path FROM packs WHERE status = 'sealed'").fetchall()
    assert sealed and result["torrent_files"] == len(sealed)
    for name, rel in sealed:
        assert (m.public_dir / "torrents" / f"{name}.torrent").read_bytes() == (
            m.data_dir / rel
        ).read_bytes()


def test_a_page_per_pack_lists_its_files_from_manifest_csv(site):
    m, result = site
    live = [
        r[0]
        for r in m.db.execute(
            "SELECT name FROM packs WHERE status = 'sealed' AND NOT is_metadata AND NOT obsolete"
        )
    ]
    assert len(live) >= 2 and result["pack_pages"] == len(live)
    index_links = page_links(m.public_dir / "index.html").hrefs
    for name in live:
        page = m.public_dir / "packs" / f"{name}.html"
        assert f"packs/{name}.html" in index_links
        html = page.read_text("utf-8")
        with open(m.packs_dir / name / "MANIFEST.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows
        # Exactly one table row per file; each file's title, creator, licence are shown.
        assert html.count("<tr>") == len(rows) + 1
        links = page_links(page).hrefs
        assert f"../torrents/{name}.torrent" in links and "../index.html" in links
        for r in rows:
            shown = r["title"] if len(r["title"]) <= 120 else r["title"][:119]
            assert shown.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&#34;") in html
            assert r["licence_id"] in html
    # A hostile title is text, never markup.
    assert "<script" not in "".join(
        p.read_text("utf-8") for p in (m.public_dir / "packs").glob("*.html")
    )


def test_contact_on_every_page(site):
    m, _ = site
    pages = list(m.public_dir.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        html = page.read_text("utf-8")
        assert "Takedown and contact:" in html, page
        assert "mailto:takedowns@mirror.example.org" in page_links(page).hrefs, page


def test_no_contact_says_so(tmp_path):
    m = make_mirror(tmp_path)
    add_file(m, add_item(m, "ia", "one", popularity=1), "a.flac")
    pack(m, seal_partial=True)
    publish(m)
    for page in m.public_dir.rglob("*.html"):
        assert "has not given an address" in page.read_text("utf-8")
    m.close()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("mirror@example.org", True),
        ("mailto:mirror@example.org", True),
        ("https://example.org/takedown", True),
        ("javascript:alert(1)", False),
        ("not an address", False),
    ],
)
def test_contact_must_be_an_address(tmp_path, value, ok):
    path = write_manifest(tmp_path, contact=value)
    if ok:
        assert load_manifest(path).contact == value
    else:
        with pytest.raises(ManifestError, match="mirror.contact"):
            load_manifest(path)


def test_withdrawn_pack_page_and_title_leave_the_site(tmp_path):
    m = make_mirror(tmp_path, pack_size="100MiB", shares=(1.0,))
    keep = add_item(m, "ia", "keep", popularity=10, title="Kept song")
    gone = add_item(m, "ia", "gone", popularity=5, title="Withdrawn song")
    add_file(m, keep, "a.flac", seed=1)
    add_file(m, gone, "b.flac", seed=2)
    pack(m, seal_partial=True)
    publish(m)
    (old,) = list((m.public_dir / "packs").glob("*.html"))
    assert "b.flac" in old.read_text("utf-8") and "details/gone" in old.read_text("utf-8")
    withdraw(m, "ia:gone", "request")
    assert not old.exists()
    site = "".join(p.read_text("utf-8") for p in m.public_dir.rglob("*.html"))
    assert "Withdrawn song" not in site and "b.flac" not in site and "details/gone" not in site
    assert broken_links(m.public_dir) == []
    m.close()


def test_idle_publish_rewrites_no_page(site):
    m, _ = site
    before = {p: p.stat().st_mtime_ns for p in m.public_dir.rglob("*") if p.is_file()}
    publish(m)
    after = {p: p.stat().st_mtime_ns for p in m.public_dir.rglob("*") if p.is_file()}
    assert before == after


def test_pages_fit_a_phone(site, tmp_path):
    m, _ = site
    pages = [m.public_dir / "index.html", *sorted((m.public_dir / "packs").glob("*.html"))[:1]]
    for page in pages:
        scroll, client = phone_overflow(page, 390)
        assert 300 < client <= 390 and scroll == client, page
    # The measurement sees overflow when there is some.
    wide = tmp_path / "wide.html"
    wide.write_text(
        '<!DOCTYPE html><meta name="viewport" content="width=device-width">'
        '<div style="width:836px">x</div>'
    )
    scroll, client = phone_overflow(wide, 390)
    assert scroll >= 836 > client


def test_chart_text_stays_legible_on_a_phone(site):
    from ccmirror.publish.chart import NARROW, WIDE

    m, _ = site
    page = (m.public_dir / "index.html").read_text("utf-8")
    assert page.count('class="chart-wide"') == 1 and page.count('class="chart-narrow"') == 1
    # A 390 px screen less the page's 12 px margins and the SVG's border: ~364 px wide.
    shown = 390 - 2 * 12 - 2
    assert NARROW.font * shown / NARROW.width >= 12  # px of the axis labels on a phone
    assert WIDE.font * shown / WIDE.width < 6  # what the one chart gave before
    assert "@media (max-width:640px)" in page and ".chart-wide{display:none}" in page
