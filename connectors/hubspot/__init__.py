"""HubSpot CRM connector (``hubspot-api-client``)."""

from connectors.hubspot.connector import STREAMS, HubSpotConnector

__all__ = ["STREAMS", "HubSpotConnector"]
