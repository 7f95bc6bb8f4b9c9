"""A file parsed by mutagen with one open, and without mutagen.File's scoring where its
answer is certain.

`mutagen.File(path)` imports its 24 format modules on every call, reads 128 bytes, and asks
each format class to score them with the name: about 40% of a small file's parse
(bench/licence.py). Where the header's magic and the name's extension make mutagen's choice
certain, `parse` hands that class the open file, as mutagen.File itself would; every other
file goes through mutagen.File as before. Either way the result, object or exception, is the
one `mutagen.File(path)` gives (tests/test_licence_tags.py checks `pick` against mutagen's
own choice).

Why each choice is certain (mutagen 1.48's scores; ties go to the greater class name):
MP3 with ".mp3" and an ID3 or frame-sync start scores 3, FLAC with ".flac" and "fLaC" 4,
WAVE with ".wav"/".wave", "RIFF" and "WAVE" 3, AIFF with ".aif(f|c)" and "FORM" 3; no
other class can score more than 2 on those starts and names (MP4 at most 2: "ftyp" and
"mp4" anywhere in the header). An Ogg stream named ".ogg"/".oga"/".opus" whose header names
exactly one of Vorbis and Opus and none of the other Ogg codecs, "ftyp", "mp4" or WAVE at
bytes 8-12 scores 1, where only APEv2File and AAC can also reach 1, and both lose the tie.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, BinaryIO

_MP3_START = (b"ID3", b"\xff\xf2", b"\xff\xf3", b"\xff\xfa", b"\xff\xfb")
_OGG_OTHERS = (b"\x80theora", b"\x81theora", b"Speex   ", b"FLAC", b"fLaC", b"ftyp", b"mp4")


@functools.cache
def classes() -> SimpleNamespace:
    """mutagen's classes that the licence reader names, imported once per process."""
    import mutagen
    from mutagen._vorbis import VCommentDict
    from mutagen.aiff import AIFF
    from mutagen.apev2 import APENoHeaderError, APEv2
    from mutagen.asf import ASFTags
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4Tags
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    named = (VCommentDict, APENoHeaderError, APEv2, ASFTags, ID3, MP4Tags, MP3, FLAC, WAVE, AIFF)
    named += (OggVorbis, OggOpus)
    return SimpleNamespace(File=mutagen.File, **{c.__name__: c for c in named})


def pick(name: str, head: bytes) -> type | None:
    """The class mutagen.File would choose for a file called `name` that starts with `head`
    (its first 128 bytes), where that choice is certain; None where mutagen must score."""
    low = name.lower()
    m = classes()
    if low.endswith(".mp3"):
        return m.MP3 if head.startswith(_MP3_START) else None
    if low.endswith(".flac"):
        return m.FLAC if head.startswith(b"fLaC") else None
    if low.endswith((".wav", ".wave")):
        return m.WAVE if head.startswith(b"RIFF") and head[8:12] == b"WAVE" else None
    if low.endswith((".aif", ".aiff", ".aifc")):
        return m.AIFF if head.startswith(b"FORM") else None
    if not (low.endswith((".ogg", ".oga", ".opus")) and head.startswith(b"OggS")):
        return None
    if head[8:12] == b"WAVE" or any(marker in head for marker in _OGG_OTHERS):
        return None
    vorbis, opus = b"\x01vorbis" in head, b"OpusHead" in head
    if vorbis == opus:
        return None
    return m.OggVorbis if vorbis else m.OggOpus


def parse(fh: BinaryIO, path: str) -> Any:
    """`mutagen.File(path)` (the same object, or the same exception), where `fh` is `path`
    open for reading at offset 0: one open of the file, no scoring where `pick` is sure."""
    m = classes()
    try:
        head = fh.read(128)
        fh.seek(0)
    except OSError:
        return m.File(path)
    kind = pick(path, head) if isinstance(path, str) else None
    if kind is None:
        return m.File(path)
    return kind(fh, filename=path)  # what mutagen.File does with the class it chose
