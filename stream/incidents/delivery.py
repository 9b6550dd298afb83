"""Webhook delivery: what to send, the idempotency key, retries with backoff and jitter.

Delivery is at-least-once: a request is published to the deliveries topic before the
incident state that caused it is stored, and the delivery agent may POST it again after
a crash. Each request carries an idempotency key, the same for every retry and every
replay, in the ``Idempotency-Key`` header and in the body, so receivers drop repeats.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from stream.incidents.lifecycle import hex_id

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def idempotency_key(incident_id: str, receiver: str, announcement: str, ordinal: int) -> str:
    """Stable per incident + receiver + event: the ordinal counts events of that kind in the incident (1st reopen, 2nd reopen, ...)."""
    return hex_id("delivery", incident_id, receiver, announcement, ordinal)


def digest_idempotency_key(receiver: str, item_keys: list[str]) -> str:
    """A digest is identified by what it contains."""
    return hex_id("digest", receiver, sorted(item_keys))


@dataclass(frozen=True)
class DeliveryRequest:
    idempotency_key: str
    receiver: str
    receiver_type: str
    url: str
    body: Any
    incident_ids: list[str]
    announcement: str  # an Announcement, or "digest"
    suppressed: str | None  # "silenced" or "quiet_hours": recorded in the delivery log, not sent
    requested_at: float

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "DeliveryRequest":
        return cls(**orjson.loads(raw))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 10.0


def backoff_delays(policy: RetryPolicy, rng: random.Random) -> list[float]:
    """Waits before attempts 2..n: exponential, capped, with "equal jitter" (half fixed, half random)."""
    delays = []
    for retry in range(policy.attempts - 1):
        ceiling = min(policy.max_delay, policy.base_delay * 2**retry)
        delays.append(ceiling / 2 + rng.uniform(0, ceiling / 2))
    return delays


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: str  # "delivered" or "failed"
    attempts: int
    status_code: int | None
    error: str | None


async def post_with_retries(
    session: aiohttp.ClientSession,
    request: DeliveryRequest,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DeliveryOutcome:
    """POST until a 2xx, a non-retryable answer, or the attempts run out."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": request.idempotency_key, "User-Agent": "driftline-incidents"}
    body = orjson.dumps(request.body)
    delays = backoff_delays(policy, rng)
    status: int | None = None
    error: str | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            async with session.post(request.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=policy.timeout)) as response:
                status, error = response.status, None
                if 200 <= status < 300:
                    return DeliveryOutcome("delivered", attempt, status, None)
                error = f"HTTP {status}: {(await response.text())[:200]}"
                if status not in RETRYABLE_STATUS:
                    return DeliveryOutcome("failed", attempt, status, error)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:300]
        if attempt < policy.attempts:
            await sleep(delays[attempt - 1])
    return DeliveryOutcome("failed", policy.attempts, status, error)
