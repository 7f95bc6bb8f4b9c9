"""Licence engine: licence ids, tag evidence, policy and verdicts (DESIGN §5)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


_NEVER = re.compile(r"fma[\s_-]*limited|common[\s_-]*law", re.IGNORECASE)


def _one_text(value: object) -> str | None:
    """Metadata as one string: IA sometimes repeats a field as a list."""
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value if v)
    text = str(value).strip() if value is not None else ""
    return text or None


def judge_declared(url: str | None, title: str | None, config: LicenceConfig) -> Declared:
    """The harvest's licence gate: is an item's declared licence one the policy allows?

    The URL decides when it names a licence; the title is read only when it does not.
    Reasons are short stable strings (they are counted).
    """
    from ccmirror.licence import policy as pol
    from ccmirror.licence.normalise import normalise_title, normalise_url

    url, title = _one_text(url), _one_text(title)
    if not (url or title):
        return Declared(None, None, False, pol.NO_LICENCE)
    if _NEVER.search(f"{url or ''} {title or ''}"):
        return Declared(None, url, False, pol.NEVER_ALLOWED)
    lic = normalise_url(url) or normalise_title(title)
    if lic is None:
        return Declared(None, url, False, pol.UNRECOGNISED)
    reason = pol.Policy.from_config(config).judge(lic.id)
    return Declared(lic.id, lic.url, reason is None, reason)


def inspect(
    paths: Sequence[str | os.PathLike[str]], config: LicenceConfig | None = None
) -> dict[str, Any]:
    """Evidence and verdict for any audio files, no catalogue (DESIGN §5 shape).

    One row per path, in order; a bad or missing file is a row with verdict unreadable.
    `failed` counts the paths that are not a readable file at all (the CLI exits 1).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ccmirror.licence.decode import WORKERS
    from ccmirror.licence.policy import Policy
    from ccmirror.licence.tags import read_tags_apart
    from ccmirror.licence.verdict import decide

    policy = Policy.from_config(config)
    rows = []
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="inspect") as pool:
        reports = list(pool.map(read_tags_apart, paths))  # in order
    for p, report in zip(paths, reports, strict=True):
        v = decide(report, policy)
        rows.append({"path": os.fspath(p), **v.to_dict()})
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    failed = sum(1 for p in paths if not (os.path.isfile(p) and os.access(p, os.R_OK)))
    return {"files": rows, "verdicts": counts, "failed": failed}
