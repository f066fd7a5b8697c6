"""Creating, checking and revoking API keys; only a key's SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from service.auth.models import ApiKey, AuditEvent, Role, Team
from service.db import utcnow
from service.errors import Conflict, NotFound

KEY_PREFIX = "truce_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: enough to authorise and to record the write."""

    name: str
    team: Team
    role: Role
    key_id: int | None = None


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str, team: Team, role: Role, created_by: str | None = None
               ) -> tuple[ApiKey, str]:
    if session.exec(select(ApiKey).where(ApiKey.name == name)).first() is not None:
        raise Conflict(f"an API key named {name!r} already exists", field="name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, team=team.value, role=role.value, key_hash=hash_key(key),
                 prefix=key[: len(KEY_PREFIX) + 4], created_by=created_by)
    session.add(row)
    session.flush()
    return row, key


def revoke_key(session: Session, *, name: str | None = None, key_id: int | None = None) -> ApiKey:
    stmt = select(ApiKey).where(ApiKey.name == name) if name is not None else select(ApiKey).where(
        ApiKey.id == key_id)
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound(f"no API key {name or key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.flush()
    return row


def authenticate(session: Session, key: str, *, admin_key: str | None) -> Principal | None:
    """The principal for a presented key, or None when it is unknown or revoked."""
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(name="bootstrap-admin", team=Team.ops, role=Role.admin)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(name=row.name, team=Team(row.team), role=Role(row.role), key_id=row.id)


def record_write(session: Session, principal: Principal, *, method: str, path: str) -> None:
    session.add(AuditEvent(key_name=principal.name, team=principal.team.value, method=method,
                           path=path[:500]))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.id)))
