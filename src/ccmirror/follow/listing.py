"""A primary's torrents.json, read by a follower that trusts nothing in it.

The list is read whole before anything changes: a list that cannot be fetched or parsed
stops the run with one line and touches nothing. One bad entry (no info-hash, a name that
is not a plain folder name, a negative size) is refused alone and reported; the rest is
followed. Anna's Archive's fields are enough (`display_name`, `btih`, `url`, `data_size`,
`obsolete`, `embargo`); ours (`name`, `tier`) are used when present.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from ccmirror.errors import SourceUnreachable, WorkFailed

LIST_MAX_BYTES = 256 * 1024**2  # a 5,000-torrent list is a few MiB
TORRENT_MAX_BYTES = 64 * 1024**2
HTTP_TIMEOUT = 30.0
_BTIH = re.compile(r"^[0-9a-f]{40}$")
# A pack name becomes a folder under packs/: one plain name, nothing that could climb out.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class BadList(WorkFailed):
    """The list is not a list of torrents (exit 1: nothing was changed)."""


@dataclass(frozen=True)
class Listed:
    """One torrent as the primary lists it, checked for shape."""

    name: str
    btih: str
    url: str  # absolute URL or path of the .torrent
    data_size: int
    tier: int | None
    is_metadata: bool
    obsolete: bool
    trackers: tuple[str, ...]
    added: str | None


def _get(url: str, limit: int, what: str) -> bytes:
    import requests  # here: `ccmirror status` imports this module, never needs requests

    try:
        with requests.get(url, timeout=HTTP_TIMEOUT, stream=True) as r:
            if r.status_code != 200:
                raise SourceUnreachable(f"{what} {url}: HTTP {r.status_code}")
            data = bytearray()
            for chunk in r.iter_content(65536):
                data += chunk
                if len(data) > limit:
                    raise BadList(f"{what} {url} is larger than {limit} bytes")
            return bytes(data)
    except requests.RequestException as e:
        raise SourceUnreachable(f"cannot fetch {what} {url}: {type(e).__name__}") from None


def read_bytes(where: str, limit: int, what: str) -> bytes:
    """An http(s) URL or a local path, at most `limit` bytes."""
    if where.startswith(("http://", "https://")):
        return _get(where, limit, what)
    path = Path(where)
    try:
        if path.stat().st_size > limit:
            raise BadList(f"{what} {path} is larger than {limit} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceUnreachable(f"{what} {path}: no such file") from None
    except OSError as e:
        raise SourceUnreachable(f"cannot read {what} {path}: {e.strerror or e}") from None


def resolve(base: str, ref: str) -> str:
    """`ref` (absolute, or relative to the list) as a URL or a local path."""
    if ref.startswith(("http://", "https://")):
        return ref
    if base.startswith(("http://", "https://")):
        return urljoin(base, ref)
    if ref.startswith("file://") or "://" in ref:
        raise ValueError(f"not an http(s) URL or a relative path: {ref!r}")
    return str(Path(base).parent / ref)


def _trackers(magnet: Any) -> tuple[str, ...]:
    if not isinstance(magnet, str) or not magnet.startswith("magnet:?"):
        return ()
    return tuple(parse_qs(urlsplit(magnet).query).get("tr", []))


def _entry(base: str, obj: Any) -> Listed:
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    btih = obj.get("btih")
    if not isinstance(btih, str) or not _BTIH.match(btih.lower()):
        raise ValueError(f"btih is not a v1 info-hash: {btih!r}")
    name = obj.get("name")
    if name is None and isinstance(obj.get("display_name"), str):
        name = obj["display_name"].removesuffix(".torrent")
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"name is not a plain folder name: {name!r}")
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError("no url for the .torrent")
    size = obj.get("data_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"data_size is not a byte count: {size!r}")
    tier = obj.get("tier")
    if tier is not None and (not isinstance(tier, int) or isinstance(tier, bool)):
        raise ValueError(f"tier is not a number: {tier!r}")
    for key in ("obsolete", "embargo", "is_metadata"):
        if not isinstance(obj.get(key, False), bool):
            raise ValueError(f"{key} is not true or false")
    added = obj.get("added_to_torrents_list_at") or obj.get("added_at")
    return Listed(
        name=name,
        btih=btih.lower(),
        url=resolve(base, url),
        data_size=size,
        tier=tier,
        is_metadata=bool(obj.get("is_metadata", False)),
        # An embargoed torrent is not to be spread yet: like an obsolete one, never taken.
        obsolete=bool(obj.get("obsolete", False)) or bool(obj.get("embargo", False)),
        trackers=_trackers(obj.get("magnet_link")),
        added=added if isinstance(added, str) else None,
    )


def parse_list(base: str, data: bytes) -> tuple[list[Listed], list[dict[str, str]]]:
    """(entries, refused) from the bytes of a torrents.json; BadList when it is not one."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadList(f"{base} is not valid JSON ({str(e)[:80]}); nothing was changed") from None
    if not isinstance(doc, list):
        raise BadList(f"{base} is not a list of torrents; nothing was changed")
    entries: list[Listed] = []
    refused: list[dict[str, str]] = []
    seen_hash: set[str] = set()
    seen_name: set[str] = set()
    for i, obj in enumerate(doc):
        try:
            e = _entry(base, obj)
        except ValueError as err:
            label = (obj.get("name") or obj.get("display_name")) if isinstance(obj, dict) else None
            refused.append({"entry": f"#{i} {label or ''}".strip(), "reason": str(err)})
            continue
        if e.btih in seen_hash or e.name in seen_name:
            refused.append({"entry": f"#{i} {e.name}", "reason": "listed twice"})
            continue
        seen_hash.add(e.btih)
        seen_name.add(e.name)
        entries.append(e)
    return entries, refused


def read_list(where: str) -> tuple[list[Listed], list[dict[str, str]]]:
    return parse_list(where, read_bytes(where, LIST_MAX_BYTES, "torrent list"))


def read_withdrawn(list_where: str) -> tuple[set[tuple[str, str]], str | None]:
    """(source, source_id) pairs from the primary's withdrawn.json beside its list, and a
    warning when it cannot be read (then nothing is deleted)."""
    where = resolve(list_where, "withdrawn.json")
    try:
        doc = json.loads(read_bytes(where, LIST_MAX_BYTES, "withdrawn list"))
    except SourceUnreachable as e:
        # None published (Anna's Archive's list has none): no takedowns to apply.
        if e.message.endswith(("no such file", "HTTP 404")):
            return set(), None
        return set(), f"{e.message}; no takedown applied this run"
    except BadList as e:
        return set(), f"{e.message}; no takedown applied this run"
    except (UnicodeDecodeError, ValueError):
        return set(), f"{where} is not valid JSON; no takedown applied this run"
    if not isinstance(doc, list):
        return set(), f"{where} is not a list; no takedown applied this run"
    out = set()
    for w in doc:
        ok = isinstance(w, dict) and isinstance(w.get("source"), str)
        if ok and isinstance(w.get("source_id"), str):
            out.add((w["source"], w["source_id"]))
    return out, None
