"""Digest mode for P2: messages to one receiver are collected and sent as one per interval.

A bucket opens with its first item and is due ``digest_interval`` seconds later; items
are keyed by the idempotency key their own message would have had, so a replayed item
is not collected twice and the digest's key (from its item keys) is stable.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from stream.incidents.routing import Receiver


def bucket_key(receiver: Receiver) -> str:
    """One bucket per receiver (name and url: two models may each define a receiver of the same name)."""
    return f"{receiver.name}@{zlib.crc32(receiver.url.encode()):08x}"


def bucket_partition(receiver: Receiver, partitions: int) -> int:
    """All items for a receiver meet in one partition, whichever alerts partition they came from."""
    return zlib.crc32(bucket_key(receiver).encode()) % partitions


@dataclass
class DigestBucket:
    receiver: dict[str, str]
    opened_at: float
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, item_key: str, item: dict[str, Any]) -> bool:
        """Collect an item; False if it is already there (a replay)."""
        if item_key in self.items:
            return False
        self.items[item_key] = item
        return True

    def due(self, now: float, interval: float) -> bool:
        return bool(self.items) and now - self.opened_at >= interval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DigestBucket":
        return cls(**data)
