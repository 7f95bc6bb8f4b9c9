"""Build a small mirror with fetched, licence-checked real audio, without fetch or check.

Catalogue rows are inserted directly and the store files are written with
`ccmirror.sample.audio.write_audio`, so packs, publishing and seeding can be tested on their own.

    from packhelpers import make_mirror, add_item, add_file, sample_mirror

    mirror = make_mirror(tmp_path, pack_size="1MiB")            # a Mirror (writable catalogue)
    item = add_item(mirror, "ia", "album-1", popularity=100)     # -> items.id
    add_file(mirror, item, "01.flac", seconds=1.0, seed=1)       # fetched, verdict 'verified'
    add_file(mirror, item, "02.flac", verdict="conflict")        # never packed

    mirror = sample_mirror(tmp_path)    # two sources, ten items, mixed verdicts, ready to pack
    mirror = packed_mirror(tmp_path)    # the same, packed: sealed packs, .torrent files,
                                        # payloads under packs/, public/torrents.json

Every function returns catalogue ids or the Mirror; only `packed_mirror` runs project code
beyond the catalogue, the manifest loader and the audio writer (it calls `pack`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.mirror import Mirror, open_mirror
from ccmirror.sample.audio import write_audio

LICENCES = {
    "CC-BY-4.0": ("https://creativecommons.org/licenses/by/4.0/", "Attribution 4.0 International"),
    "CC-BY-SA-3.0": (
        "https://creativecommons.org/licenses/by-sa/3.0/",
        "Attribution-ShareAlike 3.0 Unported",
    ),
    "CC0-1.0": ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0 Universal"),
}


def write_manifest(
    dir: Path,
    *,
    name: str = "test",
    pack_size: str = "1MiB",
    fmt: str = "v1",
    piece_size: str = "auto",
    shares: tuple[float, ...] = (0.5, 0.9, 1.0),
    trackers: tuple[str, ...] = ("http://127.0.0.1:6969/announce",),
    web_seeds: tuple[str, ...] = (),
    require_embedded: bool = False,
    contact: str | None = None,
) -> Path:
    """A manifest with one IA source on loopback and the given pack settings."""
    data_dir = dir / "data"
    path = dir / "mirror.toml"
    path.write_text(
        f'[mirror]\nname = "{name}"\ndata_dir = "{data_dir}"\n'
        + (f"contact = {json.dumps(contact)}\n" if contact else "")
        + "\n"
        '[[source]]\nkind = "ia"\nquery = "collection:test"\nendpoint = "http://127.0.0.1:9"\n\n'
        f"[licence]\nrequire_embedded = {'true' if require_embedded else 'false'}\n\n"
        f"[tiers]\nshares = {json.dumps(list(shares))}\n\n"
        f'[torrents]\npack_size = "{pack_size}"\nformat = "{fmt}"\n'
        f'piece_size = "{piece_size}"\ntrackers = {json.dumps(list(trackers))}\n'
        f"web_seeds = {json.dumps(list(web_seeds))}\n",
        encoding="utf-8",
    )
    return path


def make_mirror(dir: Path, **manifest: Any) -> Mirror:
    """Write a manifest (see `write_manifest`) and open its mirror for writing."""
    return open_mirror(write_manifest(dir, **manifest))


def add_item(
    mirror: Mirror,
    source: str,
    source_id: str,
    *,
    popularity: float,
    title: str | None = None,
    creator: str = "Test Artist",
    status: str = "ok",
    licence_id: str = "CC-BY-4.0",
) -> int:
    """Insert an item; returns items.id."""
    now = utcnow()
    page = (
        f"https://archive.org/details/{source_id}"
        if source == "ia"
        else f"https://freemusicarchive.org/track/{source_id}"
    )
    with transaction(mirror.db):
        return mirror.db.execute(
            "INSERT INTO items (source, source_id, title, creator, album, date, source_url,"
            " licence_url, declared_licence_id, downloads, popularity, status, first_seen,"
            " harvested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                source,
                source_id,
                title or f"Title of {source_id}",
                creator,
                f"Album {source_id}",
                "2020-01-01",
                page,
                LICENCES[licence_id][0],
                licence_id,
                int(popularity),
                popularity,
                status,
                now,
                now,
            ),
        ).lastrowid


def add_file(
    mirror: Mirror,
    item_id: int,
    name: str,
    *,
    seconds: float = 1.0,
    seed: int = 0,
    verdict: str | None = "verified",
    status: str = "fetched",
    licence_id: str = "CC-BY-4.0",
    with_hashes: bool = True,
) -> int:
    """Write real audio into the store (when status is 'fetched') and insert its row.

    with_hashes: fill md5 and sha1 as a source would (sha256 is left for the packer)."""
    item = mirror.db.execute("SELECT source, source_id FROM items WHERE id = ?", (item_id,))
    source, source_id = item.fetchone()
    rel = mirror.store_relpath(source, source_id, name)
    size = md5 = sha1 = None
    if status == "fetched":
        path = write_audio(mirror.abspath(rel), seconds=seconds, seed=seed, tags={"title": name})
        data = path.read_bytes()
        size = len(data)
        if with_hashes:
            md5, sha1 = hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()
    with transaction(mirror.db):
        return mirror.db.execute(
            "INSERT INTO files (item_id, name, size, md5, sha1, format, url, status, store_path,"
            " fetched_at, verdict, licence_id, licence_url, verdict_reason, checked_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                item_id,
                name,
                size,
                md5,
                sha1,
                Path(name).suffix.lstrip("."),
                f"http://127.0.0.1:9/download/{source_id}/{name}",
                status,
                rel if status == "fetched" else None,
                utcnow() if status == "fetched" else None,
                verdict,
                licence_id,
                LICENCES[licence_id][0],
                f"test fixture: {verdict}",
                utcnow() if verdict else None,
            ),
        ).lastrowid


def sample_mirror(dir: Path, **manifest: Any) -> Mirror:
    """Ten items over two sources with popularity falling off, each with two FLAC files
    (about 100-200 KB each); one conflict file, one rejected file, one pending file, one
    withdrawn item. Tiers with the default shares (0.5, 0.9, 1.0) are non-trivial."""
    mirror = make_mirror(dir, **manifest)
    pops = {"ia": [1000, 500, 250, 125, 60], "fma": [80, 40, 20, 10, 5]}
    seed = 0
    for source, values in pops.items():
        for n, pop in enumerate(values, start=1):
            sid = f"{source}-item-{n}"
            lic = "CC0-1.0" if n % 3 == 0 else "CC-BY-4.0"
            item = add_item(mirror, source, sid, popularity=pop, licence_id=lic)
            for k in (1, 2):
                seed += 1
                add_file(mirror, item, f"track{k}.flac", seed=seed, seconds=1.0, licence_id=lic)
            if source == "ia" and n == 2:
                add_file(mirror, item, "bad-conflict.flac", seed=900, verdict="conflict")
                add_file(mirror, item, "bad-rejected.flac", seed=901, verdict="rejected")
            if source == "ia" and n == 4:
                add_file(mirror, item, "later.flac", status="pending", verdict=None)
    gone = add_item(mirror, "ia", "withdrawn-item", popularity=5000, status="withdrawn")
    add_file(mirror, gone, "gone.flac", seed=999)
    return mirror


def packed_mirror(dir: Path, **manifest: Any) -> Mirror:
    """`sample_mirror`, then `pack(seal_partial=True)`: every publishable file is in a
    sealed pack with its .torrent (default pack_size 1MiB: one pack per tier)."""
    from ccmirror.packs import pack

    mirror = sample_mirror(dir, **manifest)
    result = pack(mirror, seal_partial=True)
    if result["failed"] or not result["sealed"]:
        raise RuntimeError(f"packing the sample mirror failed: {result}")
    return mirror
