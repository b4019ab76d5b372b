"""Password hashing with Argon2id (argon2-cffi) and the password policy.

Why Argon2id with argon2-cffi's defaults (RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4): it is
the memory-hard winner of the Password Hashing Competition, and 64 MiB per login attempt is affordable
on a gateway while making offline guessing of a stolen database expensive. Hashing takes tens of
milliseconds of CPU, so it runs in a worker thread and never stalls the event loop (acquisition shares
it). Tests may pass cheaper parameters; production never does.

Policy: a length floor is not a strength estimate (``1234567890`` has ten characters). New passwords
are scored with zxcvbn (MIT licence: Dropbox's estimator, ported to Python), which counts the guesses
an attacker who knows common passwords, dictionary words, keyboard walks, sequences, repeats and
dates needs; we ask for at least ``MIN_GUESSES_LOG10`` (10^10 guesses: years of offline Argon2id
work, and out of reach online behind the login throttle). Its dictionaries are English, so the
user name, the estate's name and ``LOCAL_WEAK_WORDS`` (pinyin and number patterns common in Chinese
password leaks) are added as extra words. Refusals carry an i18n key (``code``) so the panel explains
them in the user's language; ``str(exc)`` is English for logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_GUESSES_LOG10 = 10.0
MAX_LENGTH = 256
_SCORED_LENGTH = 72  # zxcvbn's own cap: the rest of a long password only adds strength

# Frequent in Chinese password leaks and absent from zxcvbn's English lists (pinyin words, common
# surnames, "lucky" and love-code numbers). Earlier entries count as more common.
LOCAL_WEAK_WORDS: tuple[str, ...] = (
    "woaini", "5201314", "1314520", "520520", "woaini1314", "aini", "wodemima", "mima", "zhongguo", "beijing",
    "shanghai", "qq", "qwe", "147258369", "123qwe", "qweasd", "asdzxc", "88888888", "66666666", "168168",
    "zhang", "wang", "li", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun", "hu", "zhu", "gao",
    "lin", "he", "guo", "ma", "luo", "liang", "song", "zheng", "xie", "han", "tang", "feng", "yu", "dong", "xiao",
    "wei", "ming", "hua", "jun", "jie", "lei", "tao", "yan", "hong", "ping", "gang", "ying", "xiaoming", "wuye",
    "xiaoqu", "huayuan", "guanli", "admin", "estate", "edge", "panel", "gateway",
)

_PATTERN_CODES = {
    "spatial": "password.keyboard",
    "repeat": "password.repeat",
    "sequence": "password.sequence",
    "date": "password.date",
    "regex": "password.date",  # zxcvbn's only regex is "recent year"
}


class PasswordPolicyError(ValueError):
    """The new password is refused. ``code`` is an i18n key (shown translated), ``params`` its values."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def _weakness(result: dict[str, Any], user_words: Sequence[str]) -> tuple[str, str]:
    """The i18n key and English reason for the pattern that makes a password guessable."""
    user = {w.lower() for w in user_words if w}
    for match in result.get("sequence", ()):
        if match.get("pattern") == "dictionary" and match.get("dictionary_name") == "user_inputs" \
                and match.get("matched_word", "").lower() in user:
            return "password.user_name", "contains the user name or the estate's name"
    patterns = [m.get("pattern") for m in result.get("sequence", ())]
    for pattern in ("spatial", "repeat", "sequence", "date", "regex"):
        if pattern in patterns:
            return _PATTERN_CODES[pattern], f"built from a guessable {pattern} pattern"
    if "dictionary" in patterns:
        return "password.common", "a common password or word, or a simple variation of one"
    return "password.guessable", "too easy to guess"


class Passwords:
    """Hash and verify passwords off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None, min_length: int = 10) -> None:
        self.hasher = hasher or PasswordHasher()
        self.min_length = min_length
        # Verifying against this when the user does not exist keeps the timing of "no such user"
        # equal to "wrong password", so login answers do not reveal which accounts exist.
        self._dummy = self.hasher.hash("estate-edge: no such user")

    def check_policy(self, password: str, username: str = "", extra_words: Sequence[str] = ()) -> None:
        """Refuse a password that is short or guessable (``PasswordPolicyError`` says which, as an i18n key).

        ``extra_words`` are words an attacker of this gateway would try first (the estate's name).
        """
        if len(password) < self.min_length:
            raise PasswordPolicyError("password.too_short", f"at least {self.min_length} characters",
                                      n=self.min_length)
        if len(password) > MAX_LENGTH:
            raise PasswordPolicyError("password.too_long", f"at most {MAX_LENGTH} characters", n=MAX_LENGTH)
        if username and username.lower() in password.lower():
            raise PasswordPolicyError("password.user_name", "contains the user name")
        user_words = [w for w in (username, *extra_words) if w]
        result = zxcvbn(password[:_SCORED_LENGTH], user_inputs=[*user_words, *LOCAL_WEAK_WORDS],
                        max_length=_SCORED_LENGTH)
        if float(result["guesses_log10"]) < MIN_GUESSES_LOG10:
            code, reason = _weakness(result, user_words)
            raise PasswordPolicyError(code, f"{reason} (about 10^{result['guesses_log10']:.0f} guesses)")

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
