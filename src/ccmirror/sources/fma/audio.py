"""Where an FMA track's audio comes from: a local tree, the dataset's zip, or HTTP.

The dataset's audio archives (`fma_full.zip`, `fma_large.zip`) hold
`fma_full/000/000002.mp3` ... and `fma_full/checksums` (sha1sum format, paths relative
to `fma_full/`). An unpacked tree has the same layout. Either is indexed once per
harvest (a zip's central directory, or one scandir per folder), never read in full.
"""

from __future__ import annotations

import io
import logging
import os
import re
import urllib.parse
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ccmirror.errors import UnsafeName, UsageError
from ccmirror.fsutil import MAX_NAME_BYTES, safe_relpath

log = logging.getLogger("ccmirror.sources.fma")

_TRACK = re.compile(r"(?:^|/)(\d{3})/(\d{6})(\.[A-Za-z0-9]{1,5})$")
_SUM = re.compile(r"^([0-9a-fA-F]{40}) [ *](.+)$")
_FOLDER = re.compile(r"^\d{3}$")
# A track_file that is safe as it stands and that URL quoting leaves alone: parts of
# letters, digits, `_-.` not starting with a dot, joined by single slashes. Such a name
# (nearly every one in the dataset) skips safe_relpath and quote: same result, cheaper.
_PLAIN = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_PLAIN_MATCH = _PLAIN.fullmatch
_new = tuple.__new__


class Audio(NamedTuple):
    """One track's file as the catalogue records it (a NamedTuple: made once per track,
    at a fifth of a frozen dataclass's cost; its repr, which fingerprints hold, is the
    same)."""

    name: str  # file name in the store: <track_id:06d><ext>
    url: str  # file:///..., zip:///...#member, or http(s)://...
    size: int | None
    sha1: str | None
    format: str | None


def track_key(path: str) -> str | None:
    """`000/000002.mp3` for any path ending like a dataset track, else None."""
    m = _TRACK.search(path)
    return f"{m.group(1)}/{m.group(2)}{m.group(3)}" if m else None


def parse_checksums(lines: Iterable[str], name: str) -> dict[str, str]:
    """sha1sum lines -> {"000/000002.mp3": sha1}; unparseable lines are logged and skipped."""
    sums: dict[str, str] = {}
    bad = 0
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        m = _SUM.match(line)
        key = track_key(m.group(2).strip()) if m else None
        if m and key:
            sums[key] = m.group(1).lower()
        elif m is None:
            bad += 1
            if bad <= 5:
                log.warning("%s line %d: not a sha1sum line; ignored", name, n)
    return sums


_FORMATS = {".mp3": "MP3", ".flac": "FLAC", ".ogg": "Ogg Vorbis", ".wav": "WAV"}


def _format(ext: str) -> str | None:
    return _FORMATS.get(ext.lower())


_EXT = re.compile(r"^\.[a-z0-9]{1,5}$")


def _file_name(track_id: int, ext: str) -> str:
    """`<track_id:06d><ext>`: the name in the store, whatever the source calls the file.

    The extension is the only part taken from the source; anything odd becomes .mp3
    (the dataset's only format), so the name is always safe in store/fma/<id>/.
    """
    return f"{track_id:06d}{_suffix(ext)}"


def _suffix(ext: str) -> str:
    ext = ext.lower()
    return ext if _EXT.match(ext) else ".mp3"


