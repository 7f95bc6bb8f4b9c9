"""Which licence ids a mirror may publish: the manifest's [licence] table (DESIGN §5)."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass

from ccmirror.licence.normalise import by_id
from ccmirror.manifest import LicenceConfig

# Every CC licence and port that permits verbatim non-commercial sharing, CC0, PDM, PDDC.
# Globs match an id and, for LicenseRef- ids, the id without that prefix (so "CC-BY-*"
# also covers ports SPDX has no id for, such as LicenseRef-CC-BY-1.0-FI).
DEFAULT_ALLOW: tuple[str, ...] = (
    "CC-BY-*",  # BY, BY-SA, BY-NC, BY-ND, BY-NC-SA, BY-NC-ND (and 1.0's BY-ND-NC)
    "CC-SA-*",  # 1.0 ShareAlike
    "CC-NC-*",  # 1.0 NonCommercial, NC-SA, NC-Sampling+
    "CC-ND-*",  # 1.0 NoDerivs, ND-NC
    "CC-SAMPLING-PLUS-*",
    "CC0-1.0",
    "CC-PDM-1.0",
    "CC-PDDC",
)
# Never allowed, whatever the manifest says: they forbid verbatim copies or are not CC.
ALWAYS_DENIED_UNITS = frozenset({"sampling", "devnations"})

# Reasons (short and stable: they are counted).
NO_LICENCE = "no licence declared"
UNRECOGNISED = "not a recognised CC licence"
NEVER_ALLOWED = "licence never allowed"
DENIED = "licence denied by policy"
NOT_ALLOWED = "licence not in allow list"


def _names(licence_id: str) -> tuple[str, ...]:
    if licence_id.startswith("LicenseRef-"):
        return (licence_id, licence_id.removeprefix("LicenseRef-"))
    return (licence_id,)


@dataclass(frozen=True)
class Policy:
    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = ()
    require_embedded: bool = False

    @classmethod
    def from_config(cls, config: LicenceConfig | None) -> Policy:
        if config is None:
            return cls()
        return cls(config.allow or DEFAULT_ALLOW, tuple(config.deny), config.require_embedded)

    def judge(self, licence_id: str | None) -> str | None:
        """None when the id may be published, else the reason it may not."""
        if not licence_id:
            return UNRECOGNISED
        lic = by_id(licence_id)
        if lic is None:
            return UNRECOGNISED
        if lic.unit in ALWAYS_DENIED_UNITS:
            return NEVER_ALLOWED
        names = _names(licence_id)
        if any(fnmatch.fnmatchcase(n, g) for n in names for g in self.deny):
            return DENIED
        if not any(fnmatch.fnmatchcase(n, g) for n in names for g in self.allow):
            return NOT_ALLOWED
        return None

    def allows(self, licence_id: str | None) -> bool:
        return self.judge(licence_id) is None

    def fingerprint(self) -> str:
        """Changes when the policy does, so `check` re-judges files."""
        text = "\n".join(["allow", *self.allow, "deny", *self.deny])
        return hashlib.sha1(text.encode()).hexdigest()[:12]


# Format shifting (compact tiers). Every CC licence, in every version and port, ND included,
# lets the licensee make the technical modifications needed to use the work in other
# formats (4.0 §2(a)(4); 3.0 §3, 2.x §3, 1.0 §3 likewise) and CC0, PDM and PDDC reserve
# nothing. A licence outside that list (none of today's allowed ones) keeps the original.
FORMAT_SHIFT_CATEGORIES = frozenset({"licenses", "publicdomain"})
NO_FORMAT_SHIFT = "its licence does not permit format shifting: the original is kept"


def permits_format_shift(licence_id: str | None) -> bool:
    """Whether a file under this licence may be published as a format-shifted copy."""
    lic = by_id(licence_id) if licence_id else None
    return (
        lic is not None
        and lic.category in FORMAT_SHIFT_CATEGORIES
        and lic.unit not in ALWAYS_DENIED_UNITS
    )
