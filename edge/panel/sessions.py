"""Server-side sessions: the cookie holds a random token, the database only its SHA-256.

Session fixation is prevented by construction: a session id is only ever minted by ``create`` at
the moment of a successful login, whatever cookie the browser sent before (that one is deleted if
it was a session at all). Each session carries its own random CSRF token. Sessions end after
``idle`` without use or ``max_age`` after login, on logout, and for every session of a user whose
password, role or enabled flag changes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from edge.clock import Clock, to_us
from edge.panel.schema import PANEL_COMPONENT
from edge.store import Store

_TOUCH_EVERY_US = 60_000_000  # write last_seen at most once a minute per session, not per request


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user_id: str
    csrf_token: str
    created_us: int
    last_seen_us: int
    expires_us: int


class SessionStore:
    def __init__(self, store: Store, clock: Clock, *, idle: timedelta, max_age: timedelta) -> None:
        self.db = store.tables(PANEL_COMPONENT, ("panel_sessions",))
        self.clock = clock
        self.idle_us = int(idle.total_seconds() * 1e6)
        self.max_age_us = int(max_age.total_seconds() * 1e6)

    async def create(self, user_id: str, ip: str, user_agent: str) -> tuple[str, Session]:
        """Mint a new session; returns (cookie token, session)."""
        token = secrets.token_urlsafe(32)
        now = to_us(self.clock.now())
        session = Session(token_hash(token), user_id, secrets.token_urlsafe(32), now, now, now + self.max_age_us)
        await self.db.write(
            "INSERT INTO panel_sessions VALUES (?,?,?,?,?,?,?,?)",
            [(session.token_hash, user_id, session.csrf_token, now, now, session.expires_us, ip[:64],
              user_agent[:256])],
        )
        return token, session

    async def lookup(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, idle too long, or past its max age)."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        row = await self.db.read_one(
            "SELECT token_hash, user_id, csrf_token, created_us, last_seen_us, expires_us FROM panel_sessions"
            " WHERE token_hash=?", (digest,)
        )
        if row is None:
            return None
        session = Session(*row)
        now = to_us(self.clock.now())
        if now >= session.expires_us or now - session.last_seen_us >= self.idle_us:
            await self.db.write("DELETE FROM panel_sessions WHERE token_hash=?", [(digest,)])
            return None
        if now - session.last_seen_us >= _TOUCH_EVERY_US:
            await self.db.write(
                "UPDATE panel_sessions SET last_seen_us=? WHERE token_hash=?", [(now, digest)]
            )
        return session

    async def delete(self, token: str | None) -> None:
        if token and len(token) <= 128:
            await self.db.write("DELETE FROM panel_sessions WHERE token_hash=?", [(token_hash(token),)])

    async def delete_for_user(self, user_id: str, keep_hash: str | None = None) -> None:
        """End every session of a user (password or role change), optionally keeping the current one."""
        await self.db.write(
            "DELETE FROM panel_sessions WHERE user_id=? AND token_hash<>?", [(user_id, keep_hash or "")]
        )

    async def purge_expired(self) -> None:
        now = to_us(self.clock.now())
        await self.db.write(
            "DELETE FROM panel_sessions WHERE expires_us<=? OR last_seen_us<=?", [(now, now - self.idle_us)]
        )

    async def active_count(self) -> int:
        now = to_us(self.clock.now())
        row = await self.db.read_one(
            "SELECT count(*) FROM panel_sessions WHERE expires_us>? AND last_seen_us>?", (now, now - self.idle_us)
        )
        return int(row[0]) if row else 0
