"""Webhook deliveries as HubSpot sends them: batched arrays of events, signed with v3.

A receiver must verify the signature, dedupe by ``eventId`` and order by ``occurredAt``; the
sender can be told to repeat delivered events and shuffle batches so that work gets tested.
Failed batches are re-sent with a rising ``attemptNumber`` and a fresh signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import random
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.sandbox.hubspot_wire import SINGULAR
from connectors.sandbox.world import World

MAX_BATCH = 100
MAX_ATTEMPTS = 10
NOT_RETRIED = frozenset({400, 401, 403, 404, 405})


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), as HubSpot signs."""
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class WebhookSender:
    """Queues CRM change events and POSTs them to one target URL when flushed."""

    def __init__(self, world: World, *, target_url: str, client_secret: str, app_id: int = 1,
                 portal_id: int = 1, max_batch: int = MAX_BATCH,
                 max_attempts: int = MAX_ATTEMPTS, retries_per_flush: int = 3,
                 duplicate_every: int = 0, shuffle_seed: int | None = None,
                 timeout: float = 10.0) -> None:
        self.world = world
        self.target_url = target_url
        self.client_secret = client_secret
        self.app_id = app_id
        self.portal_id = portal_id
        self.max_batch = max(1, min(max_batch, MAX_BATCH))
        self.max_attempts = max_attempts
        self.retries_per_flush = retries_per_flush
        self.duplicate_every = duplicate_every  # resend every Nth delivered event once more
        self.timeout = timeout
        self._random = random.Random(shuffle_seed) if shuffle_seed is not None else None
        self._pending: list[dict[str, Any]] = []
        self._ids = itertools.count(int(time.time()) * 1000)
        self._delivered = 0
        self._lock = threading.Lock()
        self.abandoned: list[dict[str, Any]] = []  # events given up on (4xx or attempts spent)

    def _subscription_id(self, subscription_type: str) -> int:
        return 1_000_000 + sum(map(ord, subscription_type))

    def _queue(self, object_type: str, object_id: str, kind: str, occurred_at: datetime,
               **extra: Any) -> None:
        subscription_type = f"{SINGULAR.get(object_type, object_type)}.{kind}"
        event = {
            "eventId": next(self._ids), "subscriptionId": self._subscription_id(
                subscription_type),
            "portalId": self.portal_id, "appId": self.app_id, "occurredAt": _ms(occurred_at),
            "subscriptionType": subscription_type, "attemptNumber": 0,
            "objectId": int(object_id) if str(object_id).isdigit() else object_id,
            "changeSource": "CRM", **extra,
        }
        with self._lock:
            self._pending.append(event)

    def record_change(self, object_type: str, object_id: str, property_name: str,
                      value: str | None, occurred_at: datetime) -> None:
        """Queue a ``<object>.propertyChange`` event."""
        self._queue(object_type, object_id, "propertyChange", occurred_at,
                    propertyName=property_name, propertyValue=value)

    def record_creation(self, object_type: str, object_id: str, occurred_at: datetime) -> None:
        self._queue(object_type, object_id, "creation", occurred_at)

    def record_deletion(self, object_type: str, object_id: str, occurred_at: datetime) -> None:
        self._queue(object_type, object_id, "deletion", occurred_at)

    def record_merge(self, object_type: str, primary_id: str, merged_ids: list[str],
                     occurred_at: datetime, new_object_id: str | None = None) -> None:
        """Queue a ``<object>.merge`` event naming the survivor and the merged ids."""
        self._queue(object_type, primary_id, "merge", occurred_at,
                    primaryObjectId=int(primary_id) if primary_id.isdigit() else primary_id,
                    mergedObjectIds=[int(i) if i.isdigit() else i for i in merged_ids],
                    newObjectId=int(new_object_id or primary_id))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Deliver everything queued; answer how many events the target accepted.

        Each batch is tried up to ``1 + retries_per_flush`` times; what still fails stays
        queued for the next flush until ``max_attempts`` are spent. 4xx answers other than
        429 are not retried, as HubSpot does not retry them; a 429 waits for the next flush.
        """
        with self._lock:
            events, self._pending = self._pending, []
        if self._random is not None:
            self._random.shuffle(events)
        delivered = 0
        keep: list[dict[str, Any]] = []
        for start in range(0, len(events), self.max_batch):
            batch = events[start:start + self.max_batch]
            status = None
            for _ in range(1 + self.retries_per_flush):
                status = self._post(batch)
                if status is not None and 200 <= status < 300:
                    break
                for event in batch:
                    event["attemptNumber"] += 1
                if status in NOT_RETRIED or status == 429:
                    break
            if status is not None and 200 <= status < 300:
                delivered += len(batch)
                self._delivered += len(batch)
                keep.extend(self._duplicates(batch))
            elif status in NOT_RETRIED:
                self.abandoned.extend(batch)
            else:
                for event in batch:
                    (keep if event["attemptNumber"] < self.max_attempts
                     else self.abandoned).append(event)
        with self._lock:
            self._pending = keep + self._pending
        return delivered

    def _duplicates(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of delivered events to send again, as HubSpot's at-least-once delivery may."""
        if self.duplicate_every <= 0:
            return []
        first = self._delivered - len(batch)
        return [{**e, "_duplicate": True} for i, e in enumerate(batch, start=first + 1)
                if i % self.duplicate_every == 0 and not e.get("_duplicate")]

    def _post(self, batch: list[dict[str, Any]]) -> int | None:
        """One signed POST; the HTTP status, or None when the target could not be reached."""
        wire = [{k: v for k, v in e.items() if not k.startswith("_")} for e in batch]
        body = json.dumps(wire, separators=(",", ":")).encode()
        timestamp = int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
            "X-HubSpot-Signature-v3": sign_v3(self.client_secret, "POST", self.target_url, body,
                                              timestamp),
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Request-Timestamp": str(timestamp),
        }
        # http.client keeps header names as written, as HubSpot's own sender does
        target = urlsplit(self.target_url)
        kind = (http.client.HTTPSConnection if target.scheme == "https"
                else http.client.HTTPConnection)
        conn = kind(target.hostname or "127.0.0.1", target.port, timeout=self.timeout)
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        try:
            conn.request("POST", path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            return int(answer.status)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
