"""Write one human's Salesforce story: lead, campaign membership, activity, status changes,
conversion, opportunity, duplicates and deletion, each at the instant it happened.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_model import Ctx, Event, Human

OPEN, WORKING = "Open - Not Contacted", "Working - Contacted"
CONVERTED, NOT_CONVERTED = "Closed - Converted", "Closed - Not Converted"
MEMBER_STATUS = {"Web Form": "Responded", "Demo Request": "Responded", "Webinar": "Attended",
                 "Event": "Attended", "List Upload": "Sent", "Partner": "Responded"}
MARKETING_TASKS = {"form": ("Form Submission", "Form submitted: {campaign}"),
                   "click": ("Email Click", "Clicked email: product newsletter"),
                   "visit": ("Web Visit", "Visited pricing page")}


def salesforce_events(ctx: Ctx, h: Human) -> list[Event]:
    """Every Salesforce write of ``h``, as (when, order, action) to run in time order."""
    assert h.sf_created
    ev: list[Event] = [(h.sf_created, 0, partial(_lead, ctx, h))]
    if h.malformed:
        return ev
    ev.append((h.sf_created, 1, partial(_member, ctx, h)))
    if h.crm == "sf":
        for kind, times in (("form", h.forms), ("click", h.clicks), ("visit", h.visits)):
            ev += [(max(t, h.sf_created), 2, partial(_marketing, ctx, h, t, kind)) for t in times]
    if h.decided_at:
        new = WORKING if h.outcome == "accepted" else NOT_CONVERTED
        extra = {} if h.outcome == "accepted" else {"Rejection_Reason__c": h.reason}
        ev.append((h.decided_at, 3, partial(_status, ctx, h, new, extra, h.decided_at)))
    for t, kind in h.touches:
        ev.append((t, 4, partial(_touch, ctx, h, t, kind)))
    if h.closed_later_at:
        ev.append((h.closed_later_at, 3, partial(
            _status, ctx, h, NOT_CONVERTED, {"Rejection_Reason__c": h.reason},
            h.closed_later_at)))
    if h.recycled_at:
        ev.append((h.recycled_at, 3, partial(_status, ctx, h, OPEN, {}, h.recycled_at)))
    if h.converted_at:
        ev.append((h.converted_at, 5, partial(_convert, ctx, h)))
    if h.opp:
        progress = h.opp.created + (min(h.opp.close_at, ctx.anchor) - h.opp.created) / 2
        progress = progress.replace(microsecond=0)
        ev.append((progress, 6, partial(_opp_progress, ctx, h, progress)))
        if h.opp.closed:
            ev.append((h.opp.close_at, 7, partial(_opp_close, ctx, h)))
    if h.dup in ("lead", "contact") and h.dup_at and h.merge_at:
        ev.append((h.dup_at, 8, partial(_dup, ctx, h)))
        ev.append((h.merge_at, 9, partial(_merge, ctx, h)))
    if h.delete_at:
        ev.append((max(h.delete_at, h.sf_created), 10, partial(_delete, ctx, h)))
    return ev


def _lead(ctx: Ctx, h: Human) -> None:
    acct = h.account
    assert h.sf_created and h.owner
    fields: dict[str, Any] = {
        "Email": h.email, "FirstName": h.first, "LastName": h.last, "Company": acct.name,
        "Title": h.title, "Country": h.country, "LeadSource": h.source, "Status": OPEN,
        "IsConverted": False, "ConvertedDate": None, "ConvertedContactId": None,
        "ConvertedAccountId": None, "ConvertedOpportunityId": None, "OwnerId": h.owner.sf_id,
        "NumberOfEmployees": acct.employees, "Industry": acct.industry,
        "AnnualRevenue": acct.revenue, "Lead_Score__c": h.score, "Rejection_Reason__c": None,
    }
    if h.malformed == "invalid email":
        fields["Email"] = "not-an-email"
    elif h.malformed == "missing LastName":
        fields["LastName"] = None
    elif h.malformed == "ConvertedDate before CreatedDate":
        fields.update(Status=CONVERTED, IsConverted=True,
                      ConvertedDate=h.sf_created.date() - timedelta(days=45))
    rec = ctx.world.salesforce.insert("Lead", fields, at=h.sf_created)
    h.lead_id = rec["Id"]
    if h.malformed:
        ctx.malformed.append(("salesforce", "Lead", rec["Id"], h.malformed))


def _member(ctx: Ctx, h: Human) -> None:
    assert h.campaign and h.sf_created
    status = MEMBER_STATUS[h.campaign.type]
    responded = status != "Sent"
    ctx.world.salesforce.insert("CampaignMember", {
        "CampaignId": h.campaign.sf_id, "LeadId": h.lead_id, "ContactId": None,
        "Status": status, "HasResponded": responded,
        "FirstRespondedDate": h.sf_created.date() if responded else None,
    }, at=h.sf_created)


def _who(h: Human) -> str | None:
    return h.contact_id or h.lead_id


def _marketing(ctx: Ctx, h: Human, at: datetime, kind: str) -> None:
    assert ctx.integration and h.campaign
    task_type, subject = MARKETING_TASKS[kind]
    ctx.world.salesforce.insert("Task", {
        "WhoId": _who(h), "WhatId": None, "OwnerId": ctx.integration.sf_id,
        "Subject": subject.format(campaign=h.campaign.name), "Type": task_type,
        "Status": "Completed", "Priority": "Normal", "ActivityDate": at.date(),
        "TaskSubtype": "Task",
    }, at=at)


def _status(ctx: Ctx, h: Human, new: str, extra: dict[str, Any], when: datetime) -> None:
    """Change the lead's status with the LeadHistory row a tracked field leaves behind."""
    sf = ctx.world.salesforce
    assert h.lead_id
    lead = sf.table("Lead")[h.lead_id]
    old = lead["Status"]
    if old == new or lead["IsDeleted"]:
        return
    sf.insert("LeadHistory", {"LeadId": h.lead_id, "Field": "Status", "OldValue": old,
                              "NewValue": new}, at=when)
    sf.update("Lead", h.lead_id, {"Status": new, **extra}, at=when)