class AudioIndex:
    """Finds the audio of a track; `lookup` returns None when the track has none."""

    def __init__(self, audio_root: str | None, audio_base_url: str | None) -> None:
        self.base_url = audio_base_url
        # What a track_file is joined to (lookup): the URL with one trailing slash.
        self._base = None
        if audio_base_url is not None:
            self._base = audio_base_url if audio_base_url.endswith("/") else audio_base_url + "/"
        self._suffixes: dict[str, tuple[str, str | None]] = {}  # ext -> (name suffix, format)
        self.entries: dict[int, Audio] = {}
        self.checksums = 0
        self.kind = "http"
        if audio_root:
            root = Path(audio_root)
            if root.is_dir():
                self.kind = "tree"
                self._index_tree(root)
            else:
                self.kind = "zip"
                self._index_zip(root)

    def lookup(self, track_id: int, track_file: str) -> tuple[Audio | None, str | None]:
        """(audio, None), or (None, why there is none)."""
        found = self.entries.get(track_id)
        if found is not None:
            return found, None
        base = self._base
        if base is None:
            return None, f"no audio file for this track in audio_root ({self.kind})"
        if not track_file:
            return None, "no track_file in the metadata"
        if "://" in track_file:
            return None, f"track_file {track_file[:80]!r} is not a path under audio_base_url"
        path = track_file.lstrip("/")
        if len(path) <= MAX_NAME_BYTES and _PLAIN_MATCH(path):
            # os.path.splitext of the last part, which never starts with a dot here
            dot = path.rfind(".")
            ext = path[dot:] if dot > path.rfind("/") + 1 else ""
            suffix, fmt = self._suffixes.get(ext) or self._suffix_of(ext)
            # Audio(...) without its Python-level __new__: one call less a track
            return _new(Audio, (f"{track_id:06d}{suffix}", base + path, None, None, fmt)), None
        try:
            rel = safe_relpath(path)
        except UnsafeName as e:
            return None, f"unsafe track_file: {e}"
        ext = os.path.splitext(rel.name)[1]
        url = base + urllib.parse.quote(str(rel), safe="/%~!$&'()*+,;=:@")
        return Audio(_file_name(track_id, ext), url, None, None, _format(ext)), None

    def _suffix_of(self, ext: str) -> tuple[str, str | None]:
        value = self._suffixes[ext] = (_suffix(ext), _format(ext))
        return value

    def _index_tree(self, root: Path) -> None:
        root = _dataset_folder(root)
        sums = self._tree_checksums(root)
        with os.scandir(root) as it:
            folders = sorted(e.name for e in it if e.is_dir() and _FOLDER.match(e.name))
        for folder in folders:
            with os.scandir(root / folder) as it:
                for e in it:
                    key = track_key(f"{folder}/{e.name}")
                    if key is None or not e.is_file():
                        continue
                    tid = int(key[4:10])
                    ext = os.path.splitext(e.name)[1]
                    self.entries[tid] = Audio(
                        _file_name(tid, ext),
                        Path(os.path.abspath(e.path)).as_uri(),
                        e.stat().st_size,
                        sums.get(key),
                        _format(ext),
                    )
        if not folders:
            log.warning("audio_root %s has no 000/ ... folders of FMA tracks", root)

    def _tree_checksums(self, root: Path) -> dict[str, str]:
        path = root / "checksums"
        if not path.is_file():
            return {}
        with open(path, encoding="utf-8", errors="replace") as f:
            sums = parse_checksums(f, str(path))
        self.checksums = len(sums)
        return sums

    def _index_zip(self, path: Path) -> None:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise UsageError(
                f"audio_root {path} is neither a folder nor a readable zip: {e}"
            ) from None
        with zf:
            infos = zf.infolist()
            sums: dict[str, str] = {}
            sum_members = sorted(
                (i.filename for i in infos if PurePosixPath(i.filename).name == "checksums"),
                key=lambda n: n.count("/"),
            )
            if sum_members:
                with zf.open(sum_members[0]) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
                    sums = parse_checksums(text, f"{path}#{sum_members[0]}")
                self.checksums = len(sums)
        prefix = "zip://" + urllib.parse.quote(os.path.abspath(path), safe="/") + "#"
        for info in infos:
            if info.is_dir():
                continue
            key = track_key(info.filename)
            if key is None:
                continue
            tid = int(key[4:10])
            ext = os.path.splitext(info.filename)[1]
            self.entries[tid] = Audio(
                _file_name(tid, ext),
                prefix + urllib.parse.quote(info.filename, safe="/"),
                info.file_size,
                sums.get(key),
                _format(ext),
            )


def _dataset_folder(root: Path) -> Path:
    """`root` itself, or its single `fma_*` subfolder when pointed at the parent."""
    with os.scandir(root) as it:
        entries = [e for e in it if e.is_dir()]
    if any(_FOLDER.match(e.name) for e in entries):
        return root
    fma = [e for e in entries if e.name.startswith("fma_")]
    return Path(fma[0].path) if len(fma) == 1 else root
