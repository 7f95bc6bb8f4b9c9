"""Torrent files with libtorrent: v1 (default), hybrid or v2; byte-identical rebuilds.

libtorrent's Python binding hashes on one thread (`set_piece_hashes`). For v1 we hash the
pieces ourselves with hashlib in a thread pool (hashlib releases the GIL on large
buffers), reading the payload in piece order across file boundaries, and hand each
digest to `create_torrent.set_hash`. Hybrid and v2 need merkle trees per file, for which
libtorrent's own `set_piece_hashes` is used.

Everything written into a torrent (files, piece size, trackers, web seeds, creator,
comment, creation date, layout) is an argument, so the same arguments over the same
payload give the same bytes.

Layouts (recorded per pack, so a rebuild gives the bytes that were published):
- LAYOUT_LT2 (1): libtorrent 2.x's canonical BEP 52 layout: every file of a hybrid torrent
  is padded to a piece boundary, the last one included, and pad files are all named
  `.pad/<size>`, so two pads of one size share a name (rTorrent: "Duplicate filename").
- LAYOUT_FRIENDLY (2): `canonical_files_no_tail_padding` (no pad after the last file,
  libtorrent's own layout up to 2.0.7), and a repeated pad name gets a `.<k>` suffix
  (BEP 47 clients know pads by their `p` attribute, not by name; libtorrent compares
  hybrid v1/v2 layouts ignoring pad names). v1 torrents have no pads; v2-only torrents
  list none, and the flag does not change their bytes.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libtorrent as lt

from ccmirror.errors import CCMirrorError
from ccmirror.magnet import magnet_link  # noqa: F401 (where callers found it before)

MAX_AUTO_PIECE = 16 * 1024 * 1024
BATCH_BYTES = 16 * 1024 * 1024  # work handed to one hashing thread at a time

_FLAGS = {"v1": lt.create_torrent.v1_only, "hybrid": 0, "v2": lt.create_torrent.v2_only}
LAYOUT_LT2 = 1
LAYOUT_FRIENDLY = 2
CURRENT_LAYOUT = LAYOUT_FRIENDLY
_LAYOUT_FLAGS = {LAYOUT_LT2: 0, LAYOUT_FRIENDLY: lt.create_torrent.canonical_files_no_tail_padding}


def _flags(fmt: str, layout: int) -> int:
    if layout not in _LAYOUT_FLAGS:
        raise CCMirrorError(f"unknown torrent layout {layout!r}")
    return _FLAGS[fmt] | (_LAYOUT_FLAGS[layout] if fmt != "v1" else 0)


def payload_files(root: Path, name: str) -> list[tuple[str, int]]:
    """(path inside the torrent, size) for every file under root/name, in a stable order."""
    base = root / name
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for fn in filenames:
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            out.append((rel, full.stat().st_size))
    # Sort by path components, the order v2 file trees use, so all formats agree.
    out.sort(key=lambda e: e[0].split("/"))
    return out


def _hash_v1(
    ct: lt.create_torrent, root: Path, workers: int, progress: Callable[[int], None] | None
) -> None:
    fs = ct.files()
    n = fs.num_files()
    offsets = [fs.file_offset(i) for i in range(n)]
    sizes = [fs.file_size(i) for i in range(n)]
    pads = [bool(fs.file_flags(i) & lt.file_storage.flag_pad_file) for i in range(n)]
    paths = [str(root / fs.file_path(i)) for i in range(n)]
    total = fs.total_size()
    plen = ct.piece_length()
    npieces = ct.num_pieces()
    per_batch = max(1, BATCH_BYTES // plen)

    def job(first: int) -> list[bytes]:
        last = min(npieces, first + per_batch)
        fds: dict[int, int] = {}
        # One reused buffer per job: no allocation (and page faults) per piece.
        buf = bytearray(plen)
        view = memoryview(buf)
        digests = []
        try:
            for p in range(first, last):
                start = p * plen
                end = min(total, start + plen)
                pos = start
                i = bisect.bisect_right(offsets, pos) - 1
                while pos < end:
                    # Skip empty files that share an offset with the next one.
                    while sizes[i] == 0 or offsets[i] + sizes[i] <= pos:
                        i += 1
                    take = min(end, offsets[i] + sizes[i]) - pos
                    into = view[pos - start : pos - start + take]
                    if pads[i]:
                        into[:] = bytes(take)
                    else:
                        fd = fds.get(i)
                        if fd is None:
                            fd = fds[i] = os.open(paths[i], os.O_RDONLY)
                        got = 0
                        while got < take:
                            n = os.preadv(fd, [into[got:]], pos - offsets[i] + got)
                            if n <= 0:
                                raise CCMirrorError(f"{paths[i]} is shorter than expected")
                            got += n
                    pos += take
                digests.append(hashlib.sha1(view[: end - start]).digest())
        finally:
            for fd in fds.values():
                os.close(fd)
        return digests

    # Explicit shutdown: on an interrupt (SIGTERM, Ctrl-C) the queued batches are
    # cancelled instead of hashed to the end.
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for first, digests in zip(
            range(0, npieces, per_batch),
            pool.map(job, range(0, npieces, per_batch)),
            strict=True,
        ):
            for k, d in enumerate(digests):
                ct.set_hash(first + k, d)
            if progress:
                progress(min(total, (first + len(digests)) * plen) - first * plen)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def auto_piece_size(files: Sequence[tuple[str, int]], fmt: str) -> int:
    """libtorrent's own choice for this payload, capped at 16 MiB."""
    entries = [lt.create_file_entry(p, s) for p, s in files]
    return min(MAX_AUTO_PIECE, lt.create_torrent(entries, 0, _FLAGS[fmt]).piece_length())