def _touch(ctx: Ctx, h: Human, at: datetime, kind: str) -> None:
    assert h.owner
    sf = ctx.world.salesforce
    what = h.opp.sf_id if h.opp and h.contact_id else None
    end = at + timedelta(minutes=30 if kind != "meeting" else 60)
    if kind == "meeting" and end <= ctx.anchor:
        booked = max(at - timedelta(hours=ctx.rng.randint(2, 72)), h.sf_created or at)
        sf.insert("Event", {
            "WhoId": _who(h), "WhatId": what, "OwnerId": h.owner.sf_id,
            "Subject": "Discovery meeting" if not what else "Product demo", "Type": "Meeting",
            "StartDateTime": at, "EndDateTime": end, "ActivityDateTime": at,
            "ActivityDate": at.date(), "DurationInMinutes": 60,
        }, at=booked)
        return
    call = kind != "email"
    sf.insert("Task", {
        "WhoId": _who(h), "WhatId": what, "OwnerId": h.owner.sf_id,
        "Subject": "Call" if call else "Email: following up on your request",
        "Type": "Call" if call else "Email", "Status": "Completed", "Priority": "Normal",
        "ActivityDate": at.date(), "TaskSubtype": "Call" if call else "Email",
    }, at=at)


def _convert(ctx: Ctx, h: Human) -> None:
    sf, rng = ctx.world.salesforce, ctx.rng
    assert h.converted_at and h.owner and h.lead_id
    at, acct = h.converted_at, h.account
    contact = sf.insert("Contact", {
        "Email": h.email, "FirstName": h.first, "LastName": h.last, "AccountId": acct.sf_id,
        "OwnerId": h.owner.sf_id, "Title": h.title, "MailingCountry": h.country,
        "LeadSource": h.source,
    }, at=at)
    h.contact_id = contact["Id"]
    opp_id = None
    if h.opp:
        stage, prob = cat.OPEN_STAGES[1]
        product = rng.choice(cat.PRODUCTS)
        opp = sf.insert("Opportunity", {
            "Name": f"{acct.name} - {product}", "AccountId": acct.sf_id,
            "Amount": h.opp.amount, "StageName": stage, "Probability": prob,
            "IsClosed": False, "IsWon": False, "CloseDate": h.opp.close_at.date(),
            "LeadSource": h.source, "CampaignId": h.campaign.sf_id if h.campaign else None,
            "OwnerId": h.owner.sf_id, "ContactId": contact["Id"], "Type": "New Business",
        }, at=at)
        opp_id = h.opp.sf_id = opp["Id"]
        sf.insert("OpportunityContactRole", {
            "OpportunityId": opp_id, "ContactId": contact["Id"],
            "Role": rng.choice(cat.CONTACT_ROLES), "IsPrimary": True,
        }, at=at)
    _status(ctx, h, CONVERTED, {
        "IsConverted": True, "ConvertedDate": at.date(), "ConvertedContactId": contact["Id"],
        "ConvertedAccountId": acct.sf_id, "ConvertedOpportunityId": opp_id,
    }, at)


