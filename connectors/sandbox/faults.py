"""Faults a sandbox can inject, set at start and changed at run time by tests or the CLI."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Shared by both sandbox servers; every field may be changed while they run."""

    fail_every: int = 0  # answer a 503 (Salesforce) / 502 (HubSpot) on every Nth call; 0 = never
    drop_every: int = 0  # close the connection mid-answer on every Nth call; 0 = never
    latency_ms: int = 0  # added to every answer
    token_ttl_seconds: float = 0  # tokens expire this long after issue; 0 = never
    daily_limit: int = 0  # calls per day before REQUEST_LIMIT_EXCEEDED / 429 DAILY; 0 = unlimited
    ten_second_limit: int = 0  # calls per rolling 10 s before a 429; 0 = unlimited
    search_per_second: int = 5  # HubSpot search bucket, as the real API
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _recent: list[float] = field(default_factory=list, repr=False)

    def tick(self) -> int:
        """Count one call and answer its ordinal (1-based)."""
        with self._lock:
            self.calls += 1
            return self.calls

    def should_fail(self, n: int) -> bool:
        return self.fail_every > 0 and n % self.fail_every == 0

    def should_drop(self, n: int) -> bool:
        return self.drop_every > 0 and n % self.drop_every == 0

    def over_daily(self) -> bool:
        return self.daily_limit > 0 and self.calls > self.daily_limit

    def over_ten_second(self, now: float | None = None) -> bool:
        """Record a call in the rolling window and say whether it is past the budget."""
        if self.ten_second_limit <= 0:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 10.0]
            self._recent.append(now)
            return len(self._recent) > self.ten_second_limit

    def sleep(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)
