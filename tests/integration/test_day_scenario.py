"""A simulated day of the demo estate, time-accelerated, end to end to the platform simulator.

The demo estate's config (``config/demo-estate.yaml``: its devices, thresholds, time zone) drives
the real gateway stages on a manual clock: normaliser -> store -> rule engine + energy watch ->
alarm manager (escalation on the same clock) -> indicator engine, while the real uplink sends
everything over HTTPS to the real platform simulator. Devices are polled once a minute here (the
demo polls every few seconds; the figures do not depend on it, the test's run time does).

Scripted day (local time, Asia/Shanghai), devices picked by category from the config:

    00:00-06:00  the first water meter leaks (0.3 L/min): energy.night_flow at 03:00, escalated
                 at 03:15 and 04:00, cleared by itself at 06:15, resolved by li at 08:30
    02:00-02:40  the first hydrant pressure falls to below its minimum: raised 02:01, acknowledged
                 by wang 02:10, cleared 02:40, resolved by wang 02:50
    10:00-10:25  a fire lane is blocked: raised 10:00, acknowledged by zhao 10:05, cleared 10:25,
                 resolved 10:30
    14:00-15:00  the first electricity meter does not answer: device.offline 14:02, escalated
                 14:17, cleared 15:01 (nobody handled it)
    18:10-18:40  three e-bikes enter a lobby: each entry is an alarm (the vision alarm specs); the
                 guard turns the third one back (resolved 18:50), the first two are escalated and
                 left open

The platform simulator must end with, for every hour and for the day, the indicator values this
script implies (the highest version of each key), and the seven alarms with their disposal steps.
Detections are shaped as the camera source emits them (``edge.vision.alarms``: ``data.lane``,
``data.entry``, ``data.active``) and go through the daemon's own vision alarm specs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import HttpUrl, SecretStr

from edge.alarms import AlarmManager
from edge.clock import ManualClock, to_us
from edge.config import load_config
from edge.config.alarms import AlarmsConfig
from edge.indicators import IndicatorEngine
from edge.indicators.catalog import FACILITY_KINDS
from edge.indicators.context import EstateContext
from edge.indicators.energy_watch import EnergyWatch, RuleChain
from edge.normalise.normaliser import Normaliser
from edge.pipeline import Pipeline
from edge.records import DeviceStatus, Event, Reading
from edge.rules import RuleEngine
from edge.store import Store
from edge.store.codec import iso
from edge.uplink import Uplink
from edge.vision.alarms import VISION_EVENT_ALARMS
from tests.helpers.platform import PlatformSim

REPO = Path(__file__).resolve().parents[2]
DAY = datetime(2025, 2, 28, 16, tzinfo=UTC)  # 2025-03-01 00:00 in Asia/Shanghai
MIN = timedelta(minutes=1)
LANE_CAMERA, DOOR_CAMERA, LANE_ZONE = "CAM-LANE-01", "CAM-DOOR-01", "north-lane"
LANE = f"{LANE_CAMERA}/{LANE_ZONE}"
EBIKES = {18 * 60 + 10: 7, 18 * 60 + 20: 9, 18 * 60 + 40: 12}  # minute of the day -> track id
POINTS = {
    "electricity": [("energy_import", "kWh"), ("active_power", "kW")],
    "water": [("volume_forward", "m3"), ("flow", "m3/h")],
    "fire_pressure": [("pressure", "MPa")],
    "fire_level": [("level", "m")],
}


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


class Script:
    """The day's readings, derived from the demo config, and the figures they must produce."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.devices = sorted((d for d in config.devices if d.enabled), key=lambda d: d.id)
        by_cat: dict[str, list[Any]] = defaultdict(list)
        for d in self.devices:
            by_cat[d.category].append(d)
        for needed in ("electricity", "water", "fire_pressure", "fire_level"):
            assert by_cat[needed], f"the demo estate needs a {needed} device for this scenario"
        self.by_cat = by_cat
        self.hydrant = by_cat["fire_pressure"][0]
        self.leaky = by_cat["water"][0]
        self.offline = by_cat["electricity"][0]
        self.ranges = EstateContext.from_config(config).ranges
        self.rates = {d.id: 0.1 + 0.05 * k for k, d in enumerate(by_cat["electricity"])}  # kWh per minute

    # ------------------------------------------------------------------ what the devices say
    def water_rate(self, device_id: str, minute: int) -> float:
        hour = minute // 60
        if device_id == self.leaky.id and hour < 6:
            return 0.0003  # the leak: 0.3 L a minute
        return 0.01 if 7 <= hour < 22 else 0.0

    def ok_value(self, device: Any, point: str) -> float:
        limits = self.ranges.get((device.id, point))
        if limits is None:
            return 0.32 if point == "pressure" else 3.2
        if limits.low is not None and limits.high is not None:
            return (limits.low + limits.high) / 2
        return limits.low + 0.25 if limits.low is not None else limits.high - 0.1  # type: ignore[operator]

    def readings(self, minute: int, totals: dict[str, float]) -> list[Reading]:
        ts = DAY + minute * MIN
        out: list[Reading] = []
        for d in self.devices:
            if d.id == self.offline.id and 14 * 60 <= minute < 15 * 60:
                continue
            if d.category == "electricity":
                out += [Reading(d.id, "energy_import", round(totals[d.id], 6), "kWh", ts),
                        Reading(d.id, "active_power", self.rates[d.id] * 60, "kW", ts)]
            elif d.category == "water":
                out += [Reading(d.id, "volume_forward", round(totals[d.id], 6), "m3", ts),
                        Reading(d.id, "flow", self.water_rate(d.id, minute) * 60, "m3/h", ts)]
            elif d.category == "fire_pressure":
                low = d.id == self.hydrant.id and 120 <= minute < 160
                limits = self.ranges[(d.id, "pressure")]
                value = (limits.low or 0.07) - 0.02 if low else self.ok_value(d, "pressure")
                out.append(Reading(d.id, "pressure", value, "MPa", ts))
            elif d.category == "fire_level":
                out.append(Reading(d.id, "level", self.ok_value(d, "level"), "m", ts))
            else:
                out.append(Reading(d.id, "temperature", 20.0, "°C", ts))
        for d in self.devices:  # the meters count whether or not anyone reads them
            if d.category == "electricity":
                totals[d.id] += self.rates[d.id]
            elif d.category == "water":
                totals[d.id] += self.water_rate(d.id, minute)
        return out

    def points(self, device: Any) -> int:
        return len(POINTS.get(device.category, [("temperature", "°C")]))

    # ------------------------------------------------------------------ what the platform must see
    def expected(self, hour: int | None) -> dict[tuple[str, tuple], Any]:
        """(code, dimensions) -> value for one hour, or for the day when ``hour`` is None."""
        hours = range(24) if hour is None else [hour]
        cameras = [c for c in self.config.cameras if c.enabled]
        n = len(self.devices) + len(cameras)
        span_h = len(hours)
        exp: dict[tuple[str, tuple], Any] = {}
        elec = sum(self.rates.values()) * 60 * span_h
        exp[("energy.electricity_kwh", ())] = elec
        for d in self.by_cat["electricity"]:
            exp[("energy.electricity_kwh", (("device", d.id),))] = self.rates[d.id] * 60 * span_h
        water = {d.id: sum(self.water_rate(d.id, h * 60) * 60 for h in hours) for d in self.by_cat["water"]}
        exp[("energy.water_m3", ())] = sum(water.values())
        exp[("energy.water_m3", (("device", self.leaky.id),))] = water[self.leaky.id]
        pressure_samples = len(self.by_cat["fire_pressure"]) * 60 * span_h
        low = 40 if 2 in hours else 0
        exp[("fire.hydrant_pressure_compliance", ())] = (pressure_samples - low) / pressure_samples
        exp[("fire.hydrant_pressure_compliance", (("device", self.hydrant.id),))] = (60 * span_h - low) / (60 * span_h)
        exp[("fire.water_level_compliance", ())] = 1.0
        offline_s = (3600 - 120) if 14 in hours else 0  # online until 3 missed polls after 13:59
        exp[("device.online_rate", ())] = (n * 3600 * span_h - offline_s) / (n * 3600 * span_h)
        points = (sum(self.points(d) for d in self.devices) + 2 * len(cameras)) * 60 * span_h
        missing = self.points(self.offline) * 60 if 14 in hours else 0
        exp[("data.completeness", ())] = (points - missing) / points
        exp[("facility.monitored_kinds", ())] = len({FACILITY_KINDS[d.category] for d in self.devices
                                                     if d.category in FACILITY_KINDS})
        if 10 in hours:
            exp[("fire.lane_block_events", ())] = 1
            exp[("fire.lane_block_minutes", ())] = 25.0
            exp[("fire.lane_clear_time_p50", ())] = 25.0
        if 18 in hours:
            exp[("fire.ebike_entry_events", ())] = 3
        # hour -> (alarms raised, of which closed, minutes to resolve of the resolved ones)
        alarms = {2: (1, 1, [49.0]), 3: (1, 1, [330.0]), 10: (1, 1, [30.0]), 14: (1, 0, []), 18: (3, 1, [10.0])}
        raised = sum(alarms[h][0] for h in hours if h in alarms)
        closed = sum(alarms[h][1] for h in hours if h in alarms)
        exp[("alarm.closure_rate", ())] = closed / raised if raised else None
        times = [t for h in hours if h in alarms for t in alarms[h][2]]
        exp[("alarm.resolve_time_p50", ())] = statistics.median(times) if times else None
        exp[("energy.abnormal_events", ())] = 1 if 3 in hours else 0
        return exp


