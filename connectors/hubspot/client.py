"""One HubSpot API client: the typed API objects, our own retries, rate limits and error advice.

The client library raises a different exception class per API package, so failures are
classified by ``status``. urllib3's own retries are switched off (they skip POST, which is
every search and batch call) and tenacity retries 429, 5xx and dropped connections instead.
Responses are parsed from the raw body so one bad value never loses a whole page.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import urllib3
from hubspot import HubSpot
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception
from urllib3.util.retry import Retry

from connectors.base import ConnectorError, StopEarly
from service.settings import HubSpotSettings

log = logging.getLogger(__name__)

TOKEN_ADVICE = (
    "HubSpot rejected the access token: set TRUCE_HUBSPOT_ACCESS_TOKEN to a valid private-app token"
)
# HubSpot allows five searches a second per account; four in any rolling second leaves a
# margin for clock skew between us and its counter, and lets a short read's few searches go
# out at once instead of a quarter second apart
SEARCHES_PER_SECOND = 4
POLICY_SECONDS = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    ConnectionError,
    TimeoutError,
)

Json = dict[str, Any]


class HubSpotUnavailable(Exception):  # noqa: N818 - named for what the operator sees
    """HubSpot kept failing (5xx, dropped connections, rate limits) after every retry."""


class RateLimited(Exception):  # noqa: N818 - internal retry signal
    """A 429 that is worth waiting for; ``wait`` is what the headers asked for, in seconds."""

    def __init__(self, wait: float, policy: str | None) -> None:
        super().__init__(f"HubSpot rate limit {policy or ''} (wait {wait:.2f}s)")
        self.wait = wait
        self.policy = policy


class ServerFailure(Exception):  # noqa: N818 - internal retry signal
    """A 5xx answer: HubSpot's side, so retrying may help."""


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _body(exc: BaseException) -> Json:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = orjson.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:200]}
    return parsed if isinstance(parsed, dict) else {}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def rate_limit_wait(headers: Any, body: Json) -> float:
    """Seconds to wait before a 429'd call may succeed: Retry-After, else the policy window."""
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
    policy = body.get("policyName")
    if policy in POLICY_SECONDS:
        return POLICY_SECONDS[policy]
    interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if interval and interval.isdigit():
        return int(interval) / 1000
    return 1.0


