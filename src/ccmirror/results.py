"""Typed stage results: counts, failures, warnings and the exit code, JSON-ready.

Every stage returns a `StageResult`; `to_dict()` is its `--json` document (keys only
grow). The exit code comes from the type (`failed`), never from reading key names.
Mapping access (`result["fetched"]`) reads `to_dict()`, for callers written against
the plain dicts these results replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccmirror.errors import EXIT_FAILED, EXIT_OK

__all__ = ["StageResult"]


@dataclass
class StageResult:
    """Base of every stage's result; subclasses add their counts as fields."""

    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed_count(self) -> int:
        """How much work failed (the run exits 1 when > 0); subclasses say what counts."""
        return int(getattr(self, "failed", 0) or 0)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed_count else EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    # Read-only mapping access over to_dict(), for callers of the former dicts.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self) -> Any:
        return self.to_dict().keys()
