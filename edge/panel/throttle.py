"""Login throttling: growing delays per account and source instead of an account lock-out.

Why not lock accounts: a lock that anyone who can reach the login page triggers with a few wrong
passwords is a denial of service against the control room (five tries from changing addresses used
to lock the only admin out for 15 minutes). Guessing is stopped just as well by making every
further try wait, and the wait can be aimed at the guesser:

- per (account, source address): after ``free_failures`` wrong passwords in a row, each further
  try must wait ``base_delay_s``, then twice as long after each failure, up to ``max_delay_s``.
  A guesser at one address is slowed to a handful of tries an hour; nobody else notices.
- per account, all addresses together: after ``account_free_failures`` the account waits too (a
  guesser rotating addresses), but only for addresses that have never logged in to it, and only
  up to ``account_max_delay_s``. The staff's own PC (an address that logged in successfully within
  ``trust_for_s``) keeps its own, untouched budget, so an attack never locks the staff out.

A try during a wait is answered 429 with ``Retry-After`` without checking the password, and is
not counted (a user retrying does not lengthen their own wait). A right password ends the streak of
its (account, address) pair. Streaks are forgotten ``forget_after_s`` after their last failure, and
an admin can lift every wait of an account. Unknown user names are throttled exactly like real ones,
so the answers do not reveal which accounts exist.

``failed`` returns a ``ThrottleStart`` when a streak begins to wait (once per streak, not once per
try): the panel records it as the ``panel.login_throttled`` security event that staff see.

State is in memory and bounded (``max_keys`` entries per table, least recently used dropped); a
restart forgets it, which costs an attacker at most one more round of free failures.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from edge.clock import Clock

Scope = Literal["source", "account"]


@dataclass(slots=True)
class _Streak:
    failures: int = 0
    last_failure: float = 0.0
    until: float = 0.0  # monotonic seconds; tries before this wait
    reported: bool = False


@dataclass(frozen=True, slots=True)
class ThrottleStart:
    """A streak began to wait: who, from where, after how many failures, for how long (seconds)."""

    username: str
    ip: str
    scope: Scope
    failures: int
    delay_s: float


class _Table:
    """An LRU-bounded map of streaks."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.items: OrderedDict[tuple[str, ...], _Streak] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> _Streak | None:
        return self.items.get(key)

    def upsert(self, key: tuple[str, ...]) -> _Streak:
        streak = self.items.get(key)
        if streak is None:
            streak = self.items[key] = _Streak()
            while len(self.items) > self.max_keys:
                self.items.popitem(last=False)
        else:
            self.items.move_to_end(key)
        return streak


class LoginThrottle:
    def __init__(self, clock: Clock, *, free_failures: int = 3, max_delay_s: float = 900.0,
                 account_free_failures: int = 10, account_max_delay_s: float = 60.0, base_delay_s: float = 2.0,
                 forget_after_s: float | None = None, trust_for_s: float = 30 * 86400.0,
                 max_keys: int = 10_000) -> None:
        self.clock = clock
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.account_free_failures = account_free_failures
        self.account_max_delay_s = account_max_delay_s
        self.base_delay_s = base_delay_s
        self.forget_after_s = forget_after_s if forget_after_s is not None else max(3600.0, 2 * max_delay_s)
        self.trust_for_s = trust_for_s
        self._pairs = _Table(max_keys)
        self._accounts = _Table(max_keys)
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max_keys = max_keys

    @staticmethod
    def _name(username: str) -> str:
        return username.strip().lower()[:64]

    def _live(self, table: _Table, key: tuple[str, ...], now: float) -> _Streak | None:
        streak = table.get(key)
        if streak is not None and now - streak.last_failure >= self.forget_after_s and now >= streak.until:
            del table.items[key]
            return None
        return streak

    def _trusted_source(self, name: str, ip: str, now: float) -> bool:
        since = self._trusted.get((name, ip))
        return since is not None and now - since < self.trust_for_s

    def wait(self, username: str, ip: str) -> float | None:
        """Seconds this try must still wait, or None when the password may be checked now."""
        now = self.clock.monotonic()
        name = self._name(username)
        waits = []
        pair = self._live(self._pairs, (name, ip), now)
        if pair is not None:
            waits.append(pair.until - now)
        account = self._live(self._accounts, (name,), now)
        if account is not None and not self._trusted_source(name, ip, now):
            waits.append(account.until - now)
        longest = max(waits, default=0.0)
        return longest if longest > 0 else None

    def _delay(self, failures: int, free: int, cap: float) -> float:
        beyond = failures - free
        if beyond <= 0:
            return 0.0
        return float(min(cap, self.base_delay_s * 2 ** min(beyond - 1, 30)))

    def failed(self, username: str, ip: str) -> list[ThrottleStart]:
        """Count a wrong password; returns the streaks that began to wait with it (for the security event)."""
        now = self.clock.monotonic()
        name = self._name(username)
        started: list[ThrottleStart] = []
        scopes: tuple[tuple[Scope, _Table, tuple[str, ...], int, float], ...] = (
            ("source", self._pairs, (name, ip), self.free_failures, self.max_delay_s),
            ("account", self._accounts, (name,), self.account_free_failures, self.account_max_delay_s),
        )
        for scope, table, key, free, cap in scopes:
            self._live(table, key, now)
            streak = table.upsert(key)
            streak.failures += 1
            streak.last_failure = now
            delay = self._delay(streak.failures, free, cap)
            if delay > 0:
                streak.until = now + delay
                if not streak.reported:
                    streak.reported = True
                    started.append(ThrottleStart(username, ip, scope, streak.failures, delay))
        return started

    def succeeded(self, username: str, ip: str) -> None:
        """A right password: this pair's streak ends and the address is trusted for this account."""
        name = self._name(username)
        self._pairs.items.pop((name, ip), None)
        self._trusted[(name, ip)] = self.clock.monotonic()
        self._trusted.move_to_end((name, ip))
        while len(self._trusted) > self._max_keys:
            self._trusted.popitem(last=False)

    def clear(self, username: str) -> None:
        """An admin lifts every wait of an account (its streaks from all addresses)."""
        name = self._name(username)
        self._accounts.items.pop((name,), None)
        for key in [k for k in self._pairs.items if k[0] == name]:
            del self._pairs.items[key]

    def throttled(self, username: str) -> bool:
        """True while some address must wait before trying this account again (shown on the users page)."""
        now = self.clock.monotonic()
        name = self._name(username)
        return any(streak.until > now for key, streak in [*self._pairs.items.items(), *self._accounts.items.items()]
                   if key[0] == name)
