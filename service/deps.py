"""FastAPI dependencies: one session per request, the caller, and role/team checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from service.auth.models import Role, Team
from service.auth.service import Principal, authenticate, record_write
from service.db import end_unit_of_work
from service.errors import Forbidden, Unauthorized
from service.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key from `truce keys create`.")


async def get_settings_dep(request: Request) -> Settings:
    # async: a plain ``def`` dependency costs a trip to the thread pool on every request
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back on error.

    Async so that opening the session (no I/O: the connection is taken at first use) and
    ending it cost one trip to the thread pool between them, not two."""
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        await run_in_threadpool(end_unit_of_work, session, failed=True)
        raise
    await run_in_threadpool(end_unit_of_work, session, failed=False)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    principal = authenticate(session, credentials.credentials, admin_key=admin)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


def require(role: Role = Role.viewer, *, teams: tuple[Team, ...] | None = None
            ) -> Callable[..., Principal]:
    """A dependency that admits callers with at least ``role`` (and of ``teams`` if given).

    Any non-GET request that passes is recorded in the audit trail within the same transaction.
    """

    async def dependency(request: Request, session: SessionDep,
                         principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        # async (no I/O here: the audit row is only added to the session) to spare a trip
        # to the thread pool on every request
        if principal.role.rank < role.rank:
            raise Forbidden(f"this needs the {role.value} role; the key {principal.name!r} is "
                            f"{principal.role.value}")
        if teams is not None and principal.team not in teams and principal.role != Role.admin:
            allowed = ", ".join(t.value for t in teams)
            raise Forbidden(f"this is for the {allowed} team; the key {principal.name!r} is "
                            f"{principal.team.value}")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            record_write(session, principal, method=request.method, path=request.url.path)
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Editor = Annotated[Principal, Depends(require(Role.editor))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
