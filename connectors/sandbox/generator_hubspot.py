"""Write one human's HubSpot story: the contact and its property history, engagements and
deals (HubSpot-only people), and the native integration's mirror of Salesforce changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_model import Ctx, Event, Human
from connectors.sandbox.generator_people import integration_lag, unique_email

ASSOC = {"calls": (194, 193), "emails": (198, 197), "meetings": (200, 199)}


def hubspot_email(h: Human) -> str:
    """The same address as in Salesforce, written the way the form or import left it."""
    variant = h.idx % 4
    if variant == 0:
        local, domain = h.email.split("@")
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if variant == 1:
        return h.email.upper()
    if variant == 2:
        return f" {h.email} "
    return h.email + " "


def hubspot_events(ctx: Ctx, h: Human) -> list[Event]:
    """Every HubSpot write of ``h``, as (when, order, action) to run in time order."""
    assert h.created
    ev: list[Event] = [(h.created, 0, partial(_contact, ctx, h))]
    if h.malformed:
        return ev
    first_form = h.forms[0] if h.forms and h.forms[0] == h.created else None
    for prop, times in (("recent_conversion_date", h.forms), ("hs_email_last_click_date",
                        h.clicks), ("hs_analytics_last_visit_timestamp", h.visits)):
        ev += [(t, 2, partial(_set, ctx, h, {prop: t}, t)) for t in times if t != first_form]
    if h.crm == "both" and h.sf_created:
        ev.append((h.sf_created, 1, partial(_set, ctx, h, {"salesforceleadid": None},
                                            h.sf_created, lead_ref=True)))
    if h.mql_at:
        at = h.mql_at + timedelta(seconds=ctx.rng.randint(60, 240))
        ev.append((at, 3, partial(_stage, ctx, h, "marketingqualifiedlead", {}, at)))
    changes = _status_changes(ctx, h)
    for at, props, stage in changes:
        ev.append((at, 4, partial(_stage, ctx, h, stage, props, at)))
    if h.crm == "hs":
        for t, kind in h.touches:
            ev.append((t, 5, partial(_engagement, ctx, h, t, kind)))
        if h.opp:
            ev.append((h.opp.created, 6, partial(_deal, ctx, h)))
            mid = (h.opp.created + (min(h.opp.close_at, ctx.anchor) - h.opp.created) / 2)
            mid = mid.replace(microsecond=0)
            ev.append((mid, 7, partial(_deal_update, ctx, h, mid, False)))
            if h.opp.closed:
                ev.append((h.opp.close_at, 8, partial(_deal_update, ctx, h, h.opp.close_at,
                                                      True)))
    if h.dup == "hs" and h.dup_at and h.merge_at:
        ev.append((h.dup_at, 9, partial(_dup, ctx, h)))
        ev.append((h.merge_at, 10, partial(_merge, ctx, h)))
    if h.archive_at:
        ev.append((h.archive_at, 11, partial(_archive, ctx, h)))
    return [e for e in ev if e[0] <= ctx.anchor]


def _status_changes(ctx: Ctx, h: Human) -> list[tuple[datetime, dict[str, Any], str | None]]:
    """hs_lead_status and lifecycle changes: the rep's own (HubSpot-only people) or the
    integration's copy of the Salesforce status, a sync cycle later (shared people)."""
    shared = h.crm == "both"
    lag = integration_lag if shared else (lambda t: t)
    out: list[tuple[datetime, dict[str, Any], str | None]] = []
    if h.decided_at:
        if h.outcome == "accepted":
            status = "IN_PROGRESS" if shared or not h.touches else "ATTEMPTED_TO_CONTACT"
            out.append((lag(h.decided_at), {"hs_lead_status": status}, "salesqualifiedlead"))
            if not shared and len(h.touches) > 1:
                out.append((h.touches[1][0], {"hs_lead_status": "CONNECTED"}, None))
        else:
            status = "BAD_TIMING" if h.reason == "Bad Timing" else "UNQUALIFIED"
            out.append((lag(h.decided_at), {"hs_lead_status": status}, None))
    if h.closed_later_at:
        out.append((lag(h.closed_later_at), {"hs_lead_status": "UNQUALIFIED"}, None))
    if h.recycled_at:
        out.append((lag(h.recycled_at), {"hs_lead_status": "OPEN"}, "lead"))
    if h.converted_at:
        props: dict[str, Any] = {"hs_lead_status": "OPEN_DEAL" if h.opp else "CONNECTED"}
        if shared:
            props["salesforcecontactid"] = None  # filled with the contact id when applied
        out.append((lag(h.converted_at), props, "opportunity" if h.opp else None))
    if h.opp and h.opp.closed and h.opp.won:
        out.append((lag(h.opp.close_at), {}, "customer"))
    return out


def _contact(ctx: Ctx, h: Human) -> None:
    hs, rng = ctx.world.hubspot, ctx.rng
    assert h.created
    subscriber = not h.mql and rng.random() < 0.2
    stage = "subscriber" if subscriber else "lead"
    props: dict[str, Any] = {
        "email": hubspot_email(h) if h.crm == "both" else h.email,
        "firstname": h.first, "lastname": h.last, "company": h.account.name,
        "jobtitle": h.title, "country": h.country, "lifecyclestage": stage,
        f"hs_lifecyclestage_{stage}_date": h.created,
        "hs_lead_status": None if subscriber else "NEW",
        "hubspot_owner_id": h.owner.hs_id if h.owner else None,
        "hubspotscore": h.score,
        "hs_analytics_source": rng.choice(cat.HS_ANALYTICS_SOURCE[h.source]),
    }
    if h.forms and h.forms[0] == h.created:
        props["recent_conversion_date"] = h.created
    if h.malformed == "invalid email":
        props["email"] = "not-an-email"
    elif h.malformed == "missing email and name":
        props.update(email=None, firstname=None, lastname=None)
    rec = hs.insert("contacts", {k: v for k, v in props.items() if v is not None}, at=h.created)
    h.hs_id = rec["id"]
    if h.malformed:
        ctx.malformed.append(("hubspot", "contacts", rec["id"], h.malformed))
        return
    if h.account.hs_id:
        hs.associate("contacts", rec["id"], "companies", h.account.hs_id, 279)
        hs.associate("companies", h.account.hs_id, "contacts", rec["id"], 280)


