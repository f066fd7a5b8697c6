"""Salesforce sandbox sessions: the token store and the two login endpoints.

simple-salesforce can only reach a local server with ``session_id`` + ``instance_url``, but
Truce may fetch that session itself (OAuth password or client-credentials flow, or the SOAP
login), so both endpoints answer the shapes the real ones do, including their failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from starlette.responses import JSONResponse, Response

ORG_ID = "00DSANDBOX00001AAA"
USER_ID = "005SANDBOX00001AAA"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    username: str
    password: str


class TokenStore:
    """Issued session ids and when each was issued, on a monotonic timer."""

    def __init__(self, initial: str, timer: Callable[[], float] = time.monotonic) -> None:
        self.timer = timer
        self._issued: dict[str, float] = {initial: timer()}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(32)}"
        with self._lock:
            self._issued[token] = self.timer()
        return token

    def valid(self, token: str, ttl_seconds: float) -> bool:
        """Known and, when a TTL is set, younger than it."""
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            return False
        return ttl_seconds <= 0 or self.timer() - issued < ttl_seconds


def _token_body(token: str, instance_url: str, secret: str) -> dict[str, str]:
    issued_at = str(int(time.time() * 1000))
    ident = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
    mac = hmac.new(secret.encode(), (ident + issued_at).encode(), hashlib.sha256).digest()
    return {
        "access_token": token,
        "instance_url": instance_url,
        "id": ident,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(mac).decode(),
    }


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, pw = raw.partition(":")
    return user, pw


def oauth_token(body: bytes, authorization: str | None, instance_url: str,
                creds: Credentials, tokens: TokenStore) -> Response:
    """``POST /services/oauth2/token`` for the password and client_credentials grants."""
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    grant = form.get("grant_type")
    basic = _basic(authorization)
    client_id = basic[0] if basic else form.get("client_id")
    client_secret = basic[1] if basic else form.get("client_secret")
    client_ok = client_id == creds.client_id and client_secret == creds.client_secret
    if grant == "password":
        ok = client_ok and (form.get("username"), form.get("password")) == (
            creds.username, creds.password)
    elif grant == "client_credentials":
        ok = client_ok
    else:
        return JSONResponse({"error": "unsupported_grant_type",
                             "error_description": "grant type not supported"}, status_code=400)
    if not ok:
        error = "invalid_grant" if client_ok or grant == "password" else "invalid_client"
        description = ("authentication failure" if error == "invalid_grant"
                       else "invalid client credentials")
        return JSONResponse({"error": error, "error_description": description}, status_code=400)
    return JSONResponse(_token_body(tokens.issue(), instance_url, creds.client_secret))


_SOAP_NS = (
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def _soap_fault(code: str, message: str) -> Response:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope {_SOAP_NS} '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, status_code=500, media_type="text/xml")


def soap_login(body: bytes, instance_url: str, version: str, creds: Credentials,
               tokens: TokenStore) -> Response:
    """``POST /services/Soap/u/{ver}``: the partner-API login simple-salesforce sends."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; "
                           "or user locked out.")
    found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    username, password = found.get("username"), found.get("password") or ""
    # the security token is appended to the password; any token is accepted
    if username != creds.username or not password.startswith(creds.password):
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; "
                           "or user locked out.")
    token = tokens.issue()
    server = f"{instance_url}/services/Soap/u/{version}/{ORG_ID[:15]}"
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope {_SOAP_NS}><soapenv:Body>'
        "<loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{ORG_ID[:15]}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{server}</serverUrl><sessionId>{escape(token)}</sessionId>"
        f"<userId>{USER_ID}</userId><userInfo><organizationId>{ORG_ID}</organizationId>"
        f"<userName>{escape(creds.username)}</userName></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, media_type="text/xml")
