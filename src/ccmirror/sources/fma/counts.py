"""A harvest's counts (`sources.registry.HARVEST_COUNTS`) of FMA tracks, by status."""

from __future__ import annotations

from typing import Any

from ccmirror.sources.fma.plan import Planned


def count_status(
    result: dict[str, Any], status: str, reason: str | None, count: int, size: int
) -> None:
    """Counts of `count` tracks of one status; `size`: their files' bytes."""
    result["found"] += count
    if status == "empty":
        result["empty"] += count
    elif status == "refused":
        reason = reason or "refused"
        result["refused"][reason] = result["refused"].get(reason, 0) + count
        result["refused_items"] += count
    elif status == "ok":
        result["bytes"] += size


def count_planned(p: Planned, result: dict[str, Any]) -> None:
    status = p.item["status"]
    size = (p.audio.size or 0) if p.audio is not None else 0
    count_status(result, status, p.item["reason"], 1, size)