def _unique_pad_names(info: dict) -> None:
    """Give every repeated pad path of a v1 file list a `.<k>` suffix (k = 2, 3, ...)."""
    seen: dict[tuple[bytes, ...], int] = {}
    for f in info.get(b"files", []):
        if b"p" not in f.get(b"attr", b""):
            continue
        path = tuple(f[b"path"])
        seen[path] = seen.get(path, 0) + 1
        if seen[path] > 1:
            f[b"path"] = [*path[:-1], path[-1] + b".%d" % seen[path]]


def make_torrent(
    root: Path,
    name: str,
    *,
    fmt: str = "v1",
    piece_size: int | None = None,
    trackers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
    comment: str | None = None,
    creation_date: int,
    creator: str | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    layout: int = CURRENT_LAYOUT,
) -> bytes:
    """Bencoded torrent over the folder root/name (`root` is the client's save path).

    piece_size None means automatic (libtorrent's table, at most 16 MiB). `progress`
    is called with the number of bytes hashed since the last call. `layout` matters
    for hybrid torrents only (see the module doc).
    """
    if fmt not in _FLAGS:
        raise CCMirrorError(f"unknown torrent format {fmt!r} (v1, hybrid or v2)")
    files = payload_files(root, name)
    if not files:
        raise CCMirrorError(f"nothing to put in a torrent under {root / name}")
    piece = piece_size or auto_piece_size(files, fmt)
    entries = [lt.create_file_entry(p, s) for p, s in files]
    ct = lt.create_torrent(entries, piece, _flags(fmt, layout))
    if creator is None:
        from ccmirror import __version__

        creator = f"ccmirror {__version__}"
    ct.set_creator(creator)
    ct.set_creation_date(int(creation_date))
    if comment:
        ct.set_comment(comment)
    for tier, url in enumerate(trackers):
        ct.add_tracker(url, tier)
    for url in web_seeds:
        ct.add_url_seed(url)
    if fmt == "v1":
        _hash_v1(ct, root, workers or os.cpu_count() or 1, progress)
    else:
        lt.set_piece_hashes(ct, str(root))
        if progress:
            progress(sum(s for _, s in files))
    torrent = ct.generate()
    if layout == LAYOUT_FRIENDLY:
        _unique_pad_names(torrent[b"info"])
    return lt.bencode(torrent)


def info_hashes(torrent: bytes) -> tuple[str | None, str | None]:
    """(v1 info-hash hex, v2 info-hash hex) of a bencoded torrent; None where absent."""
    ih = lt.torrent_info(lt.bdecode(torrent)).info_hashes()
    v1 = str(ih.v1) if ih.has_v1() else None
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    return v1, v2


def piece_length(torrent: bytes) -> int:
    return int(lt.bdecode(torrent)[b"info"][b"piece length"])


def content_files(torrent: bytes) -> tuple[int, int]:
    """(number of files, bytes) of a torrent's content: pad files left out, every format."""
    fs = lt.torrent_info(lt.bdecode(torrent)).layout()
    pad = lt.file_storage.flag_pad_file
    real = [i for i in range(fs.num_files()) if not fs.file_flags(i) & pad]
    return len(real), sum(fs.file_size(i) for i in real)