class HubSpotClient:
    """Calls HubSpot through ``hubspot-api-client`` and answers parsed JSON dicts."""

    def __init__(
        self, settings: HubSpotSettings, *, retry_wait_seconds: float, max_attempts: int
    ) -> None:
        if settings.access_token is None:
            raise ConnectorError("HubSpot is not configured: set TRUCE_HUBSPOT_ACCESS_TOKEN")
        self.base_url = settings.base_url.rstrip("/")
        self.retry_wait_seconds = retry_wait_seconds
        self.max_attempts = max(1, max_attempts)
        self.api_calls = 0
        self.rate_limited = 0  # 429s waited out, for run records and tests
        self._searches = Limiter(Rate(SEARCHES_PER_SECOND, Duration.SECOND))
        self._pause_until = 0.0
        hub = HubSpot(
            access_token=settings.access_token.get_secret_value(),
            host=self.base_url,
            retry=Retry(total=0, redirect=0, raise_on_status=False),
        )
        # every property access builds a fresh ApiClient and pool: build each once
        crm = hub.crm
        self.objects_basic = crm.objects.basic_api
        self.objects_batch = crm.objects.batch_api
        self.objects_search = crm.objects.search_api
        self.associations = crm.associations.v4.batch_api
        self.owners = crm.owners.owners_api
        self.tasks = crm.objects.tasks.basic_api

    # -- calling -----------------------------------------------------------------------

    def call(
        self, fn: Callable[..., Any], *args: Any, what: str, search: bool = False,
        write: bool = False, **kwargs: Any,
    ) -> Json:
        """Run one API method with retries; ``what`` names the object for error advice.

        Writes are retried only on 429 and 5xx answers: after a dropped connection the
        write may have landed, and a duplicate task is worse than a reported failure.
        """
        retryable: tuple[type[BaseException], ...] = (RateLimited, ServerFailure)
        if not write:
            retryable += CONNECTION_ERRORS
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, retryable)),
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._once, fn, args, kwargs, what=what, search=search)
        except RateLimited as exc:
            raise HubSpotUnavailable(f"HubSpot kept rate-limiting {what}: {exc}") from exc
        except ServerFailure as exc:
            raise HubSpotUnavailable(f"HubSpot kept failing on {what}: {exc}") from exc
        except CONNECTION_ERRORS as exc:
            raise HubSpotUnavailable(
                f"could not reach HubSpot at {self.base_url} for {what} ({exc}); "
                "check TRUCE_HUBSPOT_BASE_URL or retry later"
            ) from exc

    def _once(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
        what: str, search: bool,
    ) -> Json:
        self._pace(search)
        self.api_calls += 1
        try:
            response = fn(*args, _preload_content=False, **kwargs)
            try:
                raw = response.data
                headers = response.headers
            finally:
                response.release_conn()
        except Exception as exc:
            status = _status(exc)
            if status is None:
                raise
            self._classify(exc, status, what)
            raise
        self._note_budget(headers)
        if not raw:
            return {}
        try:
            parsed = orjson.loads(raw)  # json's parse was 8% of a full sync's reading
        except ValueError as exc:
            raise ServerFailure(f"unreadable answer for {what}") from exc
        return parsed if isinstance(parsed, dict) else {"results": parsed}

    def _classify(self, exc: BaseException, status: int, what: str) -> None:
        """Turn an error answer into a retry signal or advice on what to fix."""
        body = _body(exc)
        message = body.get("message") or getattr(exc, "reason", "") or ""
        if status == 0:
            raise ConnectorError(
                f"could not talk to HubSpot at {self.base_url} ({message}): check "
                "TRUCE_HUBSPOT_BASE_URL and the TLS certificates"
            ) from exc
        if status == 429:
            self.rate_limited += 1
            if body.get("policyName") == "DAILY":
                raise StopEarly(f"HubSpot daily API limit reached while reading {what}")
            raise RateLimited(
                rate_limit_wait(getattr(exc, "headers", None), body), body.get("policyName")
            ) from exc
        if status >= 500:
            raise ServerFailure(f"{status} {message}".strip()) from exc
        if status == 401:
            raise ConnectorError(f"{TOKEN_ADVICE} ({message})") from exc
        if status == 403:
            raise ConnectorError(
                f"HubSpot refused access to {what}: give the private app the read scope "
                f"for it ({message})"
            ) from exc
        if status == 404:
            raise ConnectorError(
                f"HubSpot does not know {what}: check the object type and that the portal "
                f"at {self.base_url} has it ({message})"
            ) from exc
        raise ConnectorError(f"HubSpot answered {status} for {what}: {message}") from exc

    # -- pacing ------------------------------------------------------------------------

    def _pace(self, search: bool) -> None:
        """Honour an exhausted-budget pause seen in headers; keep searches to four in any
        rolling second (pyrate-limiter's sliding window blocks until one is free)."""
        wait = self._pause_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if search:
            self._searches.try_acquire("search")

    def _note_budget(self, headers: Any) -> None:
        """When the rolling budget reads zero, pause before the next call rather than 429."""
        remaining = _header(headers, "X-HubSpot-RateLimit-Remaining")
        interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if remaining == "0" and interval and interval.isdigit():
            pause = int(interval) / 1000 * self.retry_wait_seconds
            self._pause_until = max(self._pause_until, time.monotonic() + pause)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return exc.wait * self.retry_wait_seconds
        backoff = self.retry_wait_seconds * 2 ** (state.attempt_number - 1)
        return min(backoff, self.retry_wait_seconds * 30)

    def _stop(self, state: RetryCallState) -> bool:
        """Rate limits get a longer leash than failures: waiting for them is expected."""
        exc = state.outcome.exception() if state.outcome else None
        limit = self.max_attempts * 4 if isinstance(exc, RateLimited) else self.max_attempts
        return state.attempt_number >= limit

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("hubspot call retrying after attempt %d: %r", state.attempt_number, exc)
