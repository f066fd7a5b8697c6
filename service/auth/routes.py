"""Admin endpoints for API keys."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from service.auth import service
from service.auth.models import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from service.deps import Admin, SessionDep
from service.errors import NotFound

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, session: SessionDep, principal: Admin) -> ApiKeyCreated:
    """Create a key; the secret is in this answer only."""
    row, key = service.create_key(session, name=body.name, team=body.team, role=body.role,
                                  created_by=principal.name)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row, from_attributes=True).model_dump(),
                         key=key)


@router.get("", response_model=list[ApiKeyPublic])
def list_keys(session: SessionDep, _: Admin) -> list[ApiKey]:
    return service.list_keys(session)


@router.post("/{key_id}/revoke", response_model=ApiKeyPublic)
def revoke_key(key_id: int, session: SessionDep, _: Admin) -> ApiKey:
    if session.exec(select(ApiKey).where(ApiKey.id == key_id)).first() is None:
        raise NotFound(f"no API key with id {key_id}")
    return service.revoke_key(session, key_id=key_id)
