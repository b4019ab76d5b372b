"""Panel roles and what each may do (least privilege: seed 004 ch. 6, information security).

viewer    sees everything an operator sees, changes nothing
operator  property staff: also acknowledges and resolves alarms
admin     installer: also edits the config, zones, users; runs installer tools; reads the audit log
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """True when this role includes everything ``needed`` may do."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
