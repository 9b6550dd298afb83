"""Webhook delivery: the idempotency key recipe, backoff with jitter, retries against a local server."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from stream.incidents.delivery import DeliveryRequest, RetryPolicy, backoff_delays, digest_idempotency_key, idempotency_key, post_with_retries
from tests.incidents.incident_helpers import WebhookReceiver, free_port


def test_idempotency_key_is_stable_and_differs_per_incident_receiver_event_and_ordinal():
    key = idempotency_key("i" * 32, "slack", "opened", 1)
    assert key == idempotency_key("i" * 32, "slack", "opened", 1) and len(key) == 32
    others = {
        idempotency_key("j" * 32, "slack", "opened", 1), idempotency_key("i" * 32, "pager", "opened", 1),
        idempotency_key("i" * 32, "slack", "resolved", 1), idempotency_key("i" * 32, "slack", "opened", 2),
    }
    assert key not in others and len(others) == 4
    assert digest_idempotency_key("team", ["b", "a"]) == digest_idempotency_key("team", ["a", "b"]) != digest_idempotency_key("team", ["a"])


def test_backoff_grows_exponentially_within_its_cap_with_jitter():
    policy = RetryPolicy(attempts=8, base_delay=1.0, max_delay=10.0)
    delays = backoff_delays(policy, random.Random(1))
    ceilings = [1, 2, 4, 8, 10, 10, 10]
    assert len(delays) == 7
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings))
    assert backoff_delays(policy, random.Random(2)) != delays, "jitter spreads retries of many senders"


def _request(url: str) -> DeliveryRequest:
    return DeliveryRequest("k" * 32, "team", "webhook", url, {"hello": "world"}, ["i" * 32], "opened", None, 0.0)


async def _post(url: str, policy: RetryPolicy) -> tuple:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    async with aiohttp.ClientSession() as session:
        outcome = await post_with_retries(session, _request(url), policy, random.Random(0), record_sleep)
    return outcome, waits


def test_retries_after_server_errors_then_delivers_with_the_same_key():
    receiver = WebhookReceiver(fail_first=2)
    try:
        outcome, waits = asyncio.run(_post(f"{receiver.url}/hook", RetryPolicy(attempts=4, base_delay=0.01)))
        assert (outcome.outcome, outcome.attempts, outcome.status_code) == ("delivered", 3, 200)
        assert len(waits) == 2 and waits[1] > waits[0] / 2
        [request] = receiver.requests
        assert request.idempotency_key == "k" * 32 and request.body == {"hello": "world"}
    finally:
        receiver.close()


def test_gives_up_after_the_attempts_when_nobody_listens():
    outcome, waits = asyncio.run(_post(f"http://127.0.0.1:{free_port()}/hook", RetryPolicy(attempts=3, base_delay=0.01, timeout=2)))
    assert (outcome.outcome, outcome.attempts, outcome.status_code) == ("failed", 3, None)
    assert "ClientConnectorError" in outcome.error and len(waits) == 2


@pytest.mark.parametrize("status, attempts", [(400, 1), (404, 1), (503, 3), (429, 3)])
def test_only_server_errors_and_throttling_are_retried(status, attempts):
    receiver = WebhookReceiver(fail_first=100, fail_status=status)
    try:
        outcome, _ = asyncio.run(_post(f"{receiver.url}/hook", RetryPolicy(attempts=3, base_delay=0.01)))
        assert (outcome.outcome, outcome.attempts, outcome.status_code) == ("failed", attempts, status)
        assert receiver.failed == attempts
    finally:
        receiver.close()
