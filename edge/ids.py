"""Globally unique, time-ordered record ids (ULID, Crockford base32, 26 characters).

Every record gets its id when the store first accepts it; upstream, the id is the record's
idempotency key. Ids must sort by acceptance time so that (a) the store's primary-key B-tree
grows only at its right edge (random UUID4 keys cost SQLite about 7x in ingest rate) and
(b) the outbox drains oldest first by simply walking the key order.

Why not the ``python-ulid`` package: it draws fresh randomness per id, so two ids minted in
the same millisecond are not ordered. Ordering inside a millisecond matters here (thousands of
readings per millisecond during a batch), so we implement the spec's *monotonic* variant:
within one millisecond the 80-bit random part is incremented by one. It is 30 lines and
needs no dependency.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1


def _encode(value: int) -> str:
    """Encode a 128-bit integer as 26 Crockford base32 characters (big-endian)."""
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class UlidFactory:
    """Mints monotonic ULIDs. Thread-safe; one per process is enough (see ``new_id``)."""

    def __init__(self, clock_ms: callable = lambda: time.time_ns() // 1_000_000) -> None:  # type: ignore[valid-type]
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        return self.new_many(1)[0]

    def new_many(self, count: int) -> list[str]:
        """Return ``count`` strictly increasing ids (cheaper than ``count`` calls to ``new``)."""
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms = now
                # Keep headroom so a burst inside one millisecond cannot overflow.
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 2
            elif self._last_random + count > _RANDOM_MAX:
                # Overflow inside one millisecond: borrow the next millisecond (spec allows failing; we don't).
                self._last_ms += 1
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 2
            base = (self._last_ms << _RANDOM_BITS) | self._last_random
            self._last_random += count
        return [_encode(base + i + 1) for i in range(count)]


_DEFAULT = UlidFactory()


def new_id() -> str:
    """A fresh process-wide monotonic ULID."""
    return _DEFAULT.new()


def new_ids(count: int) -> list[str]:
    """``count`` fresh, strictly increasing ULIDs."""
    return _DEFAULT.new_many(count)


def ulid_time_ms(ulid: str) -> int:
    """Milliseconds since the epoch encoded in a ULID's first 10 characters."""
    value = 0
    for ch in ulid[:10]:
        value = (value << 5) | _ALPHABET.index(ch)
    return value
