"""The audit log: every action taken through the panel (who, what, when, from where, and whether it worked).

Rows go through the store's group-commit writer and are committed before the action's response
is sent, so a logged-out browser can not hide an action from the log. Admins read it in the panel
(``/admin/audit``) and through the API; nothing in the panel can edit or delete it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge.clock import Clock, to_us
from edge.ids import new_id
from edge.panel.schema import PANEL_COMPONENT
from edge.store import Store


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    ts_us: int
    username: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str
    ok: bool


class AuditLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.db = store.tables(PANEL_COMPONENT, ("panel_audit",))
        self.clock = clock

    async def record(self, username: str, action: str, target: str = "", *, ip: str = "", ok: bool = True,
                     **detail: Any) -> None:
        """Append one entry. ``detail`` must never contain passwords or tokens (callers pass facts only)."""
        await self.db.write(
            "INSERT INTO panel_audit VALUES (?,?,?,?,?,?,?,?)",
            [(new_id(), to_us(self.clock.now()), username[:64], action, target[:256],
              json.dumps(detail, ensure_ascii=False, default=str)[:4000], ip[:64], int(ok))],
        )

    async def search(self, *, username: str | None = None, action: str | None = None, q: str | None = None,
                     before_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back (keyset pagination, stable while new rows arrive)."""
        where: list[str] = []
        params: list[str | int] = []
        if username:
            where.append("username=?")
            params.append(username)
        if action:
            where.append("action=?")
            params.append(action)
        if q:
            where.append("(target LIKE ? ESCAPE '\\' OR detail LIKE ? ESCAPE '\\')")
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [like, like]
        if before_id:
            where.append("id<?")
            params.append(before_id)
        sql = "SELECT id, ts_us, username, action, target, detail, ip, ok FROM panel_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.read(sql, params)
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], _detail(r[5]), r[6], bool(r[7])) for r in rows]

    async def actions(self) -> list[str]:
        return [r[0] for r in await self.db.read("SELECT DISTINCT action FROM panel_audit ORDER BY action")]


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}
