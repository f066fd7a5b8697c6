"""Incremental reads through CRM search, sliced by time so no slice pages past 10,000 results.

HubSpot's search refuses ``after`` beyond 10,000, so before a slice would cross it the next
slice starts again at the last timestamp seen (``GTE``): rows sharing that timestamp are read
twice and dropped by id. If a whole slice shares one timestamp, time cannot move the window,
so the rows at that instant are walked by ``hs_object_id`` instead, and then the window
continues strictly after it (a page mostly at one instant, as after a bulk update, starts that
walk at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import Row, modified_property, parse_datetime, to_ms


@dataclass(frozen=True)
class SearchPage:
    """Rows not yet seen in this read, and the position of the page's last row."""

    rows: list[Row]
    last_ms: int
    last_id: str


@dataclass
class _Window:
    lower: int
    operator: str = "GTE"  # GTE, GT, or EQ while walking one instant by id
    id_floor: str | None = None  # walking one instant: ids above this one
    after: int = 0

    def filters(self, prop: str) -> list[dict[str, Any]]:
        filters = [{"propertyName": prop, "operator": self.operator, "value": str(self.lower)}]
        if self.id_floor is not None:
            filters.append(
                {"propertyName": "hs_object_id", "operator": "GT", "value": self.id_floor}
            )
        return filters

    def sort(self, prop: str) -> str:
        return "hs_object_id" if self.operator == "EQ" else prop


def row_ms(row: Row, prop: str) -> int:
    props = row.get("properties") or {}
    try:
        stamp = parse_datetime(props.get(prop) or row.get("updatedAt"))
    except ValueError:
        stamp = None
    return to_ms(stamp) if stamp else 0


def sliced_search(
    client: HubSpotClient, object_type: str, properties: list[str], start_ms: int, *,
    page_size: int,
) -> Iterator[SearchPage]:
    """Every row modified at or after ``start_ms``, oldest first, in pages of ``page_size``.

    Each page is a new search from the last timestamp seen (a whole page at one instant is
    walked by id), so no search ever pages towards HubSpot's 10,000-result cap.
    """
    prop = modified_property(object_type)
    seen: dict[str, int] = {}  # id -> modified ms already yielded; a newer change is re-read
    window = _Window(lower=start_ms)
    # totals HubSpot reported: rows at or after the instant a walk is on (from the search
    # that found the instant), and rows at the instant (the walk's first search)
    from_instant: int | None = None
    at_instant: int | None = None
    while True:
        body = {
            "filterGroups": [{"filters": window.filters(prop)}],
            "sorts": [{"propertyName": window.sort(prop), "direction": "ASCENDING"}],
            "properties": properties,
            "limit": page_size,
            "after": str(window.after),
        }
        answer = client.call(
            client.objects_search.do_search, object_type, body, what=object_type, search=True
        )
        results: list[Row] = answer.get("results") or []
        total = answer.get("total")
        if window.operator == "EQ" and window.id_floor == "0":
            at_instant = total
        elif window.operator != "EQ":
            from_instant = total
        fresh = []
        for row in results:
            row_id, stamp = str(row.get("id")), row_ms(row, prop)
            if seen.get(row_id) != stamp:
                seen[row_id] = stamp
                fresh.append(row)
        if results:
            last = results[-1]
            yield SearchPage(fresh, row_ms(last, prop), str(last.get("id")))
        following = ((answer.get("paging") or {}).get("next") or {}).get("after")
        if following is None or not results:
            if window.operator != "EQ":
                return
            if from_instant is not None and at_instant is not None \
                    and from_instant <= at_instant:
                # nothing lay after the instant: a search for it would spend a call of the
                # search quota on an empty answer (a row changed since lies after the
                # instant the cursor keeps, so the next read finds it)
                return
            # the instant is walked: carry on strictly after it
            window = _Window(lower=window.lower, operator="GT")
            continue
        # Restart from the last row seen instead of paging by offset: a row modified
        # mid-read jumps to the end of the order and an offset would skip the row after it.
        last = results[-1]
        last_ms = row_ms(last, prop)
        if window.operator == "EQ":
            window = _Window(window.lower, "EQ", id_floor=str(last.get("id")))
            continue
        at_last = _trailing_at(results, prop, last_ms)
        if last_ms > window.lower and 2 * at_last < len(results):
            window = _Window(lower=last_ms)
        else:
            # a page at one instant, or mostly (a bulk update behind a few older rows): a
            # search from the instant would likely answer a page at it again, so walk that
            # instant by id, from its first row. Guessing wrong costs one search either
            # way; a page mostly at one instant is what a bulk update looks like.
            if from_instant is not None:
                # the page held every row of the window before the instant
                from_instant -= len(results) - at_last
            window = _Window(max(last_ms, window.lower), "EQ", id_floor="0")


def _trailing_at(results: list[Row], prop: str, last_ms: int) -> int:
    """How many rows end the page at its last instant."""
    count = 0
    for row in reversed(results):
        if row_ms(row, prop) != last_ms:
            break
        count += 1
    return count
