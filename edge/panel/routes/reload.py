"""Asking the daemon to apply a saved config (its SIGHUP path), shared by zone saves and uploads."""

from __future__ import annotations

import logging

from fastapi import Request

from edge.panel.security import ctx_of

log = logging.getLogger(__name__)


async def reload_daemon(request: Request) -> tuple[bool, str | None]:
    """(reloaded, error). Without a reload hook (panel run on its own) there is nothing to reload: True.

    The daemon's reload returns None when it refused the config (it keeps the running one); that is
    reported, though it should not happen: the panel validated the file with the same loader.
    """
    hook = ctx_of(request).hooks.reload
    if hook is None:
        return True, None
    try:
        result = await hook()
    except Exception as exc:
        log.exception("panel: daemon reload failed")
        return False, f"{type(exc).__name__}: {exc}"
    if result is None:
        return False, "the daemon refused the new config and keeps the running one (see its log)"
    return True, None
