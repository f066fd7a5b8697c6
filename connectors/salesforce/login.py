"""Getting a Salesforce session: a given token, the OAuth token endpoint, or the SOAP login.

simple-salesforce only logs in to ``*.salesforce.com``, so Truce fetches the session itself
from ``TRUCE_SALESFORCE_LOGIN_URL`` (a My Domain, a Salesforce sandbox or a local one) and
hands ``session_id`` + ``instance_url`` to the client. Failures name the settings to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import requests
from requests.adapters import HTTPAdapter

from connectors.base import ConnectorError
from service.settings import SalesforceSettings

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
TIMEOUT_SECONDS = 120.0
NOT_CONFIGURED = (
    "Salesforce is not configured: set TRUCE_SALESFORCE_INSTANCE_URL and "
    "TRUCE_SALESFORCE_ACCESS_TOKEN, or TRUCE_SALESFORCE_USERNAME and _PASSWORD, "
    "or TRUCE_SALESFORCE_CLIENT_ID and _CLIENT_SECRET"
)


@dataclass(frozen=True)
class Session:
    """What the REST client needs: a bearer token and the org's instance URL."""

    session_id: str
    instance_url: str


class LoginUnavailable(Exception):
    """The login endpoint answered 5xx: worth retrying, unlike a refused login."""


class _TimeoutAdapter(HTTPAdapter):
    """requests has no default timeout; a hung socket must not hang a sync run forever."""

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT_SECONDS
        return super().send(request, **kwargs)


def build_http_session(ca_bundle: str | None) -> requests.Session:
    """A session trusting ``ca_bundle`` when set.

    ``trust_env`` is switched off then, because ``REQUESTS_CA_BUNDLE`` in the environment
    would otherwise override ``Session.verify``.
    """
    session = requests.Session()
    adapter = _TimeoutAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if ca_bundle:
        session.verify = ca_bundle
        session.trust_env = False
    return session


def login_mode(settings: SalesforceSettings) -> str | None:
    """Which credentials can fetch a new session: ``password``, ``client_credentials`` or None."""
    if settings.username and settings.password:
        return "password"
    if settings.client_id and settings.client_secret:
        return "client_credentials"
    return None


def initial_session(settings: SalesforceSettings) -> Session | None:
    """The configured token, when there is one: no login call needed to start."""
    if settings.instance_url and settings.access_token:
        return Session(settings.access_token.get_secret_value(), settings.instance_url)
    return None


def _login_url(settings: SalesforceSettings) -> str:
    url = settings.login_url.rstrip("/")
    if settings.domain and url == DEFAULT_LOGIN_URL:
        domain = settings.domain.removesuffix(".salesforce.com")
        url = f"https://{domain}.salesforce.com"
    return url


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else ""  # type: ignore[attr-defined]


def fetch_session(http: requests.Session, settings: SalesforceSettings) -> Session:
    """Log in with the configured credentials; raise ConnectorError when they are refused."""
    mode = login_mode(settings)
    if mode is None:
        raise ConnectorError(NOT_CONFIGURED)
    if mode == "password" and not (settings.client_id and settings.client_secret):
        return _soap_login(http, settings)
    form = {
        "grant_type": mode,
        "client_id": settings.client_id or "",
        "client_secret": _secret(settings.client_secret),
    }
    if mode == "password":
        form["username"] = settings.username or ""
        form["password"] = _secret(settings.password) + _secret(settings.security_token)
    url = f"{_login_url(settings)}/services/oauth2/token"
    response = http.post(url, data=form, headers={"Accept": "application/json"})
    if response.status_code >= 500:
        raise LoginUnavailable(f"Salesforce login answered {response.status_code}")
    if response.status_code == 404:
        raise ConnectorError(f"no OAuth token endpoint at {url}: check TRUCE_SALESFORCE_LOGIN_URL")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        raise ConnectorError(_refusal(mode, body))
    return Session(body["access_token"], body.get("instance_url") or settings.instance_url or "")


def _refusal(mode: str, body: dict) -> str:
    error = body.get("error", "unknown_error")
    detail = body.get("error_description", "")
    if error == "invalid_client" or error == "invalid_client_id" or mode == "client_credentials":
        fix = "check TRUCE_SALESFORCE_CLIENT_ID and TRUCE_SALESFORCE_CLIENT_SECRET"
    else:
        fix = (
            "check TRUCE_SALESFORCE_USERNAME, TRUCE_SALESFORCE_PASSWORD and "
            "TRUCE_SALESFORCE_SECURITY_TOKEN (and the client id and secret)"
        )
    return f"Salesforce refused the {mode} login ({error}: {detail}): {fix}"


_SOAP = (
    '<?xml version="1.0" encoding="utf-8" ?><env:Envelope '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions>'
    "<urn:client>truce</urn:client></urn:CallOptions></env:Header><env:Body>"
    "<n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>{username}</n1:username>"
    "<n1:password>{password}</n1:password></n1:login></env:Body></env:Envelope>"
)


def _soap_login(http: requests.Session, settings: SalesforceSettings) -> Session:
    """Username-password without an OAuth client: the partner SOAP login."""
    password = _secret(settings.password) + _secret(settings.security_token)
    url = f"{_login_url(settings)}/services/Soap/u/{settings.api_version}"
    body = _SOAP.format(username=escape(settings.username or ""), password=escape(password))
    response = http.post(url, data=body.encode(),
                         headers={"Content-Type": "text/xml", "SOAPAction": "login"})
    text = response.text
    code = _xml_value(text, "exceptionCode") or _xml_value(text, "faultcode")
    if code:
        message = _xml_value(text, "exceptionMessage") or ""
        raise ConnectorError(
            f"Salesforce refused the password login ({code}: {message}): check "
            "TRUCE_SALESFORCE_USERNAME, TRUCE_SALESFORCE_PASSWORD and "
            "TRUCE_SALESFORCE_SECURITY_TOKEN"
        )
    if response.status_code >= 500:
        raise LoginUnavailable(f"Salesforce login answered {response.status_code}")
    session_id, server_url = _xml_value(text, "sessionId"), _xml_value(text, "serverUrl")
    if response.status_code != 200 or not session_id or not server_url:
        raise ConnectorError(
            f"no Salesforce SOAP login at {url} (HTTP {response.status_code}): check "
            "TRUCE_SALESFORCE_LOGIN_URL"
        )
    parsed = urlparse(server_url)
    host = parsed.netloc.replace("-api.", ".", 1)
    return Session(session_id, f"{parsed.scheme}://{host}")


def _xml_value(text: str, tag: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{tag}>([^<]*)</(?:\w+:)?{tag}>", text)
    if match is None:
        return None
    return (match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))
