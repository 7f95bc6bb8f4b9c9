"""The sink's large-file path: past the page cache (O_DIRECT), every byte kept and hashed."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading

import pytest

from ccmirror.fetch import fetch, transport
from ccmirror.fetch import sink as sink_module
from ccmirror.fetch.sink import ALIGN, Sink, open_direct
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from iafake import IAServer
from iahelpers import ia_manifest, make_ia_archive

ALGOS = ("md5", "sha1", "sha256")


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 3 pages, and every file "large": the direct path on a few KB."""
    monkeypatch.setattr(sink_module, "WRITE_SIZE", 3 * ALIGN)
    monkeypatch.setattr(sink_module, "STREAM_AFTER", 1)
    monkeypatch.setattr(sink_module, "HASH_SLICE", 1000)
    monkeypatch.setattr(sink_module, "_blocks", threading.local())


@pytest.fixture
def writes(monkeypatch):
    """Every pwrite of the sink: (direct?, offset, length)."""
    seen: list[tuple[bool, int, int]] = []
    real = os.pwrite

    def pwrite(fd, data, offset):
        seen.append((_is_direct(fd), offset, len(data)))
        return real(fd, data, offset)

    monkeypatch.setattr(sink_module.os, "pwrite", pwrite)
    return seen


def _direct_works(tmp_path) -> bool:
    probe = tmp_path / "probe"
    probe.touch()
    fd = open_direct(probe)
    if fd >= 0:
        os.close(fd)
    return fd >= 0


def _check_writes(writes, data_len):
    direct = [(o, n) for d, o, n in writes if d]
    assert all(o % ALIGN == 0 and n % ALIGN == 0 for o, n in direct)
    # Whole blocks go past the cache; only partial pages go through it.
    assert sum(n for o, n in direct) >= data_len - 8 * ALIGN


def test_a_large_file_goes_past_the_cache_with_every_byte(tmp_path, small_blocks, writes):
    data = os.urandom(10 * ALIGN + 123)
    part = tmp_path / "big.part"
    sink = Sink(part)
    sink.begin(0, expect=len(data))
    for n, i in enumerate(range(0, len(data), 777)):
        sink.write(data[i : i + 777])
        if n % 7 == 3:
            sink.flush()  # a slow link's timed flush: a partial page goes through the cache
    landed = sink.landed()
    assert part.read_bytes() == data and landed.size == len(data)
    assert landed.hashes == {a: hashlib.new(a, data).hexdigest() for a in ALGOS}
    if _direct_works(tmp_path):
        _check_writes(writes, len(data))
    # What the cache held of the file agrees with the disk: read back after dropping it.
    fd = os.open(part, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert part.read_bytes() == data


def test_a_large_file_resumed_mid_page_keeps_its_bytes(tmp_path, small_blocks, writes):
    data = os.urandom(9 * ALIGN + 5)
    part = tmp_path / "big.part"
    part.write_bytes(data[: 2 * ALIGN + 100])  # left by an earlier run, ending mid-page
    sink = Sink(part)
    sink.begin(part.stat().st_size, expect=len(data))
    sink.write(data[2 * ALIGN + 100 : 5 * ALIGN + 7])
    sink.flush()  # before a retry: everything on file
    assert part.read_bytes() == data[: 5 * ALIGN + 7]
    sink.begin(5 * ALIGN + 7, expect=len(data))  # resumed in the same run: digests kept
    sink.write(data[5 * ALIGN + 7 :])
    landed = sink.landed()
    assert part.read_bytes() == data
    assert landed.hashes == {a: hashlib.new(a, data).hexdigest() for a in ALGOS}
    if _direct_works(tmp_path):
        _check_writes(writes, len(data) - 2 * ALIGN)


def test_a_refused_direct_write_goes_through_the_cache(tmp_path, small_blocks, monkeypatch):
    real = os.pwrite

    def pwrite(fd, data, offset):
        if _is_direct(fd):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(sink_module.os, "pwrite", pwrite)
    data = os.urandom(7 * ALIGN + 9)
    sink = Sink(tmp_path / "big.part")
    sink.begin(0, expect=len(data))
    for i in range(0, len(data), 1000):
        sink.write(data[i : i + 1000])
    landed = sink.landed()
    assert (tmp_path / "big.part").read_bytes() == data
    assert landed.hashes["sha1"] == hashlib.sha1(data).hexdigest()


def test_a_full_disk_on_a_direct_write_reaches_the_caller(tmp_path, small_blocks, monkeypatch):
    real = os.pwrite

    def pwrite(fd, data, offset):
        if offset >= 3 * ALIGN:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(sink_module.os, "pwrite", pwrite)
    sink = Sink(tmp_path / "big.part")
    sink.begin(0, expect=10 * ALIGN)
    with pytest.raises(OSError) as e:
        sink.write(os.urandom(10 * ALIGN))
    assert e.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        sink.close()  # what is gathered cannot be written either
    assert sink.size == 3 * ALIGN  # the digests count only what is on file


def test_a_reset_large_download_resumes_with_range_past_the_cache(
    write_manifest, small_blocks, writes, monkeypatch, tmp_path
):
    monkeypatch.setattr(transport, "_backoff", lambda attempt: 0.01)
    with IAServer() as ia:
        make_ia_archive(ia, 2, kinds=("flac",), seconds=1.0)
        path = ia_manifest(write_manifest, ia)
        ia.fault("reset", path="/serve/item-000/item-000-01.flac")
        with open_mirror(path) as mirror:
            harvest(mirror)
            result = fetch(mirror, workers=1)
            assert result["fetched"] == 2 and result["failed"] == 0
            store = mirror.data_dir / "store/ia/item-000/item-000-01.flac"
        hits = [r for r in ia.requests if r.path == "/serve/item-000/item-000-01.flac"]
        data = ia.file_bytes("item-000", "item-000-01.flac")
    assert len(hits) == 2 and hits[0].range is None
    start = int(hits[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start < len(data)
    assert store.read_bytes() == data
    if _direct_works(tmp_path):
        assert any(direct for direct, _, _ in writes)
