"""The one-time setup token that creates the first admin (never a default password).

On a start with no accounts, the panel mints a random token and prints it to the log once; whoever
can read the gateway's log (physical or SSH access) can open ``/setup`` and create the first admin
with it. The token lives only in memory: a restart before setup mints a new one, and it is gone the
moment an account exists. It is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import secrets

log = logging.getLogger(__name__)


class SetupToken:
    def __init__(self) -> None:
        self._token: str | None = None

    @property
    def active(self) -> bool:
        return self._token is not None

    def issue(self, url: str) -> str:
        self._token = secrets.token_urlsafe(18)
        # Printed on purpose (issue 6): this is how the installer proves access to the gateway.
        log.warning("panel: no accounts yet. Create the first admin at %s/setup with the one-time setup token: %s",
                    url.rstrip("/"), self._token)
        return self._token

    def check(self, token: str) -> bool:
        return self._token is not None and hmac.compare_digest(self._token.encode(), token.strip().encode())

    def consume(self) -> None:
        self._token = None
