"""The fetch transport: pooled keep-alive connections, hashing while streaming, politeness."""

from __future__ import annotations

import hashlib
import threading

import pytest

import ccmirror.fetch as fetch_module
from ccmirror.fetch import fetch, polite, transport
from ccmirror.fetch import sink as sink_module
from ccmirror.fetch.polite import Gate, InFlight
from ccmirror.fetch.sink import Sink
from ccmirror.harvest import harvest
from ccmirror.manifest import ManifestError, load_manifest
from ccmirror.mirror import open_mirror
from ccmirror.sample import handler
from iafake import IAServer
from iahelpers import ia_manifest, make_ia_archive


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    monkeypatch.setattr(transport, "_backoff", lambda attempt: 0.01 * attempt)


@pytest.fixture
def connections(monkeypatch):
    """How many TCP connections the loopback servers accepted."""
    seen: list[int] = []
    real = handler.Handler.setup

    def setup(self):
        seen.append(1)
        real(self)

    monkeypatch.setattr(handler.Handler, "setup", setup)
    monkeypatch.setattr(transport, "_pools", None)  # no connection from another test
    return seen


def _harvested(ia, write_manifest, n, **kw):
    make_ia_archive(ia, n, **kw)
    path = ia_manifest(write_manifest, ia)
    with open_mirror(path) as mirror:
        harvest(mirror)
    return path


def test_one_kept_alive_connection_carries_redirects_and_files(write_manifest, connections):
    with IAServer() as ia:
        path = _harvested(ia, write_manifest, 6, kinds=("mp3", "flac"))
        connections.clear()
        with open_mirror(path) as mirror:
            result = fetch(mirror, workers=1)
        assert result["fetched"] == 12
        # 24 requests (12 redirects, 12 files) over a single connection.
        assert len([r for r in ia.requests if r.path.startswith("/download/")]) == 12
        assert len(connections) == 1


def test_downloads_are_hashed_as_they_stream_never_read_again(
    write_manifest, data_dir, monkeypatch
):
    def no_second_read(*a, **k):
        raise AssertionError("a downloaded file was read again to hash it")

    monkeypatch.setattr(fetch_module, "hash_file", no_second_read)
    with IAServer() as ia:
        path = _harvested(ia, write_manifest, 3, kinds=("wav",), seconds=2.0)  # >4 MiB writes
        with open_mirror(path) as mirror:
            assert fetch(mirror, workers=2)["fetched"] == 3
            for r in mirror.db.execute("SELECT f.*, i.source_id FROM files f JOIN items i"
                                       " ON i.id = f.item_id"):  # fmt: skip
                data = ia.file_bytes(r["source_id"], r["name"])
                assert r["sha256"] == hashlib.sha256(data).hexdigest()
                assert (data_dir / r["store_path"]).read_bytes() == data


def test_never_more_than_16_requests_at_once_to_one_host(write_manifest):
    with IAServer() as ia:
        path = _harvested(ia, write_manifest, 20, kinds=("mp3",))
        ia.latency = 0.05  # requests overlap
        with open_mirror(path) as mirror:
            assert fetch(mirror, workers=32)["fetched"] == 20
        assert 1 < ia.max_in_flight <= polite.MAX_PER_HOST


def test_a_resumed_part_is_hashed_from_its_start(tmp_path):
    part = tmp_path / "x.part"
    part.write_bytes(b"left by an earlier run;")
    sink = Sink(part)
    sink.begin(part.stat().st_size)
    sink.write(b" the rest")
    landed = sink.landed()
    whole = b"left by an earlier run; the rest"
    assert part.read_bytes() == whole and landed.size == len(whole)
    assert landed.hashes["sha1"] == hashlib.sha1(whole).hexdigest()
    # Continuing in the same run keeps the running digests; starting over resets them.
    sink.begin(len(whole))
    sink.write(b"!")
    assert sink.landed().hashes["md5"] == hashlib.md5(whole + b"!").hexdigest()
    sink.begin(0)
    sink.write(b"new")
    assert sink.landed().hashes["sha256"] == hashlib.sha256(b"new").hexdigest()
    assert part.read_bytes() == b"new"


