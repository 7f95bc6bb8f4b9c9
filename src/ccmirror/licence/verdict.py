"""One verdict per file from the source's declared licence and the file's own tags (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccmirror.licence.normalise import Licence, by_id
from ccmirror.licence.policy import Policy
from ccmirror.licence.tags import TagReport

# Reasons: short and stable (they are counted).
R_UNREADABLE = "file cannot be read"
R_RESERVED = "tags say all rights reserved"
R_OTHER = "tags state another licence"
R_TWO = "tags state two licences"
R_AGREE = "source and tags agree"
R_AGREE_PORT = "source and tags agree (other port)"
R_SILENT = "tags silent; source declares it"
R_TAGS_ONLY = "tags state an allowed licence"
R_NO_TAGS = "no licence in tags"


@dataclass
class Verdict:
    verdict: str
    reason: str
    licence_id: str | None = None
    licence_url: str | None = None
    rights_reserved: bool = False
    evidence: list[dict[str, str]] = field(default_factory=list)
    isrc: str | None = None
    mbid: str | None = None
    error: str | None = None
    # The file's own recording facts (tags and stream) and embedded picture count.
    recording: dict[str, Any] = field(default_factory=dict)
    pictures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "licence_id": self.licence_id,
            "licence_url": self.licence_url,
            "rights_reserved": self.rights_reserved,
            "verdict": self.verdict,
            "reason": self.reason,
            "evidence": self.evidence,
            "isrc": self.isrc,
            "mbid": self.mbid,
            "error": self.error,
            "embedded_pictures": self.pictures,
        }


def _tag_licences(tags: TagReport) -> list[Licence]:
    """Distinct licences the tags state, one per family (a port's spelling is one licence)."""
    seen: dict[tuple[str, str], Licence] = {}
    for _, lic in tags.licences:
        seen.setdefault(lic.family, lic)
    return list(seen.values())


def decide(
    tags: TagReport,
    policy: Policy,
    *,
    declared_id: str | None = None,
    declared_reason: str | None = None,
    source: bool = False,
    source_evidence: list[dict[str, str]] | None = None,
) -> Verdict:
    """The verdict for one file.

    With `source` (the catalogue's `check`): `declared_id` is the source's licence and
    `declared_reason` why the policy refuses it (None when allowed). Without (`licence
    inspect`): the tags alone decide.
    """
    v = Verdict(
        "unreadable",
        R_UNREADABLE,
        evidence=list(source_evidence or []) + tags.evidence,
        rights_reserved=tags.rights_reserved,
        isrc=tags.isrc,
        mbid=tags.mbid,
        error=tags.error,
        recording=dict(tags.recording),
        pictures=tags.pictures,
    )
    declared = by_id(declared_id) if source else None
    if declared is not None:
        v.licence_id, v.licence_url = declared.id, declared.url
    if tags.error:
        return v
    stated = _tag_licences(tags)
    if source:
        if declared_reason is not None or declared is None:
            v.verdict, v.reason = "rejected", declared_reason or "not a recognised CC licence"
        elif tags.rights_reserved:
            v.verdict, v.reason = "conflict", R_RESERVED
        elif any(lic.family != declared.family for lic in stated):
            v.verdict, v.reason = "conflict", R_OTHER
        elif stated:
            exact = any(lic.id == declared.id for lic in stated)
            v.verdict, v.reason = "verified", R_AGREE if exact else R_AGREE_PORT
        else:
            v.verdict, v.reason = "declared", R_SILENT
        return v
    # No source: the tags alone.
    if len(stated) > 1:
        v.verdict, v.reason = "conflict", R_TWO
        return v
    if stated and tags.rights_reserved:
        v.licence_id, v.licence_url = stated[0].id, stated[0].url
        v.verdict, v.reason = "conflict", R_RESERVED
        return v
    if not stated:
        v.verdict, v.reason = "rejected", R_RESERVED if tags.rights_reserved else R_NO_TAGS
        return v
    lic = stated[0]
    v.licence_id, v.licence_url = lic.id, lic.url
    refused = policy.judge(lic.id)
    v.verdict, v.reason = ("rejected", refused) if refused else ("verified", R_TAGS_ONLY)
    return v
