"""Associations: type ids, both directions of every link, and the v3/v4 answer shapes.

The portal may store a link in one direction only (contact→company, say); HubSpot answers
both, so the reverse direction is derived through an index rebuilt only when the stored
links change (the portal counts their changes).
"""

from __future__ import annotations

import threading
from typing import Any

from connectors.sandbox.hubspot_wire import SINGULAR, WireError
from connectors.sandbox.world import HubSpotPortal

# (from_type, to_type) -> HUBSPOT_DEFINED default type id
TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("deals", "companies"): 5, ("companies", "deals"): 6,
    ("calls", "contacts"): 194, ("contacts", "calls"): 193,
    ("emails", "contacts"): 198, ("contacts", "emails"): 197,
    ("meetings", "contacts"): 200, ("contacts", "meetings"): 199,
    ("notes", "contacts"): 202, ("contacts", "notes"): 201,
    ("tasks", "contacts"): 204, ("contacts", "tasks"): 203,
    ("calls", "companies"): 182, ("companies", "calls"): 181,
    ("emails", "companies"): 186, ("companies", "emails"): 185,
    ("meetings", "companies"): 188, ("companies", "meetings"): 187,
    ("notes", "companies"): 190, ("companies", "notes"): 189,
    ("tasks", "companies"): 192, ("companies", "tasks"): 191,
    ("calls", "deals"): 206, ("deals", "calls"): 205,
    ("emails", "deals"): 210, ("deals", "emails"): 209,
    ("meetings", "deals"): 212, ("deals", "meetings"): 211,
    ("notes", "deals"): 214, ("deals", "notes"): 213,
    ("tasks", "deals"): 216, ("deals", "tasks"): 215,
}
# the primary company link carries a label of its own
PRIMARY: dict[tuple[str, str], int] = {("contacts", "companies"): 1,
                                       ("companies", "contacts"): 2}
_INVERSE: dict[int, int] = {v: TYPE_IDS[(b, a)] for (a, b), v in TYPE_IDS.items()}
_INVERSE.update({1: 2, 2: 1})
BY_ID: dict[int, tuple[str, str]] = {v: k for k, v in TYPE_IDS.items()}
BY_ID.update({v: k for k, v in PRIMARY.items()})


def type_name(from_type: str, to_type: str) -> str:
    return f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"


def inverse_type_id(type_id: int) -> int:
    return _INVERSE.get(type_id, type_id)


def spec(type_id: int) -> dict[str, Any]:
    label = "Primary" if type_id in (1, 2) else None
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}


class AssociationIndex:
    """Links from one object in both stored directions, in insertion order, deduplicated."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self._reverse: dict[tuple[str, str], tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _reverse_map(self, from_type: str, to_type: str) -> dict[str, list[tuple[str, int]]]:
        """to_id -> [(from_id, type_id)] built from the stored (to_type, from_type) links."""
        stored = self.portal.associations.get((to_type, from_type), {})
        # not a sum over the stored links: asked for every object of a page, that made
        # listing quadratic (at 1M people, 94% of the sandbox's time)
        stamp = (id(stored), self.portal.links_version)
        with self._lock:
            cached = self._reverse.get((from_type, to_type))
            if cached is not None and cached[0] == stamp:
                return cached[1]
            built: dict[str, list[tuple[str, int]]] = {}
            for other_id, links in stored.items():
                for target_id, type_id in links:
                    built.setdefault(target_id, []).append((other_id, inverse_type_id(type_id)))
            self._reverse[(from_type, to_type)] = (stamp, built)
            return built

    def links(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, list[int]]]:
        """[(to_id, [type ids])] for one object, each target once."""
        merged: dict[str, list[int]] = {}
        direct = self.portal.associations.get((from_type, to_type), {}).get(from_id, [])
        for to_id, type_id in [*direct, *self._reverse_map(from_type, to_type).get(from_id, [])]:
            to_id = self.portal.merged_into.get(to_id, to_id)
            ids = merged.setdefault(to_id, [])
            if type_id not in ids:
                ids.append(type_id)
        table = self.portal.table(to_type)
        return [(t, ids) for t, ids in merged.items() if table.gone(t) is False]

    def v3(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, str]]:
        """The ``associations`` block of a v3 object."""
        name = type_name(from_type, to_type)
        return [{"id": to_id, "type": name} for to_id, _ in self.links(from_type, from_id,
                                                                       to_type)]

    def v4(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, Any]]:
        return [{"toObjectId": int(to_id) if to_id.isdigit() else to_id,
                 "associationTypes": [spec(t) for t in ids]}
                for to_id, ids in self.links(from_type, from_id, to_type)]


def labels(from_type: str, to_type: str) -> list[dict[str, Any]]:
    """``/crm/v4/associations/{from}/{to}/labels``."""
    out = []
    if (from_type, to_type) in PRIMARY:
        out.append(spec(PRIMARY[(from_type, to_type)]))
    if (from_type, to_type) in TYPE_IDS:
        out.append(spec(TYPE_IDS[(from_type, to_type)]))
    return out


def plan_links(portal: HubSpotPortal, from_type: str, associations: list[dict[str, Any]]
               ) -> list[tuple[str, str, int]]:
    """Check the v3 create shape ``[{"to": {"id"}, "types": [{"associationTypeId"}]}]``.

    Answers (to_type, to_id, type_id) per link, or fails before anything is written.
    """
    planned: list[tuple[str, str, int]] = []
    for item in associations or []:
        to_id = str(((item or {}).get("to") or {}).get("id") or "")
        for t in (item or {}).get("types") or []:
            try:
                type_id = int(t.get("associationTypeId"))
            except (TypeError, ValueError):
                raise WireError(400, f"Invalid associationTypeId {t!r}",
                                "VALIDATION_ERROR") from None
            pair = BY_ID.get(type_id)
            if pair is None or pair[0] != from_type:
                raise WireError(400, f"{type_id} is not a valid association type id for "
                                f"{SINGULAR[from_type]} associations", "VALIDATION_ERROR")
            to_id = portal.merged_into.get(to_id, to_id)
            if to_id not in portal.objects.get(pair[1], {}):
                raise WireError(400, f"No {SINGULAR[pair[1]]} with id {to_id} exists to "
                                "associate with", "VALIDATION_ERROR")
            planned.append((pair[1], to_id, type_id))
    return planned
