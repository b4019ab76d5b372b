"""Login rate limiting per client address (a sliding one-minute window, in memory).

This complements the per-account lock-out in ``users``: the lock-out stops guessing one account's
password; the rate limit stops one address from trying many accounts (and from locking them all
out quickly). Memory is bounded: at most ``max_keys`` addresses are tracked, the stalest dropped.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from edge.clock import Clock


class LoginRateLimiter:
    def __init__(self, per_minute: int, clock: Clock, *, window_s: float = 60.0, max_keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        hits = self._hits.get(key)
        if not hits:
            return None
        now = self.clock.monotonic()
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) < self.per_minute:
            return None
        return max(0.1, self.window_s - (now - hits[0]))

    def hit(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(self.clock.monotonic())
