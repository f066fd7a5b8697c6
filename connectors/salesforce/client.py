"""One way to call Salesforce: a live session, retries for what retrying fixes, plain advice else.

Every REST call goes through :meth:`SalesforceClient.call`. Transient failures (5xx, dropped
or refused connections) are retried with exponential backoff; an expired session is renewed
once when the settings hold credentials; everything else becomes a ``ConnectorError`` that
says what to fix, or ``StopEarly`` when the org's daily API limit is spent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connectors.base import ConnectorError, StopEarly
from connectors.salesforce.login import (
    LoginUnavailable,
    Session,
    build_http_session,
    fetch_session,
    initial_session,
    login_mode,
)
from service.settings import SalesforceSettings

T = TypeVar("T")


class _Salesforce(Salesforce):
    """simple-salesforce, with its answers parsed by orjson into plain dicts.

    The library parses every answer with ``object_pairs_hook=OrderedDict``; on a 2,000-lead
    ``queryAll`` batch that took about four times orjson's time and a fifth of a full sync's
    reading thread. Its own calls, sessions and errors are unchanged.
    """

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return orjson.loads(result.content)

EXPIRED_TOKEN = (
    "Salesforce session expired: set a fresh TRUCE_SALESFORCE_ACCESS_TOKEN or use "
    "username-password / client credentials"
)
MAX_WAIT_SECONDS = 60.0


class RequestRefused(ConnectorError):
    """Salesforce refused a request as malformed or unknown; ``code`` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_code(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) of Salesforce's ``[{"errorCode", "message"}]`` error body."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)


def _before_sending(exc: BaseException) -> bool:
    """A connection that never opened: the request cannot have reached Salesforce."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def is_transient(exc: BaseException, *, idempotent: bool = True) -> bool:
    """Worth another try: 5xx, and lost connections when repeating the call is harmless."""
    if isinstance(exc, SalesforceGeneralError):
        return exc.status >= 500
    if isinstance(exc, LoginUnavailable):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                  | requests.exceptions.ChunkedEncodingError):
        return idempotent or _before_sending(exc)
    return False


class SalesforceClient:
    """Holds the simple-salesforce client and renews it when its session expires."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        retry_wait_seconds: float = 1.0,
        max_attempts: int = 5,
    ) -> None:
        self.settings = settings
        self.retry_wait_seconds = retry_wait_seconds
        self.max_attempts = max(1, max_attempts)
        self.http = build_http_session(settings.ca_bundle)
        self.http.hooks["response"].append(self._on_response)
        self.api_calls = 0
        self.api_usage: tuple[int, int] | None = None
        self._sf: Salesforce | None = None

    def close(self) -> None:
        """Close pooled keep-alive connections (a server shutting down waits for them)."""
        self.http.close()

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count REST calls and note ``Sforce-Limit-Info`` from every answer, errors included."""
        if "/services/data/" not in response.url:
            return
        self.api_calls += 1
        info = response.headers.get("Sforce-Limit-Info")
        usage = Salesforce.parse_api_usage(info).get("api-usage") if info else None
        if usage is not None:
            self.api_usage = (int(usage.used), int(usage.total))

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._connect(initial_session(self.settings) or fetch_session(self.http,
                                                                          self.settings))
        assert self._sf is not None
        return self._sf

    def _connect(self, session: Session) -> None:
        if not session.instance_url:
            raise ConnectorError("no Salesforce instance URL: set TRUCE_SALESFORCE_INSTANCE_URL")
        self._sf = _Salesforce(
            instance_url=session.instance_url,
            session_id=session.session_id,
            session=self.http,
            version=self.settings.api_version,
        )

    def call(self, fn: Callable[[Salesforce], T], *, what: str, idempotent: bool = True) -> T:
        """Run ``fn`` against the client with retries, re-login and error translation."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=MAX_WAIT_SECONDS),
            retry=retry_if_exception(lambda e: is_transient(e, idempotent=idempotent)),
            reraise=True,
        )
        try:
            return retrying(self._with_session, fn)
        except SalesforceError as exc:
            translated = self._translate(exc, what)
            if translated is exc:
                raise
            raise translated from exc
        except requests.exceptions.SSLError as exc:
            raise ConnectorError(
                f"TLS verification failed talking to Salesforce ({what}): set "
                "TRUCE_SALESFORCE_CA_BUNDLE to the CA that signed the server's certificate"
            ) from exc

    def _with_session(self, fn: Callable[[Salesforce], T]) -> T:
        try:
            return fn(self.sf)
        except SalesforceExpiredSession:
            if login_mode(self.settings) is None:
                raise ConnectorError(EXPIRED_TOKEN) from None
        self._connect(fetch_session(self.http, self.settings))
        try:
            return fn(self.sf)
        except SalesforceExpiredSession as exc:
            raise ConnectorError(
                "Salesforce refused a session it had just issued: check that the user may "
                "use the API and TRUCE_SALESFORCE_INSTANCE_URL / _LOGIN_URL"
            ) from exc

    @staticmethod
    def _translate(exc: SalesforceError, what: str) -> Exception:
        code, message = error_code(exc)
        if isinstance(exc, SalesforceRefusedRequest):
            if code == "REQUEST_LIMIT_EXCEEDED":
                return StopEarly(f"Salesforce daily API limit reached ({message}); will resume")
            return ConnectorError(
                f"Salesforce refused {what} ({code}: {message}): grant the user access "
                "to this object and the API"
            )
        if isinstance(exc, SalesforceResourceNotFound):
            return RequestRefused(
                code or "NOT_FOUND",
                f"Salesforce has no {what} ({message}): check the object exists, the user can "
                "see it, and TRUCE_SALESFORCE_API_VERSION",
            )
        if isinstance(exc, SalesforceMalformedRequest):
            return RequestRefused(code, f"Salesforce rejected {what} ({code}: {message})")
        return exc
