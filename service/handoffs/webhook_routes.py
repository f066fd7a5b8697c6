"""``POST /webhooks/hubspot``: answer HubSpot fast, re-read the rows in the background."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel

from service.errors import ErrorBody
from service.handoffs.webhooks import group_ids, parse_events, refresh_groups, verify_signature

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


class Accepted(BaseModel):
    accepted: int


@router.post(
    "/webhooks/hubspot", response_model=Accepted,
    responses={401: {"description": "bad, missing or stale signature"},
               422: {"description": "the body is not a JSON array of HubSpot events",
                     "model": ErrorBody},
               503: {"description": "TRUCE_HUBSPOT_CLIENT_SECRET is not set"}},
)
async def hubspot_webhook(request: Request, background: BackgroundTasks) -> Accepted:
    """Verify signature v3 and queue a targeted refresh of the rows the events name.

    Events are deduplicated by ``eventId`` and ordered by ``occurredAt``; the answer comes
    before the CRM is read, as HubSpot expects, and a failed refresh is caught by the next sync.
    """
    settings = request.app.state.settings
    body = await request.body()
    verify_signature(settings, method=request.method, uri=str(request.url), body=body,
                     signature=request.headers.get("X-HubSpot-Signature-v3"),
                     timestamp=request.headers.get("X-HubSpot-Request-Timestamp"))
    events = parse_events(body)
    groups = group_ids(events)
    if groups and settings.hubspot.enabled:
        background.add_task(refresh_groups, request.app.state.engine, settings, groups)
    elif groups:
        log.warning("HubSpot webhook accepted but TRUCE_HUBSPOT_ACCESS_TOKEN is not set: "
                    "nothing to refresh with")
    return Accepted(accepted=len(events))
