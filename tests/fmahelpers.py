"""Fixtures in the FMA dataset's real layout, for tests, the demo and benchmarks.

- `write_metadata_zip`: `fma_metadata.zip` with `fma_metadata/raw_tracks.csv` (bzip2,
  the dataset's 39 columns), `fma_metadata/README.txt` and `fma_metadata/checksums`.
- `write_audio_tree`: `fma_full/000/000002.mp3` ... (real MP3s) + `fma_full/checksums`.
- `write_audio_zip`: the same tree as `fma_full.zip`.
- `FileServer`: a plain loopback HTTP server for a folder (FMA's file host), with
  injectable faults.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ccmirror.sample.audio import write_audio

# raw_tracks.csv's header, in the dataset's order.
COLUMNS = (  # noqa: SIM905 (kept as the CSV header reads)
    "track_id,album_id,album_title,album_url,artist_id,artist_name,artist_url,artist_website,"
    "license_image_file,license_image_file_large,license_parent_id,license_title,license_url,"
    "tags,track_bit_rate,track_comments,track_composer,track_copyright_c,track_copyright_p,"
    "track_date_created,track_date_recorded,track_disc_number,track_duration,track_explicit,"
    "track_explicit_notes,track_favorites,track_file,track_genres,track_image_file,"
    "track_information,track_instrumental,track_interest,track_language_code,track_listens,"
    "track_lyricist,track_number,track_publisher,track_title,track_url"
).split(",")

# (license_title, license_url) as the dataset writes them.
BY_NC_SA_3 = (
    "Attribution-NonCommercial-ShareAlike 3.0 International",
    "http://creativecommons.org/licenses/by-nc-sa/3.0/",
)
BY_4 = ("Attribution", "http://creativecommons.org/licenses/by/4.0/")
BY_NC_ND_3_US = (
    "Attribution-NonCommercial-NoDerivatives (aka Music Sharing) 3.0 International",
    "http://creativecommons.org/licenses/by-nc-nd/3.0/us/",
)
CC0 = ("CC0 1.0 Universal", "http://creativecommons.org/publicdomain/zero/1.0/")
FMA_LIMITED = ("FMA-Limited: Download Only", "")
COMMON_LAW = ("Sound Recording Common Law", "")
SAMPLING_1 = ("Sampling 1.0", "http://creativecommons.org/licenses/sampling/1.0/")


def track_row(track_id: int, **fields: Any) -> dict[str, str]:
    """A raw_tracks.csv row with realistic values; keyword arguments override columns."""
    licence = fields.pop("licence", BY_NC_SA_3)
    artist = fields.pop("artist", f"Artist {track_id % 7}")
    row = {c: "" for c in COLUMNS}
    row.update(
        track_id=str(track_id),
        album_id=str(1000 + track_id % 5),
        album_title=f"Album {track_id % 5}",
        album_url=f"http://freemusicarchive.org/music/{artist.replace(' ', '_')}/Album_{track_id % 5}/",
        artist_id=str(200 + track_id % 7),
        artist_name=artist,
        artist_url=f"http://freemusicarchive.org/music/{artist.replace(' ', '_')}/",
        license_title=licence[0],
        license_url=licence[1],
        track_bit_rate="256000",
        track_copyright_c="",
        track_copyright_p="",
        track_date_created="11/26/2008 01:48:12 AM",
        track_date_recorded="11/26/2008",
        track_duration="02:48",
        track_favorites=str(track_id % 3),
        track_file=f"music/{artist.replace(' ', '_')}/Album_{track_id % 5}/Track_{track_id}.mp3",
        track_genres="[{'genre_id': '21', 'genre_title': 'Hip-Hop'}]",
        track_interest=str(track_id * 10),
        track_language_code="en",
        track_listens=str(track_id * 100),
        track_number=str(track_id % 12 + 1),
        track_title=f"Track {track_id}",
        track_url=f"http://freemusicarchive.org/music/{artist.replace(' ', '_')}/Album_{track_id % 5}/Track_{track_id}",
    )
    for key, value in fields.items():
        if key not in row:
            raise KeyError(f"not a raw_tracks column: {key}")
        row[key] = str(value)
    return row


def csv_text(rows: Iterable[Mapping[str, str] | Sequence[str] | str]) -> str:
    """raw_tracks.csv text: header, then dict rows, list rows (any width) or raw lines."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for row in rows:
        if isinstance(row, str):
            out.write(row + "\r\n")
        elif isinstance(row, Mapping):
            w.writerow([row.get(c, "") for c in COLUMNS])
        else:
            w.writerow(row)
    return out.getvalue()


