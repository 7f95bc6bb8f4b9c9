"""What a fetch run did (a typed stage result; `to_dict()` is its --json document)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ccmirror.results import StageResult

__all__ = ["MAX_LISTED_FAILURES", "FetchResult"]

MAX_LISTED_FAILURES = 50


@dataclass
class FetchResult(StageResult):
    """What a fetch run did; `failed > 0` means exit 1."""

    considered: int = 0
    fetched: int = 0
    adopted: int = 0
    bytes: int = 0
    failed: int = 0
    refused: int = 0
    deferred: int = 0
    skipped_budget: int = 0
    skipped_unreachable: int = 0
    store_bytes: int = 0
    max_bytes: int | None = None
    outside_budget: int | None = None  # with a [mirror] budget: files its selection leaves out
    budget: dict[str, Any] | None = None  # with a [mirror] budget: budget_report
    artwork: dict[str, Any] | None = None  # cover images: catalogue.artwork.artwork_summary

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "considered",
                "fetched",
                "adopted",
                "bytes",
                "failed",
                "refused",
                "deferred",
                "skipped_budget",
                "skipped_unreachable",
                "store_bytes",
                "max_bytes",
            )
        }
        if self.budget is not None:
            out["outside_budget"] = self.outside_budget
            out["budget"] = self.budget
        if self.artwork is not None:
            out["artwork"] = self.artwork
        out["failures"] = self.failures[:MAX_LISTED_FAILURES]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out
