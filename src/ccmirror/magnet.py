"""Magnet links (BEP 9, BEP 19 web seeds), built from what the catalogue records: used by
pack sealing, torrents.json and the pages alike."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

__all__ = ["magnet_link"]


def magnet_link(
    name: str,
    btih: str | None,
    btmh: str | None,
    trackers: Sequence[str] = (),
    *,
    size: int | None = None,
    web_seeds: Sequence[str] = (),
) -> str:
    """magnet:?xt=urn:btih:<hex> (+ xt=urn:btmh:1220<hex> for hybrid/v2) + dn + xl + tr + ws.

    `xl` (BEP 9 exact length) is the content's size, `ws` one BEP 19 web seed each, as
    written into the torrent. Only parameters are added over time: the `xt`s, what
    identifies the torrent, never change, so a published link stays valid.
    """
    parts = []
    if btih:
        parts.append(f"xt=urn:btih:{btih}")
    if btmh:
        parts.append(f"xt=urn:btmh:1220{btmh}")
    parts.append(f"dn={quote(name, safe='')}")
    if size is not None:
        parts.append(f"xl={int(size)}")
    parts += [f"tr={quote(t, safe='')}" for t in trackers]
    parts += [f"ws={quote(w, safe='')}" for w in web_seeds]
    return "magnet:?" + "&".join(parts)
