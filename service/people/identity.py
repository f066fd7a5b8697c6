"""Identity resolution: fold CRM rows into one person per human, a page at a time.

Rules, in order: a row already linked stays with its person; rows that share a normalised
email are one person; a row's explicit claims (HubSpot's Salesforce ids, a converted lead's
contact) link the claimed rows to the same person even before those rows arrive; a CRM merge
folds the loser's person into the winner's. When two persons turn out to be one, the lower id
survives and the other points at it, so ids handed out earlier still resolve.

A page is resolved in memory against what two queries loaded (open links of every key the
page mentions, live persons by email); persons new in the page are placeholders (negative
tokens) until ``finish`` inserts them, with their links, in one statement each. Only merges of
persons that already existed touch other rows one by one, and those are rare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, text, update
from sqlmodel import Session, col, select

from connectors.records import PersonRecord, record_key
from service.people.models import Person, PersonLink, StageEvent
from service.sync.bulk import among, insert_many, update_many
from service.sync.models import CrmRow

# (row key -> person id, ids of the new persons) -> values to insert new persons with, by id
Settle = Callable[[dict[str, int], set[int]], dict[int, dict[str, Any]]]


@dataclass
class _Link:
    person: int  # a token: a person id, or a negative placeholder
    key: str
    reason: str
    valid_to: datetime | None = None


class IdentityResolver:
    """Resolves one page's person rows; call ``prefetch`` first and ``finish`` last."""

    def __init__(self, session: Session, *, now: datetime) -> None:
        self.session = session
        self.now = now
        self._parent: dict[int, int] = {}  # union-find over tokens
        self._links: dict[str, list[int]] = {}  # record key -> tokens of its open links
        self._emails: dict[str, set[int]] = {}
        self._new: dict[int, dict[str, Any]] = {}  # placeholder -> its person's first values
        self._pending: list[_Link] = []
        self._pending_by_key: dict[str, list[_Link]] = {}
        self._stored_open: set[str] = set()  # keys with an open link stored before this page
        self._detached: list[str] = []  # keys whose stored open links close
        self._moves: list[int] = []  # stored persons folded into another, in order
        self._touched: set[int] = set()
        self._assigned: dict[str, int] = {}  # row key -> token

    # -- lookups -------------------------------------------------------------------------

    def prefetch(self, records: Iterable[PersonRecord]) -> None:
        """Load the open links and the live persons by email the page needs, in two queries."""
        keys: set[str] = set()
        emails: set[str] = set()
        for rec in records:
            keys.add(rec.key)
            keys.update(rec.xrefs)
            if rec.converted_contact_key:
                keys.add(rec.converted_contact_key)
            if rec.merged_into:
                keys.add(record_key(rec.source, rec.object, rec.merged_into))
            email = rec.normalised_email
            if email:
                emails.add(email)
        self._load_links(keys)
        for email in emails:
            self._emails.setdefault(email, set())
        if emails:
            for pid, email in self.session.exec(select(Person.id, Person.email).where(
                    among(self.session, Person.email, emails),
                    col(Person.merged_into).is_(None))):
                self._emails[email].add(pid)  # type: ignore[index, arg-type]
        self._load_roots({p for ps in self._links.values() for p in ps})

    def _load_links(self, keys: set[str]) -> None:
        keys = {k for k in keys if k not in self._links}
        if not keys:
            return
        for key in keys:
            self._links[key] = []
        for key, pid in self.session.exec(select(PersonLink.record_key, PersonLink.person_id)
                                          .where(among(self.session, PersonLink.record_key, keys),
                                                 col(PersonLink.valid_to).is_(None))
                                          .order_by(col(PersonLink.id))):
            self._links[key].append(pid)
            self._stored_open.add(key)

    def _load_roots(self, ids: set[int]) -> None:
        """Open links point at live persons; follow any that a merge left behind."""
        todo = {i for i in ids if i > 0 and i not in self._parent}
        while todo:
            found = dict(self.session.exec(select(Person.id, Person.merged_into).where(
                among(self.session, Person.id, todo),
                col(Person.merged_into).is_not(None))).all())
            for pid, into in found.items():
                if pid is not None and into is not None and pid != into:
                    self._parent[pid] = into
            todo = {i for i in found.values() if i is not None and i not in self._parent} - set(
                found)

    def _open(self, key: str) -> list[int]:
        if key not in self._links:
            self._load_links({key})
            self._load_roots(set(self._links[key]))
        return self._links[key]

    def find(self, token: int) -> int:
        root = token
        while root in self._parent:
            root = self._parent[root]
        while token != root:  # path compression
            self._parent[token], token = root, self._parent[token]
        return root

    # -- the rules -----------------------------------------------------------------------

    def resolve(self, rec: PersonRecord) -> None:
        """Attach the row of ``rec`` (a live person row) to its person."""
        own = rec.key
        keys = [own, *rec.xrefs]
        if rec.converted_contact_key:
            keys.append(rec.converted_contact_key)
        find = self.find
        candidates = {find(p) for key in keys for p in self._open(key)}
        email = rec.normalised_email
        if email:
            candidates.update(find(p) for p in self._emails.get(email, ()))
        if candidates:
            person = self.merge(candidates)
        else:
            person = -(len(self._new) + 1)
            self._new[person] = {"email": email, "created_at": rec.created_at}
            if email:
                self._emails.setdefault(email, set()).add(person)
        for key in keys:
            if any(find(p) == person for p in self._links[key]):
                continue
            if key != own:
                reason = "claim"
            elif not candidates:
                reason = "new"
            else:
                reason = "email" if email else "record"
            self._link(person, key, reason)
        self._assigned[own] = person
        self._touched.add(person)

    def detach(self, key: str, person: int | None) -> None:
        """A deleted row stops counting for its person; the link history keeps it."""
        if key in self._stored_open or key not in self._links:
            self._detached.append(key)  # only stored open links need closing in the database
        self._links[key] = []
        for link in self._pending_by_key.get(key, ()):
            if link.valid_to is None:
                link.valid_to = self.now
        if person is not None:
            self._touched.add(person)

    def fold_merge(self, loser_key: str, person: int | None, winner_key: str) -> None:
        """A CRM merge: the loser's person and the winner's are the same human."""
        person = self._assigned.get(loser_key, person)
        persons: set[int] = set()
        if person is not None:
            persons.add(self.find(person))
        winners = self._open(winner_key)
        persons.update(self.find(p) for p in winners)
        if not winners and person is not None:
            # the winner has not arrived yet: claim it for the loser's person
            self._link(person, winner_key, "merge")
        if persons:
            person = self.merge(persons)
            self._assigned[loser_key] = person
        self.detach(loser_key, person)

    def merge(self, roots: set[int]) -> int:
        """Fold persons into the lowest stored id (a placeholder only if none is stored)."""
        survivor = min(roots, key=lambda t: (t < 0, abs(t)))
        for loser in sorted(roots - {survivor}, key=lambda t: (t < 0, abs(t))):
            self._parent[loser] = survivor
            if loser > 0:
                self._moves.append(loser)
        self._touched.add(survivor)
        return survivor

    def _link(self, person: int, key: str, reason: str) -> None:
        link = _Link(person, key, reason)
        self._pending.append(link)
        self._pending_by_key.setdefault(key, []).append(link)
        self._links.setdefault(key, []).append(person)

    # -- writing -------------------------------------------------------------------------

    def finish(self, settle: Settle | None = None) -> tuple[dict[str, int], set[int]]:
        """Write the page's identity changes; answer row key -> person id, and touched ids.

        ``settle`` is told which row goes to which person and which persons are new, once
        their ids are known and before they are stored; it answers the values some of the new
        persons are to be inserted with (see ``new_person_values``).
        """
        for loser in self._moves:
            self._move(loser, self.find(loser))
        if self._detached:
            self.session.execute(
                update(PersonLink)
                .where(among(self.session, PersonLink.record_key, set(self._detached)),
                       col(PersonLink.valid_to).is_(None))
                .values(valid_to=self.now).execution_options(synchronize_session=False))
        roots = sorted((t for t in self._new if self.find(t) == t), reverse=True)
        ids = self._new_ids(roots)

        def real(token: int) -> int:
            root = self.find(token)
            return ids[root] if root < 0 else root

        assigned = {key: real(t) for key, t in self._assigned.items()}
        values = settle(assigned, set(ids.values())) if settle is not None and ids else {}
        self._insert_persons(roots, ids, values)
        links, seen = [], set()
        for link in self._pending:
            person = real(link.person)
            if link.valid_to is None:
                if (person, link.key) in seen:
                    continue
                seen.add((person, link.key))
            links.append({"person_id": person, "record_key": link.key, "reason": link.reason,
                          "valid_from": self.now, "valid_to": link.valid_to})
        if links:
            insert_many(self.session, PersonLink.__table__, links)  # type: ignore[attr-defined]
        touched = {real(t) for t in self._touched} - set(self._moves)
        return assigned, touched

    def _placeholder(self, token: int) -> dict[str, Any]:
        return {"email": self._new[token]["email"], "created_at": self._new[token]["created_at"],
                "stage": "inquiry", "live": True, "dirty": True, "updated_at": self.now}

    def _new_ids(self, roots: list[int]) -> dict[int, int]:
        """Ids for the page's new persons, in the order created.

        PostgreSQL hands them out from the table's sequence in one query, and the persons are
        inserted later by ``_insert_persons`` (no RETURNING, which would make the driver parse
        one huge statement per batch); SQLite inserts placeholders now, in one executemany.
        """
        if not roots:
            return {}
        if self.session.get_bind().dialect.name == "postgresql":
            # the sequence is looked up once: per row, the look-up cost more than nextval
            ids = list(self.session.execute(
                text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('person', 'id')"
                     "::regclass AS seq) SELECT nextval(s.seq) FROM s, generate_series(1, :n) "
                     "ORDER BY 1"), {"n": len(roots)}).scalars())
        else:
            table = Person.__table__  # type: ignore[attr-defined]
            ids = list(self.session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [self._placeholder(t) for t in roots]).scalars().all())
        return dict(zip(roots, ids, strict=True))

    def _insert_persons(self, roots: list[int], ids: dict[int, int],
                        values: dict[int, dict[str, Any]]) -> None:
        """Store the new persons: settled ones with their values, the others as placeholders
        that the page's refresh fills in. (On SQLite the placeholders are stored already.)"""
        if not roots:
            return
        table = Person.__table__  # type: ignore[attr-defined]
        if self.session.get_bind().dialect.name != "postgresql":
            update_many(self.session, table, [{"pid": pid, **v} for pid, v in values.items()],
                        by="pid")
            return
        names = dict.fromkeys(n for v in values.values() for n in v)  # one shape for COPY
        rows = []
        for token in roots:
            pid = ids[token]
            rows.append({**dict.fromkeys(names), **self._placeholder(token),
                         **values.get(pid, {}), "id": pid})
        insert_many(self.session, table, rows)

    def _move(self, loser: int, survivor: int) -> None:
        """Everything of a stored person goes to the survivor; the loser points at it."""
        at = self.now
        keys = self.session.exec(select(PersonLink.record_key).where(
            PersonLink.person_id == loser, col(PersonLink.valid_to).is_(None))).all()
        if keys:
            self.session.execute(
                update(PersonLink).where(col(PersonLink.person_id) == loser,
                                         col(PersonLink.valid_to).is_(None))
                .values(valid_to=at).execution_options(synchronize_session=False))
            insert_many(self.session, PersonLink.__table__, [  # type: ignore[attr-defined]
                {"person_id": survivor, "record_key": k, "reason": "merge", "valid_from": at,
                 "valid_to": None} for k in keys])
        self.session.execute(update(CrmRow).where(col(CrmRow.person_id) == loser)
                             .values(person_id=survivor)
                             .execution_options(synchronize_session=False))
        # derived events are rebuilt for the survivor; the loser's are dropped
        self.session.execute(delete(StageEvent).where(col(StageEvent.person_id) == loser)
                             .execution_options(synchronize_session=False))
        self.session.execute(update(Person).where(col(Person.id) == loser)
                             .values(merged_into=survivor, live=False, updated_at=at)
                             .execution_options(synchronize_session=False))


def owner_key(source: str, owner_id: str | None) -> str | None:
    if not owner_id:
        return None
    return record_key(source, "User" if source == "salesforce" else "owners", owner_id)
