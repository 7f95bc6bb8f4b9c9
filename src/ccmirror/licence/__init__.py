"""Licence engine: licence ids, tag evidence, policy and verdicts (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass

from ccmirror.manifest import LicenceConfig

VERDICTS = ("verified", "declared", "conflict", "rejected", "unreadable")


def publishable_verdicts(require_embedded: bool) -> tuple[str, ...]:
    """The verdicts whose files may ever be packed or published."""
    return ("verified",) if require_embedded else ("verified", "declared")


def publishable(verdict: str | None, require_embedded: bool) -> bool:
    return verdict in publishable_verdicts(require_embedded)


@dataclass(frozen=True)
class Declared:
    """What a source declares about an item's licence, judged against the policy."""

    licence_id: str | None  # DESIGN §5 id, None when unrecognised
    licence_url: str | None  # canonical URL when recognised, else as declared
    allowed: bool
    reason: str | None  # why not allowed; None when allowed


# Interim mapping for the harvest gate; the licence engine replaces the body of
# judge_declared (same signature), leaving no second mapping behind.
_INTERIM = {
    "publicdomain/zero/1.0": "CC0-1.0",
    "publicdomain/mark/1.0": "CC-PDM-1.0",
    "licenses/publicdomain": "CC-PDDC",
}


def judge_declared(url: str | None, title: str | None, config: LicenceConfig) -> Declared:
    """The harvest's licence gate: is an item's declared licence one the policy allows?"""
    import fnmatch
    import re

    if not (url or title):
        return Declared(None, None, False, "no licence declared")
    m = re.search(
        r"creativecommons\.org/((?:licenses|publicdomain)/[a-z+-]+(?:/[0-9.]+)?)", url or ""
    )
    if not m:
        return Declared(None, url, False, "not a Creative Commons licence")
    path = m.group(1)
    lid = _INTERIM.get(path)
    if lid is None:
        parts = path.split("/")
        if parts[0] != "licenses" or len(parts) < 3 or parts[1] in ("sampling", "devnations"):
            return Declared(None, url, False, f"licence not allowed: {path}")
        lid = f"CC-{parts[1].upper()}-{parts[2]}"
    allow = config.allow or ("CC0-1.0", "CC-PDM-1.0", "CC-PDDC", "CC-BY-*")
    ok = any(fnmatch.fnmatchcase(lid, g) for g in allow) and not any(
        fnmatch.fnmatchcase(lid, g) for g in config.deny
    )
    return Declared(lid, url, ok, None if ok else f"licence not allowed: {lid}")