async def drain(uplink: Uplink, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await uplink.drained():
        if time.monotonic() > deadline:
            raise AssertionError(f"uplink did not drain in {timeout} s: {uplink.status()}")
        await asyncio.sleep(0.1)


def latest_indicators(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the platform keeps: the highest version of each key."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["key"] not in out or r["version"] > out[r["key"]]["version"]:
            out[r["key"]] = r
    return out


@pytest.mark.slow
async def test_a_day_of_the_demo_estate(tmp_path: Path, platform_sim: PlatformSim, monkeypatch) -> None:  # noqa: C901 - one story, read top to bottom
    monkeypatch.setenv("EDGE_SECRET_PLATFORM_CLIENT_SECRET", platform_sim.client_secret)
    monkeypatch.setenv("EDGE_SECRET_CAMERA_PASSWORD", "demo-camera")
    demo = load_config(REPO / "config" / "demo-estate.yaml")
    config = demo.model_copy(update={
        "platform": demo.platform.model_copy(update={
            "url": HttpUrl(platform_sim.url), "ca_bundle": platform_sim.ca, "client_id": platform_sim.client_id,
            "client_secret": SecretStr(platform_sim.client_secret), "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5}),
        "store": demo.store.model_copy(update={"path": tmp_path / "edge.db", "evidence_dir": tmp_path / "evidence",
                                               "batch_max_delay_ms": 2}),
        "devices": [d.model_copy(update={"poll_interval_s": 60.0}) for d in demo.devices],
        # Cameras count in online_rate and completeness: one health check a minute, as the devices poll.
        "cameras": [c.model_copy(update={"health": c.health.model_copy(update={"interval_s": 60.0})})
                    for c in demo.cameras],
        "alarms": AlarmsConfig(escalate_after_min=[15, 60]),
    })
    script = Script(config)
    clock = ManualClock(DAY)
    async with Store.from_config(config.store, clock=clock) as store:
        manager = AlarmManager.from_config(store, config, clock=clock)
        watch = EnergyWatch.from_config(config)
        pipeline = Pipeline(store, normaliser=Normaliser.from_config(config),
                            rules=RuleChain(RuleEngine.from_config(config, VISION_EVENT_ALARMS), watch),
                            alarms=manager)
        engine = IndicatorEngine(store, config, clock=clock)
        await manager.start(escalation_loop=False)  # escalations are checked on the manual clock below
        await engine.start()
        totals = defaultdict(float, {d.id: 1000.0 for d in script.devices})
        ids: dict[str, str] = {}

        def alarm_id(code: str, subject: str | None = None) -> str:
            name = f"{code}|{subject}"
            if name not in ids:
                ids[name] = next(a["alarm_id"] for a in manager.open_alarms() if a["code"] == code
                                 and (subject is None or a["data"]["subject"] == subject))
            return ids[name]

        async with Uplink.from_config(store, config) as uplink:
            for minute in range(24 * 60 + 1):
                now = DAY + minute * MIN
                clock.set(now)
                if 14 * 60 <= minute < 15 * 60:
                    await pipeline.device_status(DeviceStatus(script.offline.id, False, now, "timeout"))
                elif minute in (15 * 60, 15 * 60 + 1):
                    await pipeline.device_status(DeviceStatus(script.offline.id, True, now))
                await pipeline.readings(script.readings(minute, totals))
                await pipeline.readings([Reading(c.id, p, 0.0, "", now) for c in config.cameras if c.enabled
                                         for p in ("frozen", "covered")])
                lane = {"camera": LANE_CAMERA, "zone": LANE_ZONE, "zone_name": "3栋北侧消防通道", "lane": LANE}
                if minute == 10 * 60:
                    await pipeline.events([Event("fire.lane_blocked", now, LANE_CAMERA, message="消防通道被占用",
                                                 data={**lane, "active": True, "dwell_s": 120.0})])
                if minute == 10 * 60 + 25:
                    await pipeline.events([Event("fire.lane_cleared", now, LANE_CAMERA,
                                                 data={**lane, "active": False})])
                if minute in EBIKES:
                    entry = f"{DOOR_CAMERA}/lobby/{EBIKES[minute]}"
                    await pipeline.events([Event("fire.ebike_entry", now, DOOR_CAMERA, message="电动车进入大堂",
                                                 data={"camera": DOOR_CAMERA, "zone": "lobby", "entry": entry,
                                                       "track_id": EBIKES[minute], "active": True})])
                staff = {
                    2 * 60 + 10: ("acknowledge", "fire.hydrant_pressure_low", "wang", "已派人检查"),
                    2 * 60 + 50: ("resolve", "fire.hydrant_pressure_low", "wang", "稳压泵故障复位，压力恢复"),
                    8 * 60 + 30: ("resolve", "energy.night_flow", "li", "地下室水箱浮球阀损坏，已更换"),
                    10 * 60 + 5: ("acknowledge", "fire.lane_blocked", "zhao", ""),
                    10 * 60 + 30: ("resolve", "fire.lane_blocked", "zhao", "已联系车主挪车"),
                    18 * 60 + 50: ("resolve", "fire.ebike_entry", "zhao", "已劝离，电动车推出大堂"),
                }.get(minute)
                if staff is not None:
                    action, code, user, note = staff
                    subject = f"{DOOR_CAMERA}/lobby/12" if code == "fire.ebike_entry" else None
                    await getattr(manager, action)(alarm_id(code, subject), user, note)
                if minute == 3 * 60:  # note its id while it is open: staff resolve it after it cleared
                    alarm_id("energy.night_flow")
                await manager.check_escalations()
                if minute % 5 == 0:
                    await engine.tick()
                    uplink.wake()
            clock.set(DAY + timedelta(days=1, minutes=5))  # the day closes
            await engine.tick()
            uplink.wake()
            await drain(uplink)
        await manager.stop()

    stats = platform_sim.stats()
    assert "rejected_records" not in stats["counters"], stats["counters"]
    assert stats["readings"]["telemetry"] == await _count_readings(tmp_path / "edge.db")  # every reading, once
    # Contract v2: every record names its estate and gateway, events and alarm steps carry a catalogue
    # code, and one notation holds throughout (ASCII units, Z timestamps, also inside data and params).
    import json

    for record in platform_sim.records():
        assert (record["estate_id"], record["gateway_id"]) == (config.estate.id, config.estate.gateway_id)
        if record["kind"] in ("event", "alarm"):
            assert record["message_code"] and isinstance(record["params"], dict), record
        text = json.dumps({k: v for k, v in record.items() if k not in ("message", "note", "key")}, ensure_ascii=False)
        assert "+00:00" not in text and not set(text) & set("³²°℃"), record

    # ---------------------------------------------------------------- indicators
    platform = latest_indicators(platform_sim.records("indicator"))
    assert all(r["estate_id"] == config.estate.id and r["gateway_id"] == config.estate.gateway_id
               for r in platform.values())
    for hour in [*range(24), None]:
        granularity = "hour" if hour is not None else "day"
        start = iso(to_us(at(hour) if hour is not None else DAY))
        found = {(r["code"], tuple(sorted(r["dimensions"].items()))): r for r in platform.values()
                 if r["granularity"] == granularity and r["period_start"] == start}
        for key, value in script.expected(hour).items():
            assert key in found, f"{granularity} {start}: no {key} at the platform"
            got = found[key]["value"]
            if value is None:
                assert got is None, (granularity, start, key, got)
            else:
                assert got == pytest.approx(value, rel=1e-6, abs=1e-6), (granularity, start, key, got)
        for code in ("fire.lane_block_events", "fire.ebike_entry_events"):
            if (code, ()) not in script.expected(hour) and (code, ()) in found:
                assert found[(code, ())]["value"] == 0
    day = {r["code"] for r in platform.values() if r["granularity"] == "day"}
    assert day >= {"device.online_rate", "data.completeness", "fire.hydrant_pressure_compliance",
                   "fire.water_level_compliance", "fire.lane_block_events", "fire.lane_block_minutes",
                   "fire.lane_clear_time_p50", "fire.ebike_entry_events", "alarm.closure_rate",
                   "alarm.resolve_time_p50", "energy.electricity_kwh", "energy.water_m3", "energy.abnormal_events",
                   "facility.monitored_kinds"}
    # Staff resolved the night-flow alarm at 08:30: 03:00's record was revised, the first version went too.
    night = [r for r in platform_sim.records("indicator") if r["code"] == "alarm.closure_rate"
             and r["granularity"] == "hour" and r["period_start"] == iso(to_us(at(3)))]
    assert [(r["version"], r["value"]) for r in sorted(night, key=lambda r: r["version"])] == [(1, 0.0), (2, 1.0)]

    # ---------------------------------------------------------------- alarms and their disposal
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(platform_sim.records("alarm"), key=lambda r: r["id"]):
        steps[r["alarm_id"]].append(r)
    summary = {
        (s[0]["code"], s[0]["data"]["subject"]): [(r["state"], r["actor"], r["note"], r["ts"]) for r in s]
        for s in steps.values()
    }
    t = lambda h, m: iso(to_us(at(h, m)))  # noqa: E731
    assert summary == {
        ("fire.hydrant_pressure_low", script.hydrant.id): [
            ("raised", "system", "", t(2, 1)), ("acknowledged", "wang", "已派人检查", t(2, 10)),
            ("cleared", "system", "", t(2, 40)), ("resolved", "wang", "稳压泵故障复位，压力恢复", t(2, 50))],
        ("energy.night_flow", script.leaky.id): [
            ("raised", "system", "", t(3, 0)), ("escalated", "system", "", t(3, 15)),
            ("escalated", "system", "", t(4, 0)), ("cleared", "system", "", t(6, 15)),
            ("resolved", "li", "地下室水箱浮球阀损坏，已更换", t(8, 30))],
        ("fire.lane_blocked", LANE): [
            ("raised", "system", "", t(10, 0)), ("acknowledged", "zhao", "", t(10, 5)),
            ("cleared", "system", "", t(10, 25)), ("resolved", "zhao", "已联系车主挪车", t(10, 30))],
        ("device.offline", script.offline.id): [
            ("raised", "system", "", t(14, 2)), ("escalated", "system", "", t(14, 17)),
            ("cleared", "system", "", t(15, 1))],
        ("fire.ebike_entry", f"{DOOR_CAMERA}/lobby/7"): [
            ("raised", "system", "", t(18, 10)), ("escalated", "system", "", t(18, 25)),
            ("escalated", "system", "", t(19, 10))],
        ("fire.ebike_entry", f"{DOOR_CAMERA}/lobby/9"): [
            ("raised", "system", "", t(18, 20)), ("escalated", "system", "", t(18, 35)),
            ("escalated", "system", "", t(19, 20))],
        ("fire.ebike_entry", f"{DOOR_CAMERA}/lobby/12"): [
            ("raised", "system", "", t(18, 40)), ("resolved", "zhao", "已劝离，电动车推出大堂", t(18, 50))],
    }
    levels = [r["data"]["level"] for s in steps.values() for r in s if r["state"] == "escalated"]
    assert sorted(levels) == [1, 1, 1, 1, 2, 2, 2]
    lane_alarm = next(s for s in steps.values() if s[0]["code"] == "fire.lane_blocked")
    assert lane_alarm[0]["device_id"] == LANE_CAMERA and lane_alarm[0]["severity"] == "major"


async def _count_readings(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM readings").fetchone()[0])
