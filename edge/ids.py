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
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 characters
_LOW_BITS = 40  # the last 8 characters; only these change inside one batch (barring a carry)
_LOW_MASK = (1 << _LOW_BITS) - 1


def _encode_bits(value: int, pairs: int) -> str:
    """Encode the low ``pairs * 10`` bits of ``value`` as ``pairs * 2`` Crockford characters."""
    out = []
    for shift in range((pairs - 1) * 10, -1, -10):
        out.append(_PAIRS[(value >> shift) & 1023])
    return "".join(out)


def _encode(value: int) -> str:
    """Encode a 128-bit integer as 26 Crockford base32 characters (big-endian, top 2 bits zero)."""
    return _encode_bits(value, 13)


class UlidFactory:
    """Mints monotonic ULIDs. Thread-safe; one per process is enough (see ``new_id``)."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
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
        first, last = base + 1, base + count
        if first >> _LOW_BITS != last >> _LOW_BITS:  # a carry crosses the shared prefix: rare, do it slowly
            return [_encode(v) for v in range(first, last + 1)]
        # The first 18 characters are shared by the whole batch; encode them once.
        prefix = _encode_bits(first >> _LOW_BITS, 9)
        pairs = _PAIRS
        low = first & _LOW_MASK
        return [
            prefix + pairs[(v >> 30) & 1023] + pairs[(v >> 20) & 1023] + pairs[(v >> 10) & 1023] + pairs[v & 1023]
            for v in range(low, low + count)
        ]


_DEFAULT = UlidFactory()


def new_id() -> str:
    """A fresh process-wide monotonic ULID."""
    return _DEFAULT.new()


def new_ids(count: int) -> list[str]:
    """``count`` fresh, strictly increasing ULIDs."""
    return _DEFAULT.new_many(count)


def ulid_floor(ms: int) -> str:
    """The smallest ULID minted at or after ``ms``: compare ids with it to cut by time."""
    return _encode(ms << _RANDOM_BITS)
