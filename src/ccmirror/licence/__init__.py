"""Licence engine: licence ids, tag evidence, policy and verdicts (DESIGN §5)."""

from __future__ import annotations

VERDICTS = ("verified", "declared", "conflict", "rejected", "unreadable")


def publishable_verdicts(require_embedded: bool) -> tuple[str, ...]:
    """The verdicts whose files may ever be packed or published."""
    return ("verified",) if require_embedded else ("verified", "declared")


def publishable(verdict: str | None, require_embedded: bool) -> bool:
    return verdict in publishable_verdicts(require_embedded)
