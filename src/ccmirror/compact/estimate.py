"""What a file of a compact tier weighs in the store: its copy once made, an estimate before.

`kept_bytes_sql` is one SQL expression over a `files` row aliased `f`, for the set-based
tier and plan queries. In a compact tier the store keeps:

- a copy row (`copy_of` set): its size (a derivative's size is IA's figure until fetched);
- an original whose copy took its place (`copied`, `derivative`): nothing;
- an original kept as it is (`kept`, `original`), or sealed in a pack before, or a cover
  image (never transcoded): its size;
- an original not decided yet: the smaller of IA's derivative when there is one, else an
  Opus copy's estimate: duration x bitrate (plus Ogg overhead), or, without a duration,
  the size scaled by the bitrate over its format's typical bitrate; never more than the
  original itself (a small lossy file is kept as it is).
"""

from __future__ import annotations

# Typical bitrates (bit/s) of originals, to estimate a playing time from a size when the
# source gives none: CD-quality FLAC compresses to ~60% of 1411 kbit/s PCM.
TYPICAL_BITRATE = {
    "flac": 900_000,
    "24bit flac": 2_000_000,
    "wave": 1_411_200,
    "aiff": 1_411_200,
    "vbr mp3": 190_000,
    "mp3": 256_000,
    "ogg vorbis": 160_000,
    "opus": 128_000,
}
DEFAULT_TYPICAL = 320_000
OGG_OVERHEAD = 1.02  # Ogg pages and Opus framing over the raw bitrate
HEADER_BYTES = 4096  # Opus and tag headers per file


def _typical_sql() -> str:
    cases = " ".join(f"WHEN '{fmt}' THEN {rate}" for fmt, rate in sorted(TYPICAL_BITRATE.items()))
    return f"(CASE lower(coalesce(f.format, '')) {cases} ELSE {DEFAULT_TYPICAL} END)"


def estimate_sql(bitrate: int) -> str:
    """Estimated bytes of an Opus copy of original `f` at `bitrate` (not above its size)."""
    # FMA gives a track's playing time on its item (one track per item).
    seconds = (
        "coalesce(f.duration, (SELECT json_extract(di.extra, '$.duration') FROM items di"
        " WHERE di.id = f.item_id AND di.source = 'fma'))"
    )
    by_time = f"({seconds} * {bitrate} / 8.0 * {OGG_OVERHEAD} + {HEADER_BYTES})"
    by_size = f"(coalesce(f.size, 0) * {bitrate} * 1.0 / {_typical_sql()} + {HEADER_BYTES})"
    guess = f"(CASE WHEN {seconds} > 0 THEN {by_time} ELSE {by_size} END)"
    return f"CAST(min(coalesce(f.size, 0), {guess}) AS INTEGER)"


def kept_bytes_sql(bitrate: int) -> str:
    """Bytes the store keeps for file `f` when its item is in a compact tier."""
    derivative = "(SELECT min(d.size) FROM derivatives d WHERE d.file_id = f.id)"
    sealed = (
        "EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        " WHERE pf.file_id = f.id AND p.status = 'sealed' AND p.obsolete = 0)"
    )
    return (
        "(CASE WHEN f.copy_of IS NOT NULL OR f.kind = 'artwork' THEN coalesce(f.size, 0)"
        " WHEN f.compact IN ('copied', 'derivative') THEN 0"
        " WHEN f.compact IN ('kept', 'original') THEN coalesce(f.size, 0)"
        f" WHEN {sealed} THEN coalesce(f.size, 0)"
        f" WHEN {derivative} < f.size THEN {derivative}"
        f" ELSE {estimate_sql(bitrate)} END)"
    )


def original_bytes_sql() -> str:
    """Bytes the store keeps for file `f` when its item is in a tier of originals: copies
    (only made for compact tiers) count nothing there."""
    # A size not known before fetch counts as its estimate (files.est_size).
    return "(CASE WHEN f.copy_of IS NOT NULL THEN 0 ELSE coalesce(f.size, f.est_size, 0) END)"
