"""Build the connector for a configured source."""

from __future__ import annotations

from connectors.base import Connector
from service.errors import Invalid
from service.settings import Settings

SOURCES = ("salesforce", "hubspot")


def build_connector(settings: Settings, source: str) -> Connector:
    if source not in SOURCES:
        raise Invalid(f"unknown source {source!r}: use salesforce or hubspot", field="source")
    if source not in settings.enabled_sources():
        prefix = f"TRUCE_{source.upper()}_"
        raise Invalid(f"{source} is not configured: set the {prefix}* settings", field="source")
    if source == "salesforce":
        from connectors.salesforce import SalesforceConnector

        return SalesforceConnector(settings.salesforce)
    from connectors.hubspot import HubSpotConnector

    return HubSpotConnector(settings.hubspot)
