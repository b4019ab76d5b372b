"""Panel accounts in the ``panel_users`` table: create, look up, count failures, change.

There is no account lock-out: wrong passwords are slowed down per account and source address by
``edge.panel.throttle`` (a lock anyone could trigger locked the only admin out). ``failed_logins``
still counts wrong passwords in a row for the users page; ``locked_until_us`` is only ever set by
older versions and is honoured until it expires or an admin unlocks. All writes go through the
store's group-commit writer, so they are durable when these methods return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.clock import Clock, to_us
from edge.ids import new_id
from edge.panel.passwords import Passwords
from edge.panel.roles import Role
from edge.panel.schema import PANEL_COMPONENT
from edge.store import Store
from edge.store.connection import SqlRow

USERNAME_RE = re.compile(r"^[\w.@\-]{1,64}$")

_COLUMNS = "user_id, username, role, enabled, failed_logins, locked_until_us, created_us, last_login_us, password_hash"


class UserError(ValueError):
    """A user operation was refused; ``code`` is an i18n key for the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    role: Role
    enabled: bool
    failed_logins: int
    locked_until_us: int | None
    created_us: int
    last_login_us: int | None
    password_hash: str

    def locked(self, now_us: int) -> bool:
        return self.locked_until_us is not None and self.locked_until_us > now_us


def _user(row: SqlRow) -> User:
    return User(row[0], row[1], Role(row[2]), bool(row[3]), int(row[4]), row[5], int(row[6]), row[7], row[8])


class UserStore:
    def __init__(self, store: Store, passwords: Passwords, clock: Clock, *, extra_words: tuple[str, ...] = ()) -> None:
        """``extra_words``: what a guesser of this gateway tries first (the estate's name and id)."""
        self.db = store.tables(PANEL_COMPONENT, ("panel_users",))
        self.passwords = passwords
        self.clock = clock
        self.extra_words = extra_words

    async def count(self) -> int:
        row = await self.db.read_one("SELECT count(*) FROM panel_users")
        return int(row[0]) if row else 0

    async def get(self, user_id: str) -> User | None:
        row = await self.db.read_one(f"SELECT {_COLUMNS} FROM panel_users WHERE user_id=?", (user_id,))  # noqa: S608
        return _user(row) if row else None

    async def by_name(self, username: str) -> User | None:
        row = await self.db.read_one(f"SELECT {_COLUMNS} FROM panel_users WHERE username=?", (username,))  # noqa: S608
        return _user(row) if row else None

    async def all(self) -> list[User]:
        return [_user(r) for r in await self.db.read(f"SELECT {_COLUMNS} FROM panel_users ORDER BY username")]  # noqa: S608

    async def create(self, username: str, password: str, role: Role) -> User:
        if not USERNAME_RE.match(username):
            raise UserError("user.bad_name", "user name: 1-64 letters, digits, '.', '_', '-', '@'")
        if await self.by_name(username) is not None:
            raise UserError("user.exists", f"user {username!r} already exists")
        self.passwords.check_policy(password, username, self.extra_words)
        now = to_us(self.clock.now())
        password_hash = await self.passwords.hash(password)
        await self.db.write(
            "INSERT INTO panel_users(user_id, username, password_hash, role, enabled, failed_logins, created_us,"
            " password_changed_us) VALUES (?,?,?,?,1,0,?,?)",
            [(new_id(), username, password_hash, str(role), now, now)],
        )
        user = await self.by_name(username)
        assert user is not None
        return user

    async def set_password(self, user: User, password: str) -> None:
        self.passwords.check_policy(password, user.username, self.extra_words)
        password_hash = await self.passwords.hash(password)
        await self.db.write(
            "UPDATE panel_users SET password_hash=?, password_changed_us=?, failed_logins=0, locked_until_us=NULL"
            " WHERE user_id=?",
            [(password_hash, to_us(self.clock.now()), user.user_id)],
        )

    async def set_role(self, user: User, role: Role) -> None:
        if user.role is Role.ADMIN and role is not Role.ADMIN:
            await self._keep_an_admin(user)
        await self.db.write("UPDATE panel_users SET role=? WHERE user_id=?", [(str(role), user.user_id)])

    async def set_enabled(self, user: User, enabled: bool) -> None:
        if not enabled and user.role is Role.ADMIN:
            await self._keep_an_admin(user)
        await self.db.write(
            "UPDATE panel_users SET enabled=? WHERE user_id=?", [(int(enabled), user.user_id)]
        )

    async def unlock(self, user: User) -> None:
        await self.db.write(
            "UPDATE panel_users SET failed_logins=0, locked_until_us=NULL WHERE user_id=?", [(user.user_id,)]
        )

    async def delete(self, user: User) -> None:
        if user.role is Role.ADMIN:
            await self._keep_an_admin(user)
        await self.db.write("DELETE FROM panel_users WHERE user_id=?", [(user.user_id,)])

    async def _keep_an_admin(self, user: User) -> None:
        row = await self.db.read_one(
            "SELECT count(*) FROM panel_users WHERE role='admin' AND enabled=1 AND user_id<>?", (user.user_id,)
        )
        if not row or int(row[0]) == 0:
            raise UserError("user.last_admin", "the last enabled admin cannot be removed, disabled or demoted")

    async def login_failed(self, user: User) -> None:
        """Count a wrong password (shown on the users page; the throttle decides about waiting)."""
        await self.db.write(
            "UPDATE panel_users SET failed_logins=failed_logins+1 WHERE user_id=?", [(user.user_id,)]
        )

    async def login_succeeded(self, user: User, password: str) -> None:
        """Reset the failure count; upgrade the hash if the hashing parameters changed since it was made."""
        await self.db.write(
            "UPDATE panel_users SET failed_logins=0, locked_until_us=NULL, last_login_us=? WHERE user_id=?",
            [(to_us(self.clock.now()), user.user_id)],
        )
        if self.passwords.needs_rehash(user.password_hash):
            password_hash = await self.passwords.hash(password)
            await self.db.write(
                "UPDATE panel_users SET password_hash=? WHERE user_id=?", [(password_hash, user.user_id)]
            )
