"""Disk space: the file system's real free space, the low-water mark, and a reserve to recover with.

Why this exists: a quota alone never looks at the disk. A quota larger than the free space (or a
log file, a core dump or another program filling the disk) ends in ENOSPC, and SQLite then cannot
even run the ``DELETE`` that would make room: every write, eviction included, needs WAL space.

Three mechanisms, each simple:

* **Low-water mark.** The store may grow only into space that leaves ``min_free_bytes`` free on its
  file system (``statvfs``). ``growth_limit`` turns that into a byte budget beside the quota.
* **Reserve.** A ballast file (``<db>.reserve``) of ``reserve_bytes`` real blocks sits beside the
  database. When the disk is full it is deleted first, which gives eviction, a WAL checkpoint and
  the alarm steps room to commit; it is written again once free space is back above the mark.
* **Disk-full state** (``DiskState``): raised on SQLITE_FULL / ENOSPC or when the mark cannot be kept;
  while it holds, telemetry is paused and counted (alarms, events and indicators are still kept),
  and it clears by itself once free space and the reserve are back.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    st = os.statvfs(path)
    return int(st.f_bavail) * int(st.f_frsize)


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL or the OS's ENOSPC / EDQUOT, however deep in the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.OperationalError) and (
            getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(seen).lower()
        ):
            return True
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Reserve:
    """A ballast file whose blocks are given back to the store when the disk is full."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        if self.size <= 0:
            return True
        try:
            return self.path.stat().st_size >= self.size
        except FileNotFoundError:
            return False

    def release(self) -> int:
        """Delete the ballast; returns the bytes given back (0 if it was not there)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        log.warning("store: released the %d-byte disk reserve %s", size, self.path)
        return size

    def restore(self) -> bool:
        """Allocate the ballast with real blocks (not a sparse file); False if the disk has no room."""
        if self.size <= 0 or self.held:
            return True
        tmp = self.path.with_suffix(".reserve-tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # glibc writes zeros where the file system cannot allocate
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            return True
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                # A folder the store can write its database in but not a reserve beside it (odd
                # permissions): run without the ballast rather than refuse to start.
                log.warning("store: cannot keep the disk reserve %s, running without it: %s", self.path, exc)
                self.size = 0
                return True
            return False


@dataclass
class DiskState:
    """Whether the store is in its disk-full mode, since when, and what that has cost so far."""

    full: bool = False
    since: datetime | None = None
    reason: str = ""
    telemetry_paused: int = 0
    episodes: int = 0

    def enter(self, now: datetime, reason: str) -> bool:
        """Enter disk-full mode; True if this is a change."""
        if self.full:
            return False
        self.full, self.since, self.reason = True, now, reason
        self.episodes += 1
        log.error("store: disk full (%s): telemetry paused, alarms and events still kept", reason)
        return True

    def leave(self) -> bool:
        if not self.full:
            return False
        log.warning("store: disk space is back: telemetry resumes (%d readings were not stored)",
                    self.telemetry_paused)
        self.full, self.since, self.reason = False, None, ""
        return True


def growth_limit(allocated: int, free: int, min_free: int) -> int:
    """How many bytes the store may occupy so that ``min_free`` stays free on its file system.

    ``allocated`` is what the store's files take now (free pages inside the database included:
    they are reused before the file grows). Never negative.
    """
    return max(0, allocated + free - min_free)
