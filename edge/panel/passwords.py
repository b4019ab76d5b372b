"""Password hashing with Argon2id (argon2-cffi) and the password policy.

Why Argon2id with argon2-cffi's defaults (RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4): it is
the memory-hard winner of the Password Hashing Competition, and 64 MiB per login attempt is affordable
on a gateway while making offline guessing of a stolen database expensive. Hashing takes tens of
milliseconds of CPU, so it runs in a worker thread and never stalls the event loop (acquisition shares
it). Tests may pass cheaper parameters; production never does.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordPolicyError(ValueError):
    """The new password is too weak; the message says why (shown to the user)."""


class Passwords:
    """Hash and verify passwords off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None, min_length: int = 10) -> None:
        self.hasher = hasher or PasswordHasher()
        self.min_length = min_length
        # Verifying against this when the user does not exist keeps the timing of "no such user"
        # equal to "wrong password", so login answers do not reveal which accounts exist.
        self._dummy = self.hasher.hash("estate-edge: no such user")

    def check_policy(self, password: str, username: str = "") -> None:
        if len(password) < self.min_length:
            raise PasswordPolicyError(f"at least {self.min_length} characters")
        if len(password) > 256:
            raise PasswordPolicyError("at most 256 characters")
        if username and password.lower() == username.lower():
            raise PasswordPolicyError("must differ from the user name")
        if len(set(password)) < 4:
            raise PasswordPolicyError("too few distinct characters")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; False otherwise (also for a corrupt hash or no user)."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