def _live(ctx: Ctx, h: Human) -> bool:
    rec = ctx.world.hubspot.table("contacts").get(h.hs_id or "")
    return rec is not None and not rec["archived"]


def _set(ctx: Ctx, h: Human, props: dict[str, Any], at: datetime, *, lead_ref: bool = False
         ) -> None:
    if not _live(ctx, h):
        return
    if lead_ref:
        props = {"salesforceleadid": h.lead_id}
    ctx.world.hubspot.update("contacts", h.hs_id or "", props, at=at)


def _stage(ctx: Ctx, h: Human, stage: str | None, props: dict[str, Any], at: datetime) -> None:
    props = dict(props)
    if "salesforcecontactid" in props:
        props["salesforcecontactid"] = h.contact_id
    if stage:
        props["lifecyclestage"] = stage
        props[f"hs_lifecyclestage_{stage}_date"] = at
    _set(ctx, h, props, at)


def _engagement(ctx: Ctx, h: Human, at: datetime, kind: str) -> None:
    hs = ctx.world.hubspot
    assert h.owner and h.hs_id
    owner = h.owner.hs_id
    if kind == "meeting":
        obj = "meetings"
        props: dict[str, Any] = {
            "hs_timestamp": at, "hubspot_owner_id": owner, "hs_meeting_title": "Discovery call",
            "hs_meeting_start_time": at, "hs_meeting_end_time": at + timedelta(minutes=45),
            "hs_meeting_outcome": "COMPLETED" if at < ctx.anchor - timedelta(hours=1)
            else "SCHEDULED",
        }
    elif kind == "call":
        obj = "calls"
        connected = ctx.rng.random() < 0.55
        props = {
            "hs_timestamp": at, "hubspot_owner_id": owner, "hs_call_title": f"Call {h.first}",
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED" if connected else "NO_ANSWER",
            "hs_call_duration": ctx.rng.randint(60_000, 1_500_000) if connected else 0,
        }
    else:
        obj = "emails"
        props = {"hs_timestamp": at, "hubspot_owner_id": owner, "hs_email_direction": "EMAIL",
                 "hs_email_subject": "Following up on your request", "hs_email_status": "SENT"}
    rec = hs.insert(obj, props, at=at)
    to_contact, from_contact = ASSOC[obj]
    hs.associate(obj, rec["id"], "contacts", h.hs_id, to_contact)
    hs.associate("contacts", h.hs_id, obj, rec["id"], from_contact)


def _deal(ctx: Ctx, h: Human) -> None:
    hs = ctx.world.hubspot
    assert h.opp and h.owner and h.hs_id
    rec = hs.insert("deals", {
        "dealname": f"{h.account.name} - {ctx.rng.choice(cat.PRODUCTS)}",
        "amount": h.opp.amount, "dealstage": "appointmentscheduled", "pipeline": "default",
        "closedate": h.opp.close_at, "hubspot_owner_id": h.owner.hs_id,
        "hs_is_closed": False, "hs_is_closed_won": False,
    }, at=h.opp.created)
    h.opp.hs_id = rec["id"]
    hs.associate("deals", rec["id"], "contacts", h.hs_id, 3)
    hs.associate("contacts", h.hs_id, "deals", rec["id"], 4)


def _deal_update(ctx: Ctx, h: Human, at: datetime, closing: bool) -> None:
    assert h.opp and h.opp.hs_id
    if closing:
        props: dict[str, Any] = {
            "dealstage": "closedwon" if h.opp.won else "closedlost", "hs_is_closed": True,
            "hs_is_closed_won": h.opp.won, "closedate": h.opp.close_at,
        }
    else:
        props = {"dealstage": ctx.rng.choice(cat.DEAL_STAGES_OPEN[1:])}
    ctx.world.hubspot.update("deals", h.opp.hs_id, props, at=at)


def _dup(ctx: Ctx, h: Human) -> None:
    """The same human signs up again with a personal address; marketing merges them later."""
    assert h.dup_at
    email = unique_email(ctx, f"{h.first}.{h.last}".lower(), "gmail.com")
    rec = ctx.world.hubspot.insert("contacts", {
        "email": email, "firstname": h.first, "lastname": h.last, "country": h.country,
        "lifecyclestage": "subscriber", "hubspotscore": h.score // 3,
        "hs_analytics_source": "SOCIAL_MEDIA",
    }, at=h.dup_at)
    h.dup_id = rec["id"]


def _merge(ctx: Ctx, h: Human) -> None:
    assert h.merge_at and h.dup_id and h.hs_id
    if not _live(ctx, h):
        return
    ctx.world.hubspot.merge("contacts", h.hs_id, h.dup_id, at=h.merge_at)
    ctx.merged.append(("hubspot", "contacts", h.dup_id, h.hs_id))


def _archive(ctx: Ctx, h: Human) -> None:
    assert h.archive_at and h.hs_id
    ctx.world.hubspot.archive("contacts", h.hs_id, at=h.archive_at)
    ctx.deleted.append(("hubspot", "contacts", h.hs_id))
