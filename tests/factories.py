"""Hand-typed CRM records and an in-process connector for engine-level tests."""

from collections.abc import Iterator
from datetime import UTC, datetime

from connectors.base import ConnectorError, Cursor, Page, StopEarly
from connectors.records import PersonRecord

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


class ListConnector:
    """A connector over fixed pages: cursor.value is the index of the last page served."""

    def __init__(self, source: str, streams: dict[str, list[list]], *,
                 stop_after: int | None = None, fail_on: str | None = None) -> None:
        self.source = source
        self.pages = streams
        self.api_calls = 0
        self.stop_after = stop_after
        self.fail_on = fail_on

    def check(self) -> None:
        pass

    def streams(self) -> list[str]:
        return list(self.pages)

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        if stream == self.fail_on:
            raise ConnectorError("HubSpot rejected the access token")
        start = int(cursor.value) + 1 if cursor and cursor.value is not None else 0
        for i, records in enumerate(self.pages[stream][start:], start=start):
            self.api_calls += 1
            yield Page(stream=stream, records=records, cursor=Cursor(value=str(i)))
            if self.stop_after is not None and self.api_calls >= self.stop_after:
                raise StopEarly("API budget below reserve; will resume")


def sf_lead(n: int, email: str | None, **kw) -> PersonRecord:
    return PersonRecord(source="salesforce", object="Lead", external_id=f"00Q{n}", kind="lead",
                        modstamp=kw.pop("modstamp", T0), created_at=kw.pop("created_at", T0),
                        email=email, last_name="Doe", **kw)


def hs_contact(n: int, email: str | None, **kw) -> PersonRecord:
    return PersonRecord(source="hubspot", object="contacts", external_id=str(n), kind="contact",
                        modstamp=kw.pop("modstamp", T0), created_at=kw.pop("created_at", T0),
                        email=email, **kw)




def pointed_at(settings, boxes):  # noqa: ANN001, ANN201 - test helper
    """``settings`` pointed at running sandboxes, as `truce sandbox` prints them."""
    from pydantic import SecretStr

    from connectors.sandbox.run import WEBHOOK_SECRET
    from service.settings import HubSpotSettings, SalesforceSettings

    env = boxes.settings_env()
    return settings.model_copy(update={
        "salesforce": SalesforceSettings(
            instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"],
            access_token=SecretStr(env["TRUCE_SALESFORCE_ACCESS_TOKEN"]),
            ca_bundle=env["TRUCE_SALESFORCE_CA_BUNDLE"]),
        "hubspot": HubSpotSettings(base_url=env["TRUCE_HUBSPOT_BASE_URL"],
                                   access_token=SecretStr(env["TRUCE_HUBSPOT_ACCESS_TOKEN"]),
                                   client_secret=SecretStr(WEBHOOK_SECRET)),
    })
