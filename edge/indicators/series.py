"""The indicator engine's own compact copy of what it needs from the readings, per local hour.

Why a copy: the ``readings`` table deliberately has no time index (it would cut ingest by ~4x), so
"all pressure samples of 10:00-11:00" cannot be queried cheaply from it. The engine folds new
readings (found by id, which *is* indexed) into this table instead:

    ind_series(device_id, point, hour_us, seq, unit, data)   PRIMARY KEY (device_id, point, hour_us, seq)

* ``point = ''`` is the device's **presence** row: ``data`` is an array of (second of the hour,
  number of readings in that second), from which completeness and online time are computed.
* other rows are **value** points (meter totals, fire pressure and level): ``data`` is an array of
  (millisecond of the hour, value, quality) samples.
* each fold appends one *chunk* row per touched (device, point, hour) with a new ``seq``; nothing
  is rewritten on the hot path (the flash card sees appends only). Reading an hour merges its
  chunks, and a closed hour is compacted into one ``seq = 0`` row the first time it is read.

Restart safety comes from the merge being idempotent: samples are keyed by their millisecond
(the same sample twice is one sample) and presence by its second (count = the larger of the
two). Folding the same readings twice, or a crash between compaction's insert and delete, can
therefore never double-count, and the fold cursor is written in the same statement as the chunks.

Other tables: ``ind_events`` (the detections the lane and e-bike indicators count, keyed by event
id), ``ind_points`` (every point seen per device, with its unit: the expected points for
completeness and the candidates for a meter's counter point), ``ind_state`` (epoch, cursors).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.store import Store

COMPONENT = "indicators"
TABLES = ("ind_series", "ind_events", "ind_points", "ind_state", "ind_uptime")  # owned here, reached via SeriesStore.db
MIGRATIONS: list[str] = [
    """
    CREATE TABLE ind_series (
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        hour_us INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        unit TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (device_id, point, hour_us, seq)
    ) WITHOUT ROWID;
    CREATE INDEX ind_series_hour ON ind_series(hour_us);

    CREATE TABLE ind_events (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        device_id TEXT,
        subject TEXT NOT NULL,
        ts_us INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX ind_events_code ON ind_events(code, ts_us);

    CREATE TABLE ind_points (
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        unit TEXT NOT NULL,
        first_us INTEGER NOT NULL,
        PRIMARY KEY (device_id, point)
    ) WITHOUT ROWID;

    CREATE TABLE ind_state (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: when the gateway ran (issue 13 point 5): one row per run, its start and its last heartbeat
    """
    CREATE TABLE ind_uptime (
        run_start_us INTEGER PRIMARY KEY,
        alive_us INTEGER NOT NULL
    );
    """,
]

PRESENCE = np.dtype([("s", "<u2"), ("c", "<u2")])
SAMPLE = np.dtype([("t", "<u4"), ("v", "<f8"), ("q", "u1")])
EMPTY_PRESENCE = np.zeros(0, PRESENCE)
EMPTY_SAMPLES = np.zeros(0, SAMPLE)
PRESENCE_POINT = ""
HOUR_US = 3600 * 1_000_000

_INSERT_CHUNK = "INSERT OR REPLACE INTO ind_series(device_id, point, hour_us, seq, unit, data) VALUES (?,?,?,?,?,?)"


def merge_presence(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """Union of presence arrays by second; a second seen twice keeps the larger count."""
    if not chunks:
        return EMPTY_PRESENCE
    if len(chunks) == 1:
        return chunks[0]
    allp = np.concatenate(chunks)
    order = np.lexsort((allp["c"], allp["s"]))  # by second, then count ascending
    allp = allp[order]
    last = np.ones(len(allp), bool)
    last[:-1] = allp["s"][1:] != allp["s"][:-1]
    return allp[last]


def merge_samples(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """Union of sample arrays by millisecond; for a millisecond seen twice the later chunk wins."""
    if not chunks:
        return EMPTY_SAMPLES
    if len(chunks) == 1:
        return chunks[0]
    allp = np.concatenate(chunks)
    order = np.argsort(allp["t"], kind="stable")  # stable: chunk order kept within one millisecond
    allp = allp[order]
    last = np.ones(len(allp), bool)
    last[:-1] = allp["t"][1:] != allp["t"][:-1]
    return allp[last]


@dataclass
class HourSeries:
    """All chunks of one local hour, merged."""

    hour_us: int
    presence: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    units: dict[tuple[str, str], str] = field(default_factory=dict)
    max_seq: int = 0
    fragmented: bool = False  # more than one row for some key: worth compacting

    def samples(self, device_id: str, point: str) -> np.ndarray:
        return self.values.get((device_id, point), EMPTY_SAMPLES)

    def present(self, device_id: str) -> np.ndarray:
        return self.presence.get(device_id, EMPTY_PRESENCE)


class SeriesStore:
    """Reads and writes the ``ind_*`` tables through the store (writes share its group commit)."""

    def __init__(self, store: Store) -> None:
        self.db = store.tables(COMPONENT, TABLES)

    async def migrate(self) -> None:
        await self.db.migrate(MIGRATIONS)

    # ------------------------------------------------------------------ state

    async def state(self, name: str) -> str | None:
        row = await self.db.read_one("SELECT value FROM ind_state WHERE name=?", (name,))
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ gateway uptime

    async def start_run(self, now_us: int) -> None:
        """A new run of the gateway begins (the engine's start)."""
        await self.db.write("INSERT OR REPLACE INTO ind_uptime VALUES (?, ?)", [(now_us, now_us)])

    async def heartbeat(self, run_start_us: int, now_us: int) -> None:
        """The run that began at ``run_start_us`` is still alive at ``now_us`` (every tick)."""
        await self.db.write("UPDATE ind_uptime SET alive_us=max(alive_us, ?) WHERE run_start_us=?",
                                       [(now_us, run_start_us)])

    async def uptime(self, start_us: int, end_us: int, legacy_until_us: int = 0) -> tuple[float, int]:
        """(seconds the gateway ran inside ``[start_us, end_us)``, runs that began in it).

        Time before ``legacy_until_us`` counts as running: a store older than this table has no
        record of its runs, and its figures were computed as if the gateway always ran (the engine
        passes the first recorded run's start for such a store, 0 for a store that had the table
        from its first start).
        """
        rows = await self.db.read("SELECT run_start_us, alive_us FROM ind_uptime WHERE run_start_us < ? AND alive_us >= ?",
                                     (end_us, start_us))
        legacy = max(0, min(legacy_until_us, end_us) - start_us)
        spans = sorted((max(int(a), start_us), min(int(b), end_us)) for a, b in rows)
        covered, reach = legacy, start_us + legacy
        for lo, hi in spans:
            lo = max(lo, reach)
            if hi > lo:
                covered += hi - lo
                reach = hi
        starts = sum(1 for a, _ in rows if start_us <= int(a) < end_us)
        return covered / 1e6, starts

    async def set_state(self, name: str, value: str) -> None:
        await self.db.write(
            "INSERT INTO ind_state(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            [(name, value)],
        )

    async def cursor(self, name: str) -> tuple[str, int]:
        """(last folded record id, last chunk seq) for the fold named ``name``."""
        row = await self.db.read_one(
            "SELECT data, unit FROM ind_series WHERE device_id='' AND point=? AND hour_us=0 AND seq=0",
            (f"#cursor:{name}",),
        )
        if row is None:
            return "", 0
        return bytes(row[0]).decode("ascii"), int(row[1] or 0)

    # ------------------------------------------------------------------ writes

    async def write_chunks(self, rows: Iterable[tuple[str, str, int, int, str, bytes]],
                           cursors: dict[str, tuple[str, int]]) -> None:
        """Append chunk rows and move the fold cursors, in one statement (one transaction)."""
        params = list(rows)
        for name, (last_id, seq) in cursors.items():
            params.append(("", f"#cursor:{name}", 0, 0, str(seq), last_id.encode("ascii")))
        if params:
            await self.db.write(_INSERT_CHUNK, params)

    async def add_points(self, points: Iterable[tuple[str, str, str, int]]) -> None:
        rows = list(points)
        if rows:
            await self.db.write(
                "INSERT OR IGNORE INTO ind_points(device_id, point, unit, first_us) VALUES (?,?,?,?)", rows)

    async def add_events(self, rows: Sequence[tuple[str, str, str | None, str, int]]) -> None:
        if rows:
            await self.db.write(
                "INSERT OR IGNORE INTO ind_events(id, code, device_id, subject, ts_us) VALUES (?,?,?,?,?)", rows)

    async def compact(self, hour: HourSeries) -> None:
        """Replace an hour's chunks by one merged row per key (idempotent: see the module docstring)."""
        if not hour.fragmented:
            return
        rows = [(d, PRESENCE_POINT, hour.hour_us, 0, "", arr.tobytes()) for d, arr in hour.presence.items()]
        rows += [(d, p, hour.hour_us, 0, hour.units.get((d, p), ""), arr.tobytes())
                 for (d, p), arr in hour.values.items()]
        await self.db.write(_INSERT_CHUNK, rows)
        await self.db.write(
            "DELETE FROM ind_series WHERE hour_us=? AND seq BETWEEN 1 AND ? AND device_id != ''",
            [(hour.hour_us, hour.max_seq)],
        )
        hour.fragmented = False

    # ------------------------------------------------------------------ reads

    async def load_hour(self, hour_us: int) -> HourSeries:
        rows = await self.db.read(
            "SELECT device_id, point, seq, unit, data FROM ind_series WHERE hour_us=? AND device_id != ''"
            " ORDER BY device_id, point, seq",
            (hour_us,),
        )
        out = HourSeries(hour_us)
        pres: dict[str, list[np.ndarray]] = {}
        vals: dict[tuple[str, str], list[np.ndarray]] = {}
        for device_id, point, seq, unit, data in rows:
            out.max_seq = max(out.max_seq, int(seq))
            if point == PRESENCE_POINT:
                pres.setdefault(device_id, []).append(np.frombuffer(data, PRESENCE))
            else:
                vals.setdefault((device_id, point), []).append(np.frombuffer(data, SAMPLE))
                out.units[(device_id, point)] = unit
        for device_id, chunks in pres.items():
            out.fragmented |= len(chunks) > 1
            out.presence[device_id] = merge_presence(chunks)
        for key, chunks in vals.items():
            out.fragmented |= len(chunks) > 1
            out.values[key] = merge_samples(chunks)
        return out

    async def neighbour_hour(self, device_id: str, point: str, hour_us: int, *, before: bool,
                             limit_us: int) -> int | None:
        """The nearest hour before (after) ``hour_us`` holding samples of the point, within ``limit_us``."""
        if before:
            row = await self.db.read_one(
                "SELECT max(hour_us) FROM ind_series WHERE device_id=? AND point=? AND hour_us < ? AND hour_us >= ?",
                (device_id, point, hour_us, hour_us - limit_us))
        else:
            row = await self.db.read_one(
                "SELECT min(hour_us) FROM ind_series WHERE device_id=? AND point=? AND hour_us > ? AND hour_us <= ?",
                (device_id, point, hour_us, hour_us + limit_us))
        return int(row[0]) if row and row[0] is not None else None

    async def point_samples(self, device_id: str, point: str, hour_us: int) -> np.ndarray:
        rows = await self.db.read(
            "SELECT data FROM ind_series WHERE device_id=? AND point=? AND hour_us=? ORDER BY seq",
            (device_id, point, hour_us))
        return merge_samples([np.frombuffer(r[0], SAMPLE) for r in rows])

    async def known_points(self) -> list[tuple[str, str, str, int]]:
        return [tuple(r) for r in await self.db.read("SELECT device_id, point, unit, first_us FROM ind_points")]

    async def last_event_us(self, code: str, subject: str, until_us: int) -> int | None:
        """When ``subject`` last had a ``code`` detection at or before ``until_us`` (None if never)."""
        row = await self.db.read_one("SELECT max(ts_us) FROM ind_events WHERE code=? AND subject=? AND ts_us <= ?",
                                     (code, subject, until_us))
        return int(row[0]) if row and row[0] is not None else None

    async def events_between(self, codes: tuple[str, str], start_us: int, end_us: int) -> list[tuple[str, str, int]]:
        """(code, subject, ts_us) of the ``codes`` detections in ``[start_us, end_us)``, in time order."""
        rows = await self.db.read(
            "SELECT code, subject, ts_us FROM ind_events WHERE code IN (?, ?) AND ts_us >= ? AND ts_us < ?"
            " ORDER BY ts_us, id", (*codes, start_us, end_us))
        return [(str(c), str(s), int(t)) for c, s, t in rows]

    async def count_events(self, code: str, start_us: int, end_us: int) -> int:
        row = await self.db.read_one("SELECT count(*) FROM ind_events WHERE code = ? AND ts_us >= ? AND ts_us < ?",
                                     (code, start_us, end_us))
        return int(row[0]) if row else 0

    async def device_points(self, device_id: str) -> list[tuple[str, str]]:
        """(point, unit) of every point seen on ``device_id``."""
        return [(str(p), str(u)) for p, u in await self.db.read(
            "SELECT point, unit FROM ind_points WHERE device_id=?", (device_id,))]

    async def chunks_since(self, device_id: str, point: str, since_hour_us: int) -> list[tuple[int, np.ndarray]]:
        """(hour, samples) of every stored chunk of one point from ``since_hour_us`` on, in hour and seq order."""
        rows = await self.db.read(
            "SELECT hour_us, data FROM ind_series WHERE device_id=? AND point=? AND hour_us >= ?"
            " ORDER BY hour_us, seq", (device_id, point, since_hour_us))
        return [(int(hour_us), np.frombuffer(data, SAMPLE)) for hour_us, data in rows]

    async def prune(self, before_us: int) -> None:
        """Forget the hourly series and detections older than ``before_us`` (retention)."""
        await self.db.write("DELETE FROM ind_series WHERE hour_us < ? AND device_id != ''", [(before_us,)])
        await self.db.write("DELETE FROM ind_events WHERE ts_us < ?", [(before_us,)])
