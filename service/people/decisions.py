"""Which CRM statuses mean sales accepted or rejected a lead (the contract's default mapping)."""

from __future__ import annotations

from dataclasses import dataclass, field

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True)
class StatusMapping:
    """Configurable per source; statuses not listed are undecided."""

    accepted: dict[str, frozenset[str]] = field(default_factory=lambda: {
        "salesforce": frozenset({"Working - Contacted", "Closed - Converted"}),
        "hubspot": frozenset({"IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "CONNECTED", "OPEN_DEAL"}),
    })
    rejected: dict[str, frozenset[str]] = field(default_factory=lambda: {
        "salesforce": frozenset({"Closed - Not Converted"}),
        "hubspot": frozenset({"UNQUALIFIED", "BAD_TIMING"}),
    })

    def decision(self, source: str, status: str | None) -> str | None:
        if status is None:
            return None
        if status in self.accepted.get(source, frozenset()):
            return ACCEPTED
        if status in self.rejected.get(source, frozenset()):
            return REJECTED
        return None


DEFAULT_MAPPING = StatusMapping()


def mapping_from(overrides: dict[str, dict[str, list[str]]] | None) -> StatusMapping:
    """The default mapping with per-source overrides: ``{"hubspot": {"accepted": [...]}}``."""
    if not overrides:
        return DEFAULT_MAPPING
    accepted, rejected = dict(DEFAULT_MAPPING.accepted), dict(DEFAULT_MAPPING.rejected)
    for source, lists in overrides.items():
        if "accepted" in lists:
            accepted[source] = frozenset(lists["accepted"])
        if "rejected" in lists:
            rejected[source] = frozenset(lists["rejected"])
    return StatusMapping(accepted=accepted, rejected=rejected)
