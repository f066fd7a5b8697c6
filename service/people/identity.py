"""Identity resolution: fold CRM rows into one person per human.

Rules, in order: a row already linked stays with its person; rows that share a normalised
email are one person; a row's explicit claims (HubSpot's Salesforce ids, a converted lead's
contact) link the claimed rows to the same person even before those rows arrive; a CRM merge
folds the loser's person into the winner's. When two persons turn out to be one, the lower id
survives and the other points at it, so ids handed out earlier still resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from connectors.records import PersonRecord, record_key
from service.db import utcnow
from service.people.models import Person, PersonLink, StageEvent
from service.sync.models import CrmRow


class IdentityResolver:
    """Works within one page's transaction; caches what it looked up."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.touched: set[int] = set()
        # what the page's records will look up, fetched once (see ``prefetch``)
        self._links: dict[str, list[PersonLink]] | None = None
        self._emails: dict[str, set[int]] | None = None
        self._page: list[PersonRecord] = []

    def prefetch(self, records: Iterable[PersonRecord]) -> None:
        """Load the open links and the persons by email a page needs, in two queries."""
        self._page = list(records)
        keys: set[str] = set()
        emails: set[str] = set()
        for rec in self._page:
            keys.add(rec.key)
            keys.update(rec.xrefs)
            if rec.converted_contact_key:
                keys.add(rec.converted_contact_key)
            if rec.normalised_email:
                emails.add(rec.normalised_email)
        self._links = {k: [] for k in keys}
        for link in self.session.exec(select(PersonLink).where(
                col(PersonLink.record_key).in_(keys), col(PersonLink.valid_to).is_(None))):
            self._links[link.record_key].append(link)
        self._emails = {e: set() for e in emails}
        for pid, email in self.session.exec(select(Person.id, Person.email).where(
                col(Person.email).in_(emails), col(Person.merged_into).is_(None))):
            self._emails[email].add(pid)  # type: ignore[index, arg-type]

    def _open_links(self, keys: list[str]) -> list[PersonLink]:
        if self._links is not None and all(k in self._links for k in keys):
            return [link for k in keys for link in self._links[k]]
        return list(self.session.exec(
            select(PersonLink).where(col(PersonLink.record_key).in_(keys),
                                     col(PersonLink.valid_to).is_(None))))

    def _persons_with_email(self, email: str) -> set[int]:
        if self._emails is not None and email in self._emails:
            return set(self._emails[email])
        found = self.session.exec(select(Person.id).where(Person.email == email,
                                                          col(Person.merged_into).is_(None)))
        return {pid for pid in found if pid is not None}

    def _remember_link(self, link: PersonLink) -> None:
        if self._links is not None and link.record_key in self._links:
            self._links[link.record_key].append(link)

    def resolve(self, rec: PersonRecord, row: CrmRow) -> int:
        """Attach ``row`` (a live person row) to its person and answer that person's id."""
        now = utcnow()
        claims = list(rec.xrefs)
        if rec.converted_contact_key:
            claims.append(rec.converted_contact_key)
        keys = [rec.key, *claims]
        candidates: set[int] = set()
        links = self._open_links(keys)
        candidates.update(link.person_id for link in links)
        email = rec.normalised_email
        if email:
            candidates.update(self._persons_with_email(email))
        if candidates:
            person_id = self.merge_persons(candidates, at=now)
        else:
            # a Core insert: the id comes back without flushing the whole page's changes
            with self.session.no_autoflush:
                person_id = self.session.execute(
                    insert(Person).values(email=email, created_at=rec.created_at,
                                          stage="inquiry", live=True, dirty=True,
                                          updated_at=now).returning(Person.id)).scalar_one()
            if email and self._emails is not None:
                self._emails.setdefault(email, set()).add(person_id)
        linked = {link.record_key for link in links if link.person_id == person_id}
        for key in keys:
            if key not in linked:
                reason = "new" if key == rec.key and not candidates else (
                    "record" if key == rec.key else "claim")
                if key == rec.key and email and candidates:
                    reason = "email"
                link = PersonLink(person_id=person_id, record_key=key, reason=reason,
                                  valid_from=now)
                self.session.add(link)
                self._remember_link(link)
        row.person_id = person_id
        self.touched.add(person_id)
        return person_id

    def detach(self, row: CrmRow, *, at: datetime) -> None:
        """A deleted row stops counting for its person; the link history keeps it."""
        if self._links is not None and row.key in self._links:
            self._links[row.key] = []
        self.session.exec(
            update(PersonLink)
            .where(col(PersonLink.record_key) == row.key, col(PersonLink.valid_to).is_(None))
            .values(valid_to=at)
        )
        if row.person_id is not None:
            self.touched.add(row.person_id)

    def fold_merge(self, loser: CrmRow, winner_key: str, *, at: datetime) -> None:
        """A CRM merge: the loser's person and the winner's are the same human."""
        persons: set[int] = set()
        if loser.person_id is not None:
            persons.add(loser.person_id)
        winner_links = self.session.exec(
            select(PersonLink.person_id).where(PersonLink.record_key == winner_key,
                                               col(PersonLink.valid_to).is_(None))
        ).all()
        persons.update(winner_links)
        if not winner_links and loser.person_id is not None:
            # the winner has not arrived yet: claim it for the loser's person
            claim = PersonLink(person_id=loser.person_id, record_key=winner_key,
                               reason="merge", valid_from=at)
            self.session.add(claim)
            self._remember_link(claim)
        if persons:
            survivor = self.merge_persons(persons, at=at)
            loser.person_id = survivor
        self.detach(loser, at=at)

    def merge_persons(self, ids: Iterable[int], *, at: datetime) -> int:
        """Fold several persons into the lowest id (following earlier merges first)."""
        roots = {self._root(pid) for pid in ids}
        survivor = min(roots)
        if len(roots) > 1:
            self._forget()
        for loser in sorted(roots - {survivor}):
            self._move(loser, survivor, at=at)
        self.touched.add(survivor)
        return survivor

    def _forget(self) -> None:
        """Links moved or closed: load the page's lookups afresh."""
        self.session.flush()
        if self._links is not None:
            self.prefetch(self._page)

    def _root(self, person_id: int) -> int:
        seen = set()
        while True:
            merged = self.session.exec(
                select(Person.merged_into).where(Person.id == person_id)
            ).first()
            if merged is None or person_id in seen:
                return person_id
            seen.add(person_id)
            person_id = merged

    def _move(self, loser: int, survivor: int, *, at: datetime) -> None:
        links = self.session.exec(
            select(PersonLink).where(PersonLink.person_id == loser,
                                     col(PersonLink.valid_to).is_(None))
        ).all()
        for link in links:
            link.valid_to = at
            self.session.add(PersonLink(person_id=survivor, record_key=link.record_key,
                                        reason="merge", valid_from=at))
        self.session.exec(update(CrmRow).where(col(CrmRow.person_id) == loser)
                          .values(person_id=survivor))
        # derived events are rebuilt for the survivor; the loser's are dropped
        for event in self.session.exec(select(StageEvent).where(StageEvent.person_id == loser)):
            self.session.delete(event)
        person = self.session.get(Person, loser)
        if person is not None:
            person.merged_into = survivor
            person.live = False
            person.updated_at = at
        self.session.flush()
        self.touched.discard(loser)


def owner_key(source: str, owner_id: str | None) -> str | None:
    if not owner_id:
        return None
    return record_key(source, "User" if source == "salesforce" else "owners", owner_id)
