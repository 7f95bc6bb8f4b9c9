"""Checks of the public site: every link resolves inside public/, and the width a page
takes in headless Chromium at a phone's width.

    from sitehelpers import broken_links, page_links, phone_overflow

    assert broken_links(mirror.public_dir) == []
    assert phone_overflow(mirror.public_dir / "index.html") == (375, 375)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTSIDE = ("magnet:", "https://", "http://", "mailto:")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k == "href" and v is not None:
                self.hrefs.append(v)
            if k in ("src", "srcset", "data", "action", "formaction", "poster") and v:
                self.srcs.append(v)


def page_links(page: Path) -> _Links:
    p = _Links()
    p.feed(page.read_text("utf-8"))
    return p


def broken_links(public: Path) -> list[str]:
    """Every href on every page of `public/` that is not an outside link (http(s),
    magnet, mailto) must name a file inside `public/`; returns the ones that do not."""
    root = public.resolve()
    bad = []
    pages = sorted(public.rglob("*.html"))
    if not pages:
        return ["no page in public/"]
    for page in pages:
        links = page_links(page)
        bad += [f"{page.name}: loads {s}" for s in links.srcs]
        for href in links.hrefs:
            if href.startswith(OUTSIDE):
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I) or href.startswith("/"):
                bad.append(f"{page.name}: {href}")
                continue
            target = (page.parent / href.split("#")[0]).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                bad.append(f"{page.relative_to(public)}: {href}")
    return bad


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="ccmirror-chromium-")
    try:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


_WRAPPER = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{src}" style="width:{width}px;height:900px;border:0"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById("f").onload = function () {{
  var d = this.contentDocument.documentElement;
  document.getElementById("out").textContent = "width " + d.scrollWidth + " " + d.clientWidth;
}};
</script></body></html>
"""


def phone_overflow(page: Path, width: int = 390) -> tuple[int, int]:
    """(scrollWidth, clientWidth) of `page` laid out by Chromium in a `width` px frame.

    The page itself runs no script (its CSP forbids it), so a test-only wrapper page
    frames it and measures it; equal numbers mean no sideways scrolling."""
    with tempfile.TemporaryDirectory(prefix="ccmirror-phone-") as tmp:
        wrapper = Path(tmp) / "measure.html"
        wrapper.write_text(_WRAPPER.format(src=page.resolve().as_uri(), width=width))
        r = chromium(
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
            wrapper.as_uri(),
        )
    m = re.search(r'id="out">width (\d+) (\d+)<', r.stdout)
    if not m:
        raise AssertionError(f"chromium measured nothing: {r.stdout[-500:]} {r.stderr[-1500:]}")
    return int(m[1]), int(m[2])