def test_large_writes_across_blocks_and_streamed_through_keep_every_byte(tmp_path, monkeypatch):
    # Small blocks, and a file "large" from 3 blocks on: pieces of odd sizes cross block
    # edges, the page cache lets go of what is on disk, two sinks on one thread at once.
    monkeypatch.setattr(sink_module, "WRITE_SIZE", 1000)
    monkeypatch.setattr(sink_module, "STREAM_AFTER", 3000)
    monkeypatch.setattr(sink_module, "_blocks", threading.local())
    data = bytes(range(256)) * 61  # 15,616 bytes
    first = Sink(tmp_path / "first.part")
    first.begin(0)
    first.write(b"short")  # closed below: its block goes back to the thread, reused next
    assert first.landed().hashes["sha1"] == hashlib.sha1(b"short").hexdigest()
    one, other = Sink(tmp_path / "one.part"), Sink(tmp_path / "other.part")
    one.begin(0)
    other.begin(0)
    for i in range(0, len(data), 777):
        one.write(data[i : i + 777])
        other.write(data[i : i + 333][::-1])
    got = one.landed()
    assert (tmp_path / "one.part").read_bytes() == data and got.size == len(data)
    assert got.hashes == {a: hashlib.new(a, data).hexdigest() for a in ("md5", "sha1", "sha256")}
    want = b"".join(data[i : i + 333][::-1] for i in range(0, len(data), 777))
    assert other.landed().hashes["md5"] == hashlib.md5(want).hexdigest()
    assert (tmp_path / "other.part").read_bytes() == want
    assert (tmp_path / "first.part").read_bytes() == b"short"


def test_slow_down_halves_the_host_and_climbs_back():
    gate = Gate(8)
    gate.slow_down("h", 0.0)
    gate.slow_down("h", 0.0)
    assert gate.limit("h") == 2 and gate.limit("other") == 8
    for _ in range(2 + 3 + 4 + 5 + 6 + 7):
        gate.answered("h")
    assert gate.limit("h") == 8


def test_a_pause_holds_every_request_to_that_host(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(polite.time, "monotonic", lambda: clock[0])
    gate = Gate(4)
    gate.slow_down("h", 30.0)  # Retry-After: 30
    stop = threading.Event()
    through = threading.Event()

    def request():
        with gate.slot("h", stop):
            through.set()

    t = threading.Thread(target=request)
    t.start()
    with gate.slot("elsewhere", stop):  # other hosts are not held
        pass
    assert not through.wait(0.6)  # the clock has not moved: still paused
    clock[0] += 31
    assert through.wait(10)
    t.join(10)


def test_in_flight_admits_in_plan_order_and_skips_tickets_given_up():
    inflight = InFlight(1)
    stop = threading.Event()
    tickets = [inflight.ticket() for _ in range(3)]
    order: list[int] = []

    def run(t):
        with inflight.place(t, stop, lambda: True):
            order.append(t)

    later = threading.Thread(target=run, args=(tickets[2],))
    later.start()
    inflight.skip(tickets[0])  # an adopted file: it needed no download
    run(tickets[1])
    later.join(10)
    assert order == [tickets[1], tickets[2]]


def test_a_source_at_its_limit_does_not_hold_the_others():
    inflight = InFlight(4, {"ia": 1})
    stop = threading.Event()
    holding, release = threading.Event(), threading.Event()
    second_ia = threading.Event()
    first, second, fma = inflight.ticket("ia"), inflight.ticket("ia"), inflight.ticket("fma")

    def hold():
        with inflight.place(first, stop, lambda: True, "ia"):
            holding.set()
            release.wait(10)

    def after():
        with inflight.place(second, stop, lambda: True, "ia"):
            second_ia.set()

    threads = [threading.Thread(target=hold), threading.Thread(target=after)]
    threads[0].start()
    assert holding.wait(10)
    threads[1].start()
    with inflight.place(fma, stop, lambda: True, "fma"):  # another source goes straight on
        assert not second_ia.is_set()
    assert not second_ia.wait(0.5)  # "ia" is at its limit of 1
    release.set()
    assert second_ia.wait(10)
    for t in threads:
        t.join(10)


@pytest.mark.parametrize("value", ["0", "17", "'8'"])
def test_downloads_per_source_is_1_to_16(write_manifest, value):
    path = write_manifest(f'[[source]]\nkind = "ia"\nquery = "q"\ndownloads = {value}\n')
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert "source[0].downloads" in str(e.value) and e.value.exit_code == 2


def test_downloads_per_source_default_and_set(write_manifest):
    path = write_manifest(
        '[[source]]\nkind = "ia"\nquery = "q"\n\n[[source]]\nkind = "ia"\nquery = "r"\n'
        "downloads = 3\n"
    )
    assert [s.downloads for s in load_manifest(path).sources] == [8, 3]


def test_a_source_fetches_with_its_own_downloads_in_flight(write_manifest):
    with IAServer() as ia:
        make_ia_archive(ia, 8, kinds=("mp3",))
        path = ia_manifest(write_manifest, ia, extra="downloads = 2")
        with open_mirror(path) as mirror:
            harvest(mirror)
            ia.latency = 0.05  # requests overlap
            ia.max_in_flight = 0
            assert fetch(mirror)["fetched"] == 8
        assert 1 <= ia.max_in_flight <= 2