def _opp_progress(ctx: Ctx, h: Human, at: datetime) -> None:
    assert h.opp and h.opp.sf_id
    stage, prob = ctx.rng.choice(cat.OPEN_STAGES[2:])
    ctx.world.salesforce.update("Opportunity", h.opp.sf_id,
                                {"StageName": stage, "Probability": prob}, at=at)


def _opp_close(ctx: Ctx, h: Human) -> None:
    assert h.opp and h.opp.sf_id
    won = h.opp.won
    ctx.world.salesforce.update("Opportunity", h.opp.sf_id, {
        "StageName": "Closed Won" if won else "Closed Lost", "Probability": 100 if won else 0,
        "IsClosed": True, "IsWon": won, "CloseDate": h.opp.close_at.date(),
    }, at=h.opp.close_at)
    if won:
        ctx.wins.append((h.opp.close_at, h.account))


def _dup(ctx: Ctx, h: Human) -> None:
    """A second record of the same human: a rep keys them in again, or an event list repeats."""
    sf = ctx.world.salesforce
    assert h.dup_at and h.owner
    email = h.email.capitalize() if ctx.rng.random() < 0.5 else h.email
    if h.dup == "lead":
        rec = sf.insert("Lead", {
            "Email": email, "FirstName": h.first, "LastName": h.last, "Company": h.account.name,
            "Title": h.title, "Country": h.country, "LeadSource": "Event", "Status": OPEN,
            "IsConverted": False, "OwnerId": h.owner.sf_id, "Lead_Score__c": h.score // 2,
            "NumberOfEmployees": h.account.employees, "Industry": h.account.industry,
            "AnnualRevenue": h.account.revenue, "Rejection_Reason__c": None,
        }, at=h.dup_at)
    else:
        rec = sf.insert("Contact", {
            "Email": email, "FirstName": h.first, "LastName": h.last,
            "AccountId": h.account.sf_id, "OwnerId": h.owner.sf_id, "Title": h.title,
            "MailingCountry": h.country, "LeadSource": h.source,
        }, at=h.dup_at)
    h.dup_id = rec["Id"]


def _merge(ctx: Ctx, h: Human) -> None:
    assert h.merge_at and h.dup_id
    sobject = "Lead" if h.dup == "lead" else "Contact"
    master = h.lead_id if h.dup == "lead" else h.contact_id
    assert master
    ctx.world.salesforce.merge(sobject, master, h.dup_id, at=h.merge_at)
    ctx.merged.append(("salesforce", sobject, h.dup_id, master))


def _delete(ctx: Ctx, h: Human) -> None:
    assert h.lead_id and h.delete_at
    ctx.world.salesforce.delete("Lead", h.lead_id, at=h.delete_at)
    ctx.deleted.append(("salesforce", "Lead", h.lead_id))


def account_wins(ctx: Ctx) -> None:
    """Accounts become customers at their first win (applied last, in time order)."""
    seen: set[str] = set()
    for at, acct in sorted(ctx.wins, key=lambda w: w[0]):
        if acct.sf_id not in seen:
            seen.add(acct.sf_id)
            ctx.world.salesforce.update("Account", acct.sf_id, {"Type": "Customer"}, at=at)


def stray_opportunity(ctx: Ctx, reason: str) -> str:
    """An imported deal with an impossible close date, for quarantine."""
    acct = ctx.rng.choice(ctx.accounts)
    rec = ctx.world.salesforce.insert("Opportunity", {
        "Name": f"{acct.name} - Legacy renewal", "AccountId": acct.sf_id, "Amount": 12_000,
        "StageName": "Closed Won", "Probability": 100, "IsClosed": True, "IsWon": True,
        "CloseDate": date(1900, 1, 1), "LeadSource": "Partner Referral", "CampaignId": None,
        "OwnerId": acct.owner.sf_id, "ContactId": None, "Type": "Renewal",
    }, at=ctx.start + timedelta(days=6, hours=4))
    return rec["Id"]
