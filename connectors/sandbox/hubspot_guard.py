"""Everything in front of the HubSpot routes: faults, bearer tokens and rate limits.

It is a plain ASGI wrapper rather than Starlette middleware so it can cut an answer off
halfway (a dropped connection must surface in urllib3 as an incomplete read, not a 500).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from connectors.sandbox.faults import Faults
from connectors.sandbox.hubspot_wire import error_body, json_response

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]
TOKEN_PATH = "/oauth/v1/token"
# With no budget configured nothing is enforced, so the headers advertise a budget no client
# will reach (a client honouring them must not slow down for a limit that is not there).
NOMINAL_DAILY = 10_000_000
NOMINAL_TEN_SECOND = 10_000
INTERVAL_MS = 10_000
_DROPPED = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    """Deliberately dropped answers are the point of the fault; do not log them as errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROPPED


_uvicorn_log = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietDrops) for f in _uvicorn_log.filters):
    _uvicorn_log.addFilter(_QuietDrops())


class TokenStore:
    """Access tokens with their issue time, and the refresh tokens that mint new ones."""

    def __init__(self, initial: str, refresh_token: str,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.timer = timer
        self._issued: dict[str, float] = {initial: timer()}
        self._refresh = {refresh_token}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"CO{secrets.token_urlsafe(24)}"
        with self._lock:
            self._issued[token] = self.timer()
        return token

    def knows_refresh(self, token: str | None) -> bool:
        return token is not None and token in self._refresh

    def check(self, token: str | None, ttl_seconds: float) -> tuple[str, int] | None:
        """None when valid, else (category, seconds since expiry)."""
        with self._lock:
            issued = None if token is None else self._issued.get(token)
        if issued is None:
            return "INVALID_AUTHENTICATION", 0
        if ttl_seconds > 0:
            late = self.timer() - issued - ttl_seconds
            if late >= 0:
                return "EXPIRED_AUTHENTICATION", int(late)
        return None


class Window:
    """Calls within a rolling interval, for the remaining-budget headers and the search bucket."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self, now: float) -> int:
        with self._lock:
            self._prune(now)
            self._times.append(now)
            return len(self._times)

    def count(self, now: float) -> int:
        with self._lock:
            self._prune(now)
            return len(self._times)

    def _prune(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.seconds:
            self._times.popleft()


class Guard:
    """Wraps the routes: faults first, then auth, then the daily, ten-second and search limits."""

    def __init__(self, app: ASGIApp, faults: Faults, tokens: TokenStore,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.timer = timer
        self.faults = faults
        self.tokens = tokens
        self.ten = Window(10.0)
        self.second = Window(1.0)
        self.search = Window(1.0)
        self._failures = 0

    def rate_headers(self, now: float) -> dict[str, str]:
        f = self.faults
        daily = f.daily_limit if f.daily_limit > 0 else NOMINAL_DAILY
        ten = f.ten_second_limit if f.ten_second_limit > 0 else NOMINAL_TEN_SECOND
        secondly = max(1, ten // 10)
        return {
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - f.calls)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(INTERVAL_MS),
            "X-HubSpot-RateLimit-Max": str(ten),
            "X-HubSpot-RateLimit-Remaining": str(max(0, ten - self.ten.count(now))),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(
                max(0, secondly - self.second.count(now))),
        }

    async def __call__(self, scope: Scope, receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/"), "raw_path": path.rstrip("/").encode()}
        n = self.faults.tick()
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        now = self.timer()
        if self.faults.should_fail(n):
            self._failures += 1
            status = 502 if self._failures % 2 else 504
            message = ("Bad Gateway: the upstream service answered badly; please retry."
                       if status == 502 else "Gateway Timeout: the upstream service did not "
                       "answer in time; please retry.")
            category = "BAD_GATEWAY" if status == 502 else "GATEWAY_TIMEOUT"
            await json_response(error_body(message, category), status,
                                self.rate_headers(now))(scope, receive, send)
            return
        early = self._refuse(scope, now)
        if early is not None:
            await early(scope, receive, send)
            return
        headers = self.rate_headers(now)
        await self.app(scope, receive, self._sender(send, headers, self.faults.should_drop(n)))

    def _refuse(self, scope: Scope, now: float) -> Any:
        """The 401 or 429 answer this call earns, if any."""
        if scope["path"] == TOKEN_PATH:
            return None
        auth = dict(scope["headers"]).get(b"authorization", b"").decode(errors="replace")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        problem = self.tokens.check(token, self.faults.token_ttl_seconds)
        if problem is not None:
            category, late = problem
            message = (f"The OAuth token used to make this call expired {late} second(s) ago."
                       if category == "EXPIRED_AUTHENTICATION" else
                       "Authentication credentials not found. This API supports OAuth 2.0 "
                       "authentication and you can find more details at "
                       "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
            return json_response(error_body(message, category), 401, self.rate_headers(now))
        self.ten.add(now)
        self.second.add(now)
        if self.faults.over_daily():
            return self._limited(now, "DAILY", "You have reached your daily limit.", None)
        if self.faults.over_ten_second(now):
            return self._limited(now, "TEN_SECONDLY_ROLLING",
                                 "You have reached your ten_secondly_rolling limit.", None)
        per_second = self.faults.search_per_second
        searching = scope["method"] == "POST" and scope["path"].endswith("/search")
        if searching and per_second > 0 and self.search.add(now) > per_second:
            return self._limited(now, "SECONDLY", "You have reached your secondly limit.", 1)
        return None

    def _limited(self, now: float, policy: str, message: str, retry_after: int | None) -> Any:
        headers = self.rate_headers(now)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                "correlationId": error_body("", "")["correlationId"], "policyName": policy,
                "requestId": secrets.token_hex(16)}
        return json_response(body, 429, headers)

    @staticmethod
    def _sender(send: Callable[..., Any], headers: dict[str, str], drop: bool
                ) -> Callable[..., Any]:
        """Add the rate headers; on a drop, send half the body and stop."""
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        state = {"cut": False}

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)
                return
            if message["type"] != "http.response.body" or not drop:
                await send(message)
                return
            if state["cut"]:
                return
            state["cut"] = True
            body = message.get("body", b"")
            await send({"type": "http.response.body", "body": body[: len(body) // 2],
                        "more_body": True})

        return wrapped
