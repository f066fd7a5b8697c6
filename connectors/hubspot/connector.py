"""The HubSpot connector: streams of typed records from one portal, and the task write-back.

Streams run in dependency order (owners and companies before the contacts and deals that
point at them). A first (or full) read lists every object through the list endpoint, which
pages by id with no search quota and no 10,000-result cap, and takes contacts' history and
companies in the same call; later reads are incremental through search on the
last-modified property. Deletions come from a separate pass over archived rows, and merges
from the survivor's ``hs_merged_object_ids``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, Cursor, Page
from connectors.hubspot import mapping
from connectors.hubspot.client import HubSpotClient, HubSpotUnavailable
from connectors.hubspot.history import HISTORY_PROPERTIES, history_records
from connectors.hubspot.mapping import Row
from connectors.hubspot.search import row_ms, sliced_search
from connectors.records import AnyRecord, Malformed, PersonRecord
from service.settings import HubSpotSettings

SEARCHED = ("companies", "contacts", "deals", "calls", "emails", "meetings")
ARCHIVABLE = ("contacts", "companies", "deals")
STREAMS = ["owners", "companies", "contacts", "deals", "calls", "emails", "meetings", "archived"]
PRIMARY_COMPANY_TYPE = 1  # contact -> company, primary; 279 is the unlabelled association
TASK_TO_CONTACT = 204
BATCH_SIZE = 100
HISTORY_BATCH_SIZE = 50  # HubSpot caps reads with propertiesWithHistory at 50 rows
LIST_LIMIT = 100  # the list endpoint's page cap

Records = list[AnyRecord | Malformed]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _next_after(answer: dict[str, Any]) -> str | None:
    return ((answer.get("paging") or {}).get("next") or {}).get("after")


class HubSpotConnector:
    """Reads one HubSpot portal through ``hubspot-api-client``; see ``streams()``."""

    source = "hubspot"

    def __init__(
        self, settings: HubSpotSettings, *, page_size: int = 200,
        overlap: timedelta = timedelta(minutes=2), retry_wait_seconds: float = 1.0,
        max_attempts: int = 6,
    ) -> None:
        if not 1 <= page_size <= 200:
            raise ConnectorError("HubSpot search pages hold 1 to 200 rows: fix page_size")
        self.page_size = page_size
        self.overlap_ms = int(overlap.total_seconds() * 1000)
        self.client = HubSpotClient(
            settings, retry_wait_seconds=retry_wait_seconds, max_attempts=max_attempts
        )

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    @api_calls.setter
    def api_calls(self, value: int) -> None:
        self.client.api_calls = value

    # -- the Connector protocol ----------------------------------------------------------

    def check(self) -> None:
        """One cheap read proves the token, the base URL and the contacts scope."""
        try:
            self.client.call(
                self.client.objects_basic.get_page, "contacts", limit=1, what="contacts"
            )
        except HubSpotUnavailable as exc:
            raise ConnectorError(str(exc)) from exc

    def streams(self) -> list[str]:
        return list(STREAMS)

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        if stream == "owners":
            yield from self._read_owners(cursor)
        elif stream == "archived":
            yield from self._read_archived(cursor)
        elif stream in SEARCHED and (cursor is None or not cursor.value
                                     or "list_after" in cursor.state):
            yield from self._read_list(stream, cursor)
        elif stream in SEARCHED:
            yield from self._read_search(stream, cursor)
        else:
            raise ConnectorError(f"unknown HubSpot stream {stream!r}; known: {STREAMS}")

    # -- streams -------------------------------------------------------------------------

    def _since(self, cursor: Cursor | None) -> int:
        if cursor is None or not cursor.value:
            return 0
        return max(0, int(cursor.value) - self.overlap_ms)

    def _read_search(self, object_type: str, cursor: Cursor | None) -> Iterator[Page]:
        floor = int(cursor.value) if cursor and cursor.value else -1
        mark = self.api_calls
        for page in sliced_search(
            self.client, object_type, mapping.properties_for(object_type), self._since(cursor),
            page_size=self.page_size,
        ):
            records = self._map(object_type, page.rows)
            # never move a saved cursor backwards when the overlap re-reads older rows
            if page.last_ms >= floor:
                position = Cursor(value=str(page.last_ms), tie_break=page.last_id)
            else:
                position = cursor or Cursor()
            yield Page(object_type, records, position, api_calls=self.api_calls - mark)
            mark = self.api_calls

    def _read_list(self, object_type: str, cursor: Cursor | None) -> Iterator[Page]:
        """Every live row, in id order: a full read with no search quota and no result cap.

        The incremental cursor it ends on is the newest modification that search showed when
        the listing began, so a row changed while the list was being read is searched again
        next time. Until then each page saves the list's own paging token, and a stopped run
        resumes the listing where it was.
        """
        state = dict(cursor.state) if cursor else {}
        mark = self.api_calls
        if "list_after" in state:
            newest, after = state.get("list_mark"), state["list_after"]
        else:
            newest, after = self._newest_ms(object_type), None
        contacts = object_type == "contacts"
        limit = min(self.page_size, HISTORY_BATCH_SIZE if contacts else LIST_LIMIT)
        while True:
            rows: list[Row] = []
            while True:  # several list calls make one page when history caps them at 50
                answer = self.client.call(
                    self.client.objects_basic.get_page, object_type, limit=limit, after=after,
                    properties=mapping.properties_for(object_type),
                    properties_with_history=HISTORY_PROPERTIES if contacts else None,
                    associations=["companies"] if contacts else None, what=object_type,
                )
                rows.extend(answer.get("results") or [])
                after = _next_after(answer)
                if not after or len(rows) >= self.page_size:
                    break
            records = self._map(object_type, rows, listed=True)
            if after:
                position = Cursor(value=cursor.value if cursor else None,
                                  state={"list_after": after, "list_mark": newest})
            else:
                position = Cursor(value=None if newest is None else str(newest))
            yield Page(object_type, records, position, api_calls=self.api_calls - mark)
            mark = self.api_calls
            if not after:
                return

    def _newest_ms(self, object_type: str) -> int | None:
        """The latest modification search knows of (one call), where incremental reads begin."""
        prop = mapping.modified_property(object_type)
        answer = self.client.call(
            self.client.objects_search.do_search, object_type,
            {"filterGroups": [], "properties": [prop], "limit": 1, "after": "0",
             "sorts": [{"propertyName": prop, "direction": "DESCENDING"}]},
            what=object_type, search=True,
        )
        rows = answer.get("results") or []
        return row_ms(rows[0], prop) if rows else None

    def _read_owners(self, cursor: Cursor | None) -> Iterator[Page]:
        """Owners are few and cannot be searched: list them all, keep the recent changes."""
        since, mark = self._since(cursor), self.api_calls
        latest = int(cursor.value) if cursor and cursor.value else 0
        records: Records = []
        for archived in (False, True):
            after: str | None = None
            while True:
                answer = self.client.call(
                    self.client.owners.get_page, limit=100, after=after, archived=archived,
                    what="owners",
                )
                for row in answer.get("results") or []:
                    record = mapping.owner(row)
                    stamp = record.modstamp
                    if stamp is None or mapping.to_ms(stamp) >= since:
                        records.append(record)
                    if stamp is not None:
                        latest = max(latest, mapping.to_ms(stamp))
                after = _next_after(answer)
                if not after:
                    break
        yield Page("owners", records, Cursor(value=str(latest)), api_calls=self.api_calls - mark)

    def _read_archived(self, cursor: Cursor | None) -> Iterator[Page]:
        """Archived contacts, companies and deals as deleted records.

        The list cannot be filtered by archive time, so every pass lists them all and keeps
        rows archived since the cursor. Pages keep the old cursor until the pass ends, so a
        run stopped halfway repeats the pass rather than skipping an object type.
        """
        since, mark = self._since(cursor), self.api_calls
        latest = int(cursor.value) if cursor and cursor.value else 0
        for object_type in ARCHIVABLE:
            after: str | None = None
            while True:
                answer = self.client.call(
                    self.client.objects_basic.get_page, object_type, limit=100, after=after,
                    archived=True, properties=[mapping.modified_property(object_type)],
                    what=object_type,
                )
                records: Records = []
                for row in answer.get("results") or []:
                    record = mapping.archived(object_type, row)
                    stamp = record.modstamp
                    if stamp is None or mapping.to_ms(stamp) >= since:
                        records.append(record)
                    if stamp is not None:
                        latest = max(latest, mapping.to_ms(stamp))
                if records:
                    yield Page("archived", records, cursor or Cursor(), self.api_calls - mark)
                    mark = self.api_calls
                after = _next_after(answer)
                if not after:
                    break
        yield Page("archived", [], Cursor(value=str(latest)), api_calls=self.api_calls - mark)

    # -- mapping with associations and history -------------------------------------------

    def _map(self, object_type: str, rows: list[Row], *, listed: bool = False) -> Records:
        """Typed records; ``listed`` rows already carry contacts' history and companies."""
        if not rows:
            return []
        ids = [str(r["id"]) for r in rows]
        out: Records = []
        if object_type == "companies":
            return [mapping.company(r) for r in rows]
        if object_type == "contacts":
            if listed:
                companies = self._listed_companies(rows)
                histories = {str(r["id"]): r for r in rows}
            else:
                companies = self._associations("contacts", "companies", ids)
                histories = self._histories(ids)
            for row in rows:
                rid = str(row["id"])
                person = mapping.contact(row, self._primary_company(companies.get(rid, [])))
                out.append(person)
                if isinstance(person, PersonRecord):
                    out.extend(mapping.merged_losers(row, person.modstamp))
                    if rid in histories:
                        out.extend(history_records(histories[rid]))
            return out
        contacts = self._associations(object_type, "contacts", ids)
        if object_type == "deals":
            deal_companies = self._associations("deals", "companies", ids)
            for row in rows:
                rid = str(row["id"])
                people = [to for to, _ in contacts.get(rid, [])]
                company = next((to for to, _ in deal_companies.get(rid, [])), None)
                out.append(mapping.deal(row, people, company))
            return out
        for row in rows:
            first = next((to for to, _ in contacts.get(str(row["id"]), [])), None)
            out.append(mapping.engagement(object_type, row, first))
        return out

    def _listed_companies(self, rows: list[Row]) -> dict[str, list[tuple[str, set[int]]]]:
        """Companies from the rows' own v3 block; v4 (which says which is primary) only for
        contacts with several."""
        out: dict[str, list[tuple[str, set[int]]]] = {}
        several = []
        for row in rows:
            block = ((row.get("associations") or {}).get("companies") or {}).get("results")
            found = list(dict.fromkeys(str(a.get("id")) for a in block or [] if a.get("id")))
            if len(found) > 1:
                several.append(str(row["id"]))
            elif found:
                out[str(row["id"])] = [(found[0], set())]
        if several:
            out.update(self._associations("contacts", "companies", several))
        return out

    @staticmethod
    def _primary_company(links: list[tuple[str, set[int]]]) -> str | None:
        primary = next((to for to, types in links if PRIMARY_COMPANY_TYPE in types), None)
        return primary or next((to for to, _ in links), None)

    def _associations(
        self, from_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[tuple[str, set[int]]]]:
        """v4 batch read: from id -> [(to id, association type ids)], in HubSpot's order."""
        out: dict[str, list[tuple[str, set[int]]]] = {}
        for chunk in _chunks(ids, BATCH_SIZE):
            answer = self.client.call(
                self.client.associations.get_page, from_type, to_type,
                {"inputs": [{"id": i} for i in chunk]}, what=f"{from_type} associations",
            )
            for result in answer.get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                links = out.setdefault(from_id, [])
                for to in result.get("to") or []:
                    types = {
                        int(t["typeId"]) for t in to.get("associationTypes") or []
                        if t.get("typeId") is not None
                    }
                    links.append((str(to.get("toObjectId")), types))
        return out

    def _histories(self, ids: list[str]) -> dict[str, Row]:
        """Contacts with ``propertiesWithHistory`` of the tracked and marketing properties."""
        out: dict[str, Row] = {}
        for chunk in _chunks(ids, HISTORY_BATCH_SIZE):
            for row in self._batch_read("contacts", chunk, [], HISTORY_PROPERTIES):
                out[str(row["id"])] = row
        return out

    def _batch_read(
        self, object_type: str, ids: list[str], properties: list[str],
        history: Iterable[str] = (), *, archived: bool = False,
    ) -> list[Row]:
        body: dict[str, Any] = {"inputs": [{"id": i} for i in ids], "properties": properties}
        history = list(history)
        if history:
            body["propertiesWithHistory"] = history
        answer = self.client.call(
            self.client.objects_batch.read, object_type, body, archived=archived,
            what=object_type,
        )
        return list(answer.get("results") or [])

    # -- webhooks and write-back ---------------------------------------------------------

    def refresh(self, object_type: str, ids: list[str]) -> Records:
        """Read named rows now (a webhook said they changed); gone rows come back deleted."""
        if object_type not in SEARCHED:
            raise ConnectorError(f"cannot refresh HubSpot {object_type!r}; known: {SEARCHED}")
        rows: list[Row] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), BATCH_SIZE):
            rows.extend(
                self._batch_read(object_type, chunk, mapping.properties_for(object_type))
            )
        out = self._map(object_type, rows)
        found = {str(r["id"]) for r in rows}
        missing = [i for i in ids if i not in found]
        if missing and object_type in ARCHIVABLE:
            for chunk in _chunks(missing, BATCH_SIZE):
                for row in self._batch_read(object_type, chunk, [], archived=True):
                    if row.get("archived"):
                        out.append(mapping.archived(object_type, row))
        return out

    def create_task(
        self, *, contact_id: str, owner_id: str | None, subject: str, body: str, due: datetime
    ) -> str:
        """A to-do on the contact (an SLA breach), so the rep sees it where they work."""
        if due.tzinfo is None:
            raise ValueError("due must be timezone-aware")
        properties = {
            "hs_timestamp": due.astimezone(UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "hs_task_subject": subject,
            "hs_task_body": body,
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
        }
        if owner_id:
            properties["hubspot_owner_id"] = owner_id
        payload = {
            "properties": properties,
            "associations": [{
                "to": {"id": contact_id},
                "types": [{
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": TASK_TO_CONTACT,
                }],
            }],
        }
        answer = self.client.call(self.client.tasks.create, payload, what="tasks", write=True)
        task_id = answer.get("id")
        if not task_id:
            raise ConnectorError("HubSpot created no task: the answer carried no id")
        return str(task_id)
