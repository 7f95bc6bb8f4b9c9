"""Shared test helpers: a loopback IA server full of real audio, and manifests aimed at it.

    from iahelpers import CC_BY, make_ia_archive, ia_manifest

    with IAServer() as ia:
        ids = make_ia_archive(ia, 5)                       # 5 items, 2 real audio files each
        ids += make_ia_archive(ia, [{"identifier": "x", "licenseurl": None}])
        path = ia_manifest(write_manifest, ia)             # write_manifest: conftest fixture

Item specs (dicts) may set: identifier, title, creator, licenseurl, collection (str|list),
downloads, month, week, dark, kinds (audio kinds: flac, ogg, opus, mp3, wav), seconds,
tags (for every audio file), extra_files ({name: bytes | Path | dict}) and metadata (more
IA metadata). Audio is encoded by `ccmirror.sample.audio.write_audio` (never byte stubs) and
cached per (kind, seed, seconds, tags), so large archives stay cheap to build.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ccmirror.sample.audio import write_audio
from iafake import IAServer

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC_SA_US = "http://creativecommons.org/licenses/by-nc-sa/3.0/us/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"
SAMPLING = "http://creativecommons.org/licenses/sampling/1.0/"

_CACHE: dict[tuple[Any, ...], bytes] = {}


def audio_bytes(
    kind: str, seed: int = 0, seconds: float = 0.2, tags: Mapping[str, str] | None = None
) -> bytes:
    """The bytes of a real encoded audio file (cached)."""
    key = (kind, seed, seconds, tuple(sorted((tags or {}).items())))
    if key not in _CACHE:
        with tempfile.TemporaryDirectory(prefix="iahelpers-") as tmp:
            path = Path(tmp) / f"audio.{kind}"
            write_audio(path, kind, seconds=seconds, seed=seed, tags=tags)
            _CACHE[key] = path.read_bytes()
    return _CACHE[key]


def png_bytes(width: int = 8, height: int = 8, seed: int = 0) -> bytes:
    """A real PNG image (8-bit RGB, one colour per seed), written with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    pixel = bytes(((seed * 37) % 256, (seed * 91) % 256, (seed * 53 + 7) % 256))
    raw = b"".join(b"\0" + pixel * width for _ in range(height))  # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def ia_cover_files(name: str = "cover.png", data: bytes | None = None) -> dict[str, Any]:
    """An item's cover as the archive lists it: the uploaded original (PNG), beside what
    IA generates from it: `__ia_thumb.jpg` (an "Item Tile", listed as an original), the
    "JPEG Thumb" derivative `<stem>_thumb.jpg` and a spectrogram-like derivative PNG."""
    data = data if data is not None else png_bytes(16, 16, len(name))
    stem = name.rsplit(".", 1)[0]
    thumb = png_bytes(4, 4, 99)  # the bytes do not matter: never fetched
    return {
        name: {"data": data, "format": "PNG"},
        "__ia_thumb.jpg": {"data": thumb, "format": "Item Tile"},
        f"{stem}_thumb.jpg": {
            "data": thumb,
            "format": "JPEG Thumb",
            "source": "derivative",
            "original": name,
        },
        "spectrogram.png": {"data": thumb, "format": "PNG", "source": "derivative"},
    }


def make_ia_archive(
    server: IAServer,
    items: int | Iterable[Mapping[str, Any]],
    *,
    prefix: str = "item",
    collection: str | list[str] = "netlabels",
    licenseurl: str | None = CC_BY,
    kinds: tuple[str, ...] = ("flac", "mp3"),
    seconds: float = 0.2,
    variety: int | None = None,
) -> list[str]:
    """Add items of real audio to `server`; return their identifiers in the order given.

    `items` is a count (identifiers `<prefix>-000`, downloads falling with the index) or
    item specs (see the module docstring); the keyword arguments are the defaults of every
    spec. `variety` bounds the number of distinct audio files (seed modulo variety), to
    keep big archives (the bench) fast to build; by default every file differs.
    Each item also gets a non-audio original (`<id>_meta.txt`) the harvest must skip.
    """
    specs: list[Mapping[str, Any]]
    if isinstance(items, int):
        specs = [
            {"identifier": f"{prefix}-{i:03d}", "downloads": (items - i) * 10} for i in range(items)
        ]
    else:
        specs = list(items)
    ids = []
    for n, spec in enumerate(specs):
        ident = spec.get("identifier", f"{prefix}-{n:03d}")
        files: dict[str, Any] = {}
        for k, kind in enumerate(spec.get("kinds", kinds)):
            seed = zlib.crc32(f"{ident}/{k}".encode()) & 0xFFFF
            if variety:
                seed %= variety
            files[f"{ident}-{k + 1:02d}.{kind}"] = audio_bytes(
                kind, seed, spec.get("seconds", seconds), spec.get("tags")
            )
        files[f"{ident}_meta.txt"] = f"notes for {ident}\n".encode()
        files.update(spec.get("extra_files", {}))
        metadata: dict[str, Any] = {
            "title": spec.get("title", f"Album {ident}"),
            "creator": spec.get("creator", f"Artist {n % 7}"),
            "date": spec.get("date", "2009-05-01"),
            "collection": spec.get("collection", collection),
        }
        lic = spec.get("licenseurl", licenseurl)
        if lic is not None:
            metadata["licenseurl"] = lic
        metadata.update(spec.get("metadata", {}))
        server.add_item(
            ident,
            metadata,
            files,
            dark=spec.get("dark", False),
            downloads=spec.get("downloads", 0),
            month=spec.get("month", 0),
            week=spec.get("week", 0),
        )
        ids.append(ident)
    return ids


def ia_manifest(
    write_manifest: Callable[..., Path],
    server: IAServer,
    *,
    query: str = "collection:netlabels AND mediatype:audio",
    extra: str = "",
    name: str = "test",
) -> Path:
    """A manifest with one IA source aimed at `server` (uses conftest's write_manifest)."""
    body = f'[[source]]\nkind = "ia"\nquery = "{query}"\nendpoint = "{server.url}"\n{extra}\n'
    return write_manifest(body, name=name)
