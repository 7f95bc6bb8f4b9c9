from __future__ import annotations

import pytest

from ccmirror.errors import ManifestError
from ccmirror.manifest import ALWAYS_EXCLUDED, FMASource, IASource, load_manifest
from ccmirror.sizes import format_size, parse_size

IA = """
[[source]]
kind = "ia"
query = "collection:netlabels"
"""


@pytest.mark.parametrize(
    "text,expected",
    [
        ("50GiB", 50 * 1024**3),
        ("2TB", 2 * 10**12),
        ("60KiB", 60 * 1024),
        ("1.5 GB", 1_500_000_000),
        ("100", 100),
        (4096, 4096),
        ("7mib", 7 * 1024**2),
    ],
)
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "GiB", "12 parsecs", "-5", "1e9", True, -1, None])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size():
    assert format_size(512) == "512 B"
    assert format_size(3 * 1024**3) == "3.0 GiB"


def test_flagship_manifest_loads():
    m = load_manifest("manifests/netlabels.toml", data_dir="/tmp/x")
    assert m.name == "netlabels"
    (src,) = m.sources
    assert isinstance(src, IASource)
    assert src.query == "collection:netlabels AND mediatype:audio"
    assert set(ALWAYS_EXCLUDED) <= set(src.exclude_collections)
    assert m.torrents.format == "v1"
    assert m.torrents.pack_size == 50 * 1024**3
    assert m.tiers.shares == (0.5, 0.9, 0.99, 1.0)


def test_defaults_and_excludes_always_apply(write_manifest, data_dir):
    m = load_manifest(
        write_manifest(IA + 'exclude_collections = ["foo"]\nfiles = ["VBR MP3", "Flac"]\n')
    )
    src = m.sources[0]
    assert src.endpoint == "https://archive.org"
    assert src.files == ("VBR MP3", "Flac")
    assert src.exclude_collections[:3] == ALWAYS_EXCLUDED and "foo" in src.exclude_collections
    assert m.data_dir == data_dir
    assert m.licence.allow is None and m.licence.require_embedded is False


def test_data_dir_overrides(write_manifest, tmp_path, monkeypatch):
    path = write_manifest(IA)
    monkeypatch.setenv("CCMIRROR_DATA_DIR", str(tmp_path / "env"))
    assert load_manifest(path).data_dir == tmp_path / "env"
    assert load_manifest(path, str(tmp_path / "flag")).data_dir == tmp_path / "flag"


def test_fma_source_paths_resolved_against_manifest(write_manifest, tmp_path):
    (tmp_path / "raw_tracks.csv").write_text("track_id\n")
    (tmp_path / "fma_full").mkdir()
    m = load_manifest(
        write_manifest(
            '[[source]]\nkind = "fma"\nmetadata = "raw_tracks.csv"\naudio_root = "fma_full"\n'
        )
    )
    src = m.sources[0]
    assert isinstance(src, FMASource)
    assert src.metadata == str(tmp_path / "raw_tracks.csv")
    assert src.audio_root == str(tmp_path / "fma_full")


@pytest.mark.parametrize(
    "body,key,words",
    [
        (IA + "colour = 1\n", "source[0].colour", "unknown key"),
        (IA + "[torrents]\npack_size = '50 parsecs'\n", "torrents.pack_size", "not a size"),
        (IA + "[torrents]\npack_size = true\n", "torrents.pack_size", "boolean"),
        (IA + "[torrents]\nformat = 'v3'\n", "torrents.format", "v1"),
        (IA + "[torrents]\npiece_size = '100KiB'\n", "torrents.piece_size", "power of two"),
        (IA + "[tiers]\nshares = [0.9, 0.5]\n", "tiers.shares", "increasing"),
        (IA + "[tiers]\nshares = 'all'\n", "tiers.shares", "list"),
        (IA + "[licence]\nallow = 'CC0-1.0'\n", "licence.allow", "list"),
        (IA + "[licence]\nrequire_embedded = 'yes'\n", "licence.require_embedded", "true or false"),
        (IA + "max_items = -1\n", "source[0].max_items", "0"),
        ('[[source]]\nkind = "ftp"\n', "source[0].kind", "ia"),
        ('[[source]]\nkind = "ia"\n', "source[0].query", "required"),
        (
            '[[source]]\nkind = "fma"\nmetadata = "nope.zip"\naudio_root = "/"\n',
            "source[0].metadata",
            "no such file",
        ),
        ("", "source", "required"),
        (IA + "[extra]\n", "extra", "unknown key"),
    ],
)
def test_manifest_errors_name_file_and_key(write_manifest, body, key, words):
    path = write_manifest(body)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert e.value.exit_code == 2
    assert str(path) in str(e.value) and f": {key}: " in str(e.value)
    assert words in str(e.value)


def test_bad_mirror_name(write_manifest):
    with pytest.raises(ManifestError, match="mirror.name"):
        load_manifest(write_manifest(IA, name="Net Labels"))


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        load_manifest(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mirror\nname=")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(bad)


def test_cli_manifest_error_is_one_line_exit_2(cli, write_manifest):
    path = write_manifest(IA + "[torrents]\npack_size = 'huge'\n")
    # Any command that reads a manifest; 'status' is read-only and exists from issue 1 on.
    r = cli("status", str(path))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "torrents.pack_size" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in r.stderr
