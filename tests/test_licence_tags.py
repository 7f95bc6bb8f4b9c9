"""Licence evidence from real encoded files, tagged with mutagen in every convention."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import soundfile as sf
from mutagen import id3
from mutagen.aiff import AIFF
from mutagen.apev2 import APENoHeaderError, APEv2

from ccmirror.licence import VERDICTS, inspect
from ccmirror.licence.tags import _may_carry_ape, read_tags
from ccmirror.manifest import LicenceConfig
from ccmirror.sample.audio import RATE, signal, write_audio

KINDS = ["flac", "ogg", "opus", "mp3", "wav", "aiff"]
VORBIS = {"flac", "ogg", "opus"}
BYSA3 = "http://creativecommons.org/licenses/by-sa/3.0/"
MBID = "b1a9c0e9-d987-4042-ae91-78d6a3267d69"


def make(path: Path, seconds: float = 0.3, seed: int = 0) -> Path:
    kind = path.suffix[1:]
    if kind == "aiff":
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, signal(seconds, seed), RATE, format="AIFF", subtype="PCM_16")
        return path
    return write_audio(path, seconds=seconds, seed=seed)


def id3_frames(path: Path, *frames: id3.Frame) -> None:
    kind = path.suffix[1:]
    if kind in ("wav", "aiff"):
        from mutagen.wave import WAVE

        f = WAVE(path) if kind == "wav" else AIFF(path)
        if f.tags is None:
            f.add_tags()
        for fr in frames:
            f.tags.add(fr)
        f.save()
    else:
        try:
            tags = id3.ID3(path)
        except id3.ID3NoHeaderError:
            tags = id3.ID3()
        for fr in frames:
            tags.add(fr)
        tags.save(path)


def vorbis(path: Path, **pairs: str) -> None:
    import mutagen

    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    for k, v in pairs.items():
        f.tags[k] = [v]
    f.save()


def tcop(text: str) -> id3.Frame:
    return id3.TCOP(encoding=3, text=[text])


def ids(report) -> set[str]:
    return {lic.id for _, lic in report.licences}


@pytest.mark.parametrize("kind", KINDS)
def test_untagged_files_read_clean(tmp_path, kind):
    r = read_tags(make(tmp_path / f"a.{kind}"))
    assert r.error is None
    assert r.licences == [] and not r.rights_reserved


@pytest.mark.parametrize("kind", ["mp3", "wav", "aiff"])
@pytest.mark.parametrize(
    ("frame", "tag"),
    [
        (lambda: tcop(f"2008 Foo. Licensed to the public under {BYSA3} verify at http://foo.example/licence.html"), "TCOP"),
        (lambda: id3.WCOP(url=BYSA3), "WCOP"),
        (lambda: id3.WOAF(url="https://creativecommons.org/licenses/by-sa/3.0/deed.en"), "WOAF"),
        (lambda: id3.WXXX(encoding=3, desc="Licence", url=BYSA3 + "legalcode"), "WXXX:Licence"),
        (lambda: id3.TXXX(encoding=3, desc="LICENSE", text=["CC BY-SA 3.0"]), "TXXX:LICENSE"),
        (lambda: id3.TXXX(encoding=3, desc="Copyright message", text=["Attribution-ShareAlike 3.0 Unported"]), "TXXX:Copyright message"),
        (lambda: id3.TXXX(encoding=3, desc="license", text=["www.creativecommons.org/licenses/by-sa/3.0"]), "TXXX:license"),
        (lambda: id3.COMM(encoding=3, lang="eng", desc="", text=[f"Released under {BYSA3}"]), "COMM"),
        (lambda: id3.USER(encoding=3, lang="eng", text="Creative Commons Attribution-ShareAlike 3.0"), "USER"),
    ],
)  # fmt: skip
def test_id3_conventions(tmp_path, kind, frame, tag):
    path = make(tmp_path / f"a.{kind}")
    id3_frames(path, frame())
    r = read_tags(path)
    assert r.error is None
    assert ids(r) == {"CC-BY-SA-3.0"}
    assert tag in {e["tag"] for e in r.evidence}
    row = inspect([path])["files"][0]
    assert (row["verdict"], row["licence_id"]) == ("verified", "CC-BY-SA-3.0")


def test_tcop_keeps_the_web_statement(tmp_path):
    path = make(tmp_path / "a.mp3")
    id3_frames(path, tcop(f"2008 Foo. Licensed to the public under {BYSA3} verify at https://foo.example/rights"))  # fmt: skip
    r = read_tags(path)
    assert {"tag": "TCOP:verify", "value": "https://foo.example/rights"} in r.evidence


@pytest.mark.parametrize("kind", sorted(VORBIS))
@pytest.mark.parametrize("key", ["LICENSE", "COPYRIGHT", "CONTACT", "license"])
def test_vorbis_conventions(tmp_path, kind, key):
    path = make(tmp_path / f"a.{kind}")
    vorbis(path, **{key: "Licensed under https://creativecommons.org/licenses/by-nc/4.0/ by Foo"})
    r = read_tags(path)
    assert ids(r) == {"CC-BY-NC-4.0"}
    assert r.evidence[0]["tag"].lower() == f"vorbis:{key.lower()}"


def test_vorbis_title_text_and_ports(tmp_path):
    path = make(tmp_path / "a.flac")
    vorbis(path, LICENSE="Creative Commons Attribution-NonCommercial-ShareAlike 2.0 UK: England & Wales")  # fmt: skip
    assert ids(read_tags(path)) == {"CC-BY-NC-SA-2.0-UK"}


def test_apev2_on_mp3(tmp_path):
    path = make(tmp_path / "a.mp3")
    ape = APEv2()
    ape["License"] = "http://creativecommons.org/publicdomain/zero/1.0/"
    ape["Copyright"] = "2010 Somebody"
    ape.save(path)
    r = read_tags(path)
    assert ids(r) == {"CC0-1.0"}
    assert {"APEv2:License", "APEv2:Copyright"} <= {e["tag"] for e in r.evidence}


def test_the_quick_ape_probe_says_no_only_where_mutagen_finds_none(tmp_path):
    def ape(path: Path) -> Path:
        tag = APEv2()
        tag["License"] = "http://creativecommons.org/publicdomain/zero/1.0/"
        tag.save(path)
        return path

    def id3v1(path: Path) -> Path:
        with open(path, "ab") as f:  # a 128-byte ID3v1 tag after everything
            f.write(b"TAG" + b"Title".ljust(30, b"\0") + bytes(95))
        return path

    def ape_first(path: Path) -> Path:
        raw = make(tmp_path / "tmp.mp3").read_bytes()
        tag = ape(tmp_path / "tmp.mp3").read_bytes()[len(raw) :]
        path.write_bytes(tag + raw)  # the tag, its header first, at the very start
        return path

    cases = {
        "plain": make(tmp_path / "plain.mp3"),
        "wav": make(tmp_path / "a.wav"),
        "tiny": tmp_path / "tiny.mp3",
        "ape": ape(make(tmp_path / "ape.mp3")),
        "ape before id3v1": id3v1(ape(make(tmp_path / "apev1.mp3"))),
        "id3v1 alone": id3v1(make(tmp_path / "v1.mp3")),
        "ape at start": ape_first(tmp_path / "first.mp3"),
    }
    cases["tiny"].write_bytes(b"APETAGEX" * 3)
    for name, path in cases.items():
        try:
            APEv2(path)
            found = True
        except APENoHeaderError:
            found = False
        assert _may_carry_ape(str(path)) or not found, name
        assert _may_carry_ape(str(path)) == (name not in ("plain", "wav", "tiny")), name
        assert found == (name.startswith("ape")), name


def test_what_is_not_a_readable_file_says_why(tmp_path):
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    assert read_tags(tmp_path / "missing").error == "no such file"
    assert read_tags("a\0b").error == "no such file"
    assert read_tags(tmp_path / "dir").error == "is a directory"
    assert read_tags(tmp_path / "fifo").error == "not a regular file"
    assert read_tags(tmp_path / "dangling").error == "cannot read: No such file or directory"


def test_isrc_and_musicbrainz_id3(tmp_path):
    path = make(tmp_path / "a.mp3")
    id3_frames(
        path,
        id3.TSRC(encoding=3, text=["US-RC1-76-07839"]),
        id3.UFID(owner="http://musicbrainz.org", data=MBID.encode()),
    )
    r = read_tags(path)
    assert (r.isrc, r.mbid) == ("USRC17607839", MBID)


@pytest.mark.parametrize("kind", sorted(VORBIS))
def test_isrc_and_musicbrainz_vorbis(tmp_path, kind):
    path = make(tmp_path / f"a.{kind}")
    vorbis(path, ISRC="GBAYE0601498", MUSICBRAINZ_TRACKID=MBID.upper())
    r = read_tags(path)
    assert (r.isrc, r.mbid) == ("GBAYE0601498", MBID)
    assert inspect([path])["files"][0]["isrc"] == "GBAYE0601498"


def test_musicbrainz_txxx(tmp_path):
    path = make(tmp_path / "a.wav")
    id3_frames(path, id3.TXXX(encoding=3, desc="MusicBrainz Track Id", text=[MBID]))
    assert read_tags(path).mbid == MBID


@pytest.mark.parametrize("kind", KINDS)
def test_contradicting_tags_are_a_conflict(tmp_path, kind):
    path = make(tmp_path / f"a.{kind}")
    if kind in VORBIS:
        vorbis(path, LICENSE=BYSA3, COPYRIGHT="CC BY-NC-ND 4.0")
    else:
        id3_frames(path, id3.WCOP(url=BYSA3), tcop("2011 Foo, CC BY-NC-ND 4.0"))
    row = inspect([path])["files"][0]
    assert (row["verdict"], row["reason"]) == ("conflict", "tags state two licences")


@pytest.mark.parametrize("kind", KINDS)
def test_all_rights_reserved(tmp_path, kind):
    path = make(tmp_path / f"a.{kind}")
    text = "(P) 1998 Big Label. All Rights Reserved."
    if kind in VORBIS:
        vorbis(path, COPYRIGHT=text)
    else:
        id3_frames(path, tcop(text))
    row = inspect([path])["files"][0]
    assert row["rights_reserved"] is True
    assert (row["verdict"], row["reason"]) == ("rejected", "tags say all rights reserved")
    # ... and next to a CC licence the tags contradict themselves
    if kind in VORBIS:
        vorbis(path, LICENSE=BYSA3)
    else:
        id3_frames(path, id3.WCOP(url=BYSA3))
    row = inspect([path])["files"][0]
    assert (row["verdict"], row["licence_id"]) == ("conflict", "CC-BY-SA-3.0")


def test_same_licence_twice_is_one_licence(tmp_path):
    path = make(tmp_path / "a.mp3")
    id3_frames(path, id3.WCOP(url=BYSA3), tcop("Attribution-ShareAlike 3.0 Unported"))
    assert inspect([path])["files"][0]["verdict"] == "verified"


def test_inspect_policy_and_denied(tmp_path):
    a = make(tmp_path / "a.flac")
    vorbis(a, LICENSE="https://creativecommons.org/licenses/by-nc/4.0/")
    b = make(tmp_path / "b.flac", seed=1)
    vorbis(b, LICENSE="https://creativecommons.org/licenses/sampling/1.0/")
    res = inspect([a, b])
    assert [r["verdict"] for r in res["files"]] == ["verified", "rejected"]
    assert res["files"][1]["reason"] == "licence never allowed"
    strict = inspect([a], LicenceConfig(allow=("CC-BY-*",), deny=("CC-BY-NC-*",)))
    assert strict["files"][0]["verdict"] == "rejected"


def test_inspect_keeps_order_and_never_stops(tmp_path):
    good = make(tmp_path / "good.ogg")
    vorbis(good, LICENSE=BYSA3)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 10)
    paths = [tmp_path / "missing.flac", junk, tmp_path, good]
    res = inspect(paths)
    rows = res["files"]
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert [r["verdict"] for r in rows] == ["unreadable"] * 3 + ["verified"]
    assert rows[0]["error"] == "no such file"
    assert all(rows[i]["error"] for i in range(3)) and rows[3]["error"] is None
    json.dumps(res)  # one JSON document
    assert set(rows[0]) >= {"path", "licence_id", "licence_url", "rights_reserved", "verdict", "reason", "evidence", "isrc", "error"}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_truncated_files_are_unreadable(tmp_path, kind, fraction):
    path = make(tmp_path / f"a.{kind}", seconds=0.5)
    id3_frames(path, id3.WCOP(url=BYSA3)) if kind not in VORBIS else vorbis(path, LICENSE=BYSA3)
    assert inspect([path])["files"][0]["verdict"] == "verified"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    row = inspect([path])["files"][0]
    assert row["verdict"] == "unreadable", row
    assert row["error"]


# The bytes that say what a file is: flipping a bit in them leaves nothing to parse.
MAGIC = {"flac": b"fLaC", "ogg": b"OggS", "opus": b"OggS", "wav": b"RIFF", "aiff": b"FORM"}


@pytest.mark.parametrize("kind", sorted(MAGIC))
def test_bit_flipped_headers_are_unreadable(tmp_path, kind):
    path = make(tmp_path / f"a.{kind}")
    data = bytearray(path.read_bytes())
    at = data.find(MAGIC[kind])
    assert at >= 0
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    row = inspect([path])["files"][0]
    assert row["verdict"] == "unreadable", row


def test_bit_flipped_flac_audio_is_unreadable(tmp_path):
    # FLAC frames carry CRCs: damage in the audio itself is found by decoding
    path = make(tmp_path / "a.flac", seconds=1.0)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert inspect([path])["files"][0]["verdict"] == "unreadable"


@pytest.mark.parametrize("kind", KINDS)
def test_random_damage_never_escapes(tmp_path, kind):
    src = make(tmp_path / f"src.{kind}")
    id3_frames(src, id3.WCOP(url=BYSA3)) if kind not in VORBIS else vorbis(src, LICENSE=BYSA3)
    data = src.read_bytes()
    rng = random.Random(kind)
    paths = []
    for n in range(12):
        b = bytearray(data)
        for _ in range(rng.randrange(1, 40)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        p = tmp_path / f"d{n}.{kind}"
        p.write_bytes(bytes(b[: rng.randrange(1, len(b) + 1)]))
        paths.append(p)
    rows = inspect(paths)["files"]
    assert len(rows) == 12
    assert all(r["verdict"] in VERDICTS for r in rows)
    assert all((r["error"] is not None) == (r["verdict"] == "unreadable") for r in rows)


def test_mp4_and_asf_tag_objects():
    # soundfile cannot write MP4 or ASF files, so these run on mutagen's own tag objects.
    from mutagen.asf import ASFTags, ASFUnicodeAttribute
    from mutagen.mp4 import MP4FreeForm, MP4Tags

    from ccmirror.licence.tags import TagReport, _read_mp4, _read_pairs

    t = MP4Tags()
    t["cprt"] = ["2012 Foo. All Rights Reserved."]
    t["----:com.apple.iTunes:LICENSE"] = [MP4FreeForm(b"https://creativecommons.org/licenses/by/3.0/")]  # fmt: skip
    t["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(b"USRC17607839")]
    t["----:com.apple.iTunes:MusicBrainz Track Id"] = [MP4FreeForm(MBID.encode())]
    r = TagReport()
    _read_mp4(r, t)
    assert ids(r) == {"CC-BY-3.0"} and r.rights_reserved
    assert (r.isrc, r.mbid) == ("USRC17607839", MBID)
    assert [e["tag"] for e in r.evidence] == ["MP4:cprt", "MP4:LICENSE"]

    a = ASFTags()
    a["Copyright"] = [ASFUnicodeAttribute("CC BY-SA 4.0")]
    a["WM/ISRC"] = [ASFUnicodeAttribute("USRC17607839")]
    r = TagReport()
    _read_pairs(r, a.items(), "ASF")
    assert ids(r) == {"CC-BY-SA-4.0"} and r.isrc == "USRC17607839"


def test_the_class_picked_without_scoring_is_the_one_mutagen_file_picks(tmp_path, monkeypatch):
    # Every format class mutagen.File may choose records that it was chosen (and loads
    # nothing): the choice is mutagen's own, whatever its list of formats.
    import mutagen

    from ccmirror.licence.sniff import pick

    class Chosen(Exception):
        pass

    def classes(root):
        for sub in root.__subclasses__():
            yield sub
            yield from classes(sub)

    mutagen.File(make(tmp_path / "warm.mp3"))  # every format module imported
    for kind in set(classes(mutagen.FileType)):
        monkeypatch.setattr(kind, "__init__", lambda self, *a, k=kind, **kw: (_ for _ in ()).throw(Chosen(k)))  # fmt: skip

    def chosen(path: Path):
        try:
            mutagen.File(path)
        except Chosen as e:
            return e.args[0]
        return None

    starts = [b"ID3\x04", b"\xff\xfb\x90", b"\xff\xf3", b"fLaC", b"RIFF\x10\0\0\0WAVEfmt ", b"FORM\0\0\0\x10AIFF",
              b"OggS\0\x02" + bytes(22), b"wvpk", b"MAC ", b"TTA1", b"\0\0\0\x20ftypM4A ", b"APETAGEX", b"", b"xxxx"]  # fmt: skip
    markers = [
        b"\x01vorbis",
        b"OpusHead",
        b"\x80theora",
        b"Speex   ",
        b"FLAC",
        b"fLaC",
        b"ftyp",
        b"mp4",
        b"ADIF",
    ]
    exts = [".mp3", ".MP3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".wave", ".aif", ".aiff", ".aifc",
            ".m4a", ".tta", ".ape", ".aac", ".mp2", ".bin", ""]  # fmt: skip
    rnd = random.Random(17)
    seen = set()
    for i in range(1500):
        head = rnd.choice(starts)
        for m in rnd.sample(markers, rnd.choice((0, 0, 1, 1, 2))):
            head += bytes(rnd.randrange(4)) + m
        if rnd.random() < 0.1:
            head = head[:8] + b"WAVE" + head[12:]
        body = head.ljust(128 + rnd.randrange(200), b"\0")
        if rnd.random() < 0.2:
            body += b"APETAGEX" + bytes(24)
        path = tmp_path / f"f{i}{rnd.choice(exts)}"
        path.write_bytes(body)
        got = pick(str(path), body[:128])
        if got is not None:
            assert got is chosen(path), (path.name, body[:40])
            seen.add(got.__name__)
    for kind in KINDS:  # real files: each of the formats check meets most is picked
        monkeypatch.undo()
        path = make(tmp_path / "real" / f"a.{kind}")
        for k in set(classes(mutagen.FileType)):
            monkeypatch.setattr(k, "__init__", lambda self, *a, k=k, **kw: (_ for _ in ()).throw(Chosen(k)))  # fmt: skip
        got = pick(str(path), path.read_bytes()[:128])
        assert got is not None and got is chosen(path), kind
        seen.add(got.__name__)
    assert seen == {"MP3", "FLAC", "WAVE", "AIFF", "OggVorbis", "OggOpus"}