def write_raw_tracks_csv(path: Path, rows: Iterable[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(rows), encoding="utf-8", newline="")
    return path


# raw_albums.csv's columns this project reads, in the dataset's order (others elided).
ALBUM_COLUMNS = (
    "album_id",
    "album_date_released",
    "album_engineer",
    "album_producer",
    "album_title",
)


def albums_csv(rows: Iterable[Mapping[str, str]]) -> str:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(ALBUM_COLUMNS)
    for row in rows:
        w.writerow([row.get(c, "") for c in ALBUM_COLUMNS])
    return out.getvalue()


def write_metadata_zip(
    path: Path,
    rows: Iterable[Any],
    *,
    text: str | None = None,
    albums: Iterable[Mapping[str, str]] | None = None,
) -> Path:
    """fma_metadata.zip as distributed: bzip2 members under fma_metadata/, with checksums
    (and raw_albums.csv when `albums` rows are given)."""
    body = (text if text is not None else csv_text(rows)).encode("utf-8")
    members = {
        "fma_metadata/README.txt": b"FMA: A Dataset For Music Analysis (fixture)\n",
        "fma_metadata/raw_tracks.csv": body,
        "fma_metadata/genres.csv": b"genre_id,#tracks,parent,title,top_level\n21,1,0,Hip-Hop,21\n",
    }
    if albums is not None:
        members["fma_metadata/raw_albums.csv"] = albums_csv(albums).encode("utf-8")
    sums = "".join(
        f"{hashlib.sha1(data).hexdigest()}  {name.split('/', 1)[1]}\n"
        for name, data in members.items()
    )
    members["fma_metadata/checksums"] = sums.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_audio_tree(
    root: Path,
    track_ids: Iterable[int],
    *,
    seconds: float = 0.2,
    checksums: bool = True,
    wrong_sums: Iterable[int] = (),
) -> dict[int, Path]:
    """Real MP3s at root/<id//1000:03d>/<id:06d>.mp3, plus root/checksums (sha1sum).

    `wrong_sums`: track ids whose checksums line is deliberately wrong.
    """
    wrong = set(wrong_sums)
    paths: dict[int, Path] = {}
    lines = []
    for tid in track_ids:
        rel = f"{tid // 1000:03d}/{tid:06d}.mp3"
        p = write_audio(
            root / rel, "mp3", seconds=seconds, seed=tid, tags={"title": f"Track {tid}"}
        )
        paths[tid] = p
        sha1 = hashlib.sha1(p.read_bytes()).hexdigest()
        if tid in wrong:
            sha1 = hashlib.sha1(sha1.encode()).hexdigest()
        lines.append(f"{sha1}  {rel}\n")
    (root / "README.txt").write_text("fma_full fixture\n")
    if checksums:
        (root / "checksums").write_text("".join(lines))
    return paths


def write_checksums(root: Path) -> Path:
    """Rewrite root/checksums (sha1sum format) for every track file under root."""
    lines = [
        f"{hashlib.sha1(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}\n"
        for p in sorted(root.glob("[0-9][0-9][0-9]/*"))
    ]
    path = root / "checksums"
    path.write_text("".join(lines))
    return path


def write_audio_zip(path: Path, tree: Path, prefix: str = "fma_full") -> Path:
    """The tree as the dataset ships it: fma_full.zip with fma_full/... members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                zf.write(p, f"{prefix}/{p.relative_to(tree).as_posix()}")
    return path


class FileServer:
    """A loopback HTTP server for a folder (FMA's file host), as a context manager.

    `requests` records request paths; `fail` maps a URL path to an HTTP status
    to answer instead; `corrupt` lists URL paths whose bodies are altered (same length).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.fail: dict[str, int] = {}
        self.corrupt: set[str] = set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, directory=str(server.root), **kw)

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                path = self.path.split("?", 1)[0]
                if path in server.fail:
                    self.send_error(server.fail[path])
                    return
                if path in server.corrupt:
                    f = self.send_head()
                    if f:
                        with f:
                            data = bytearray(f.read())
                        data[len(data) // 2] ^= 0xFF
                        self.wfile.write(bytes(data))
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


# A first harvest through the planning child at any size, in batches of 500: a run to kill.
KILLED_RUN = """
import sys
import ccmirror.sources.fma as fma
from ccmirror.sources.fma import first
first.CHILD_BYTES, fma.BATCH = 0, 500
from ccmirror.cli import main
sys.argv[0] = "ccmirror"
main()
"""


def start_first_harvest(manifest: Path) -> subprocess.Popen:
    """`ccmirror harvest MANIFEST` as a real process (KILLED_RUN), for a test to kill."""
    return subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, "harvest", str(manifest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
