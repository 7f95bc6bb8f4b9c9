"""index.html: self-contained, escaped, readable; opened in headless Chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ccmirror.catalogue import transaction
from ccmirror.packs import pack
from ccmirror.publish.run import publish
from packhelpers import add_file, add_item, make_mirror
from sitehelpers import chromium

HOSTILE = [
    '<script>alert("t")</script>',
    "<img src=x onerror=alert(1)>",
    "\"double\" & 'single' </td></tr></table><b>quotes",
    "مرحبا بالعالم — right to left",
    "L" * 10_000,
]


class Tags(HTMLParser):
    """Every element and attribute the browser (or the raw page) really contains."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    m = make_mirror(tmp, pack_size="400KiB")
    for n, text in enumerate(HOSTILE):
        item = add_item(
            m, "ia", f"hostile-{n}", popularity=1000 - n * 100, title=text, creator=text
        )
        add_file(m, item, "a.flac", seed=n)
    # A source page URL that is a script, and a licence URL with an attribute breakout.
    with transaction(m.db):
        m.db.execute(
            "UPDATE items SET source_url = 'javascript:alert(1)' WHERE source_id = 'hostile-0'"
        )
        m.db.execute(
            "UPDATE files SET licence_url = 'https://x.example/\"><script>alert(2)</script>'"
            " WHERE id = 1"
        )
        m.db.execute("UPDATE files SET licence_id = '<b>CC-EVIL</b>' WHERE id = 2")
    pack(m, seal_partial=True)
    result = publish(m)
    yield m, result
    m.close()


def test_page_escapes_every_source_string(hostile_site):
    m, result = hostile_site
    page = (m.public_dir / "index.html").read_text("utf-8")
    parsed = _parse(page)
    tags = [t for t, _ in parsed.tags]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert not any(k.startswith("on") for _, a in parsed.tags for k in a)
    assert not any((a.get("href") or "").lower().startswith("javascript:") for _, a in parsed.tags)
    # The hostile strings are there, as text.
    text = "".join(parsed.text)
    assert '<script>alert("t")</script>' in text
    assert "<img src=x onerror=alert(1)>" in text
    assert "مرحبا بالعالم" in text and "<b>CC-EVIL</b>" in text
    assert "&lt;script&gt;" in page and "&#34;double&#34; &amp; &#39;single&#39;" in page
    # The 10 KB title is cut on the page (the full text is in the metadata dump).
    assert "L" * 301 not in page and "L" * 100 in page
    assert len(page) < 100_000
    # Tables still have their structure: the </table> in a title did not close one.
    assert page.count("<table>") == page.count("</table>") == tags.count("table")
    # Self-contained: nothing loaded from elsewhere.
    assert not any("src" in a for _, a in parsed.tags)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    # Every relative link resolves inside public/ (the site is served alone).
    local = [
        a["href"]
        for _, a in parsed.tags
        if a.get("href") and not a["href"].startswith(("magnet:", "https://", "http://", "mailto:"))
    ]
    assert "torrents.json" in local and "withdrawn.json" in local
    public = m.public_dir.resolve()
    for href in local:
        target = (m.public_dir / href).resolve()
        assert target.is_relative_to(public) and target.is_file(), href
    assert any(h.startswith("torrents/") for h in local)
    assert any(h.startswith("packs/") for h in local)
    assert result["metadata"]["name"] in page


def test_hostile_strings_survive_json_exactly(hostile_site):
    m, result = hostile_site
    import gzip

    root = m.packs_dir / result["metadata"]["name"]
    rows = [
        json.loads(x)
        for x in gzip.decompress((root / "catalogue.jsonl.gz").read_bytes()).splitlines()
    ]
    titles = {r["row"]["title"] for r in rows if r["table"] == "items"}
    assert set(HOSTILE) <= titles
    json.loads((m.public_dir / "torrents.json").read_text("utf-8"))


def test_page_in_headlesschromium(hostile_site, tmp_path):
    m, _ = hostile_site
    url = (m.public_dir / "index.html").as_uri()
    shot = tmp_path / "index.png"
    r = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    # The DOM after the browser ran the page: no script or image was injected.
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _parse(dom.stdout)
    tags = [t for t, _ in parsed.tags]
    assert "script" not in tags and "img" not in tags
    assert tags.count("table") == 3  # tiers, licences, most listened: no table injected
    text = "".join(parsed.text)
    assert '<script>alert("t")</script>' in text and "مرحبا بالعالم" in text
    assert "Tiers and torrents" in text and "Coverage" in text
    assert "svg" in tags and "polyline" in tags


def test_empty_mirror_page(tmp_path):
    m = make_mirror(tmp_path)
    add_item(m, "ia", "nothing-fetched", popularity=1)
    publish(m)  # no pack at all: the page says so, and the metadata torrent still works
    page = (m.public_dir / "index.html").read_text("utf-8")
    assert "not sealed yet" in page and "No files are packed yet" in page
    assert "test-metadata-0001" in page
    entries = json.loads(Path(m.public_dir / "torrents.json").read_text())
    assert [t["is_metadata"] for t in entries] == [True]
