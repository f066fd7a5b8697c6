"""Salesforce through simple-salesforce: logins, incremental streams and the Task write-back."""

from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]
