"""GB/T 26875.3 over real TCP: simulated transmission devices connect to the gateway's listener; the sink
records what the source hands to the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from drivers.gb26875 import codec
from drivers.gb26875.source import Gb26875Source
from edge.config.buses import Gb26875BusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from simulators.gb26875 import story
from simulators.gb26875.device import SimUitd
from tests.helpers.sink import RecordingSink

UITD = 0x1D6DD53C10AC


def uitd(device_id: str, address: int | str = UITD) -> DeviceConfig:
    return DeviceConfig(id=device_id, name=device_id, bus="fire", category="other", location={"building": "1"},
                        options={"address": address})


def component(device_id: str, uitd_id: str, where: str, category: str = "fire_pressure") -> DeviceConfig:
    return DeviceConfig(id=device_id, name=device_id, bus="fire", category=category,  # type: ignore[arg-type]
                        location={"building": "1"}, options={"uitd": uitd_id, "component": where})


def bus(**kw: Any) -> Gb26875BusConfig:
    kw.setdefault("idle_timeout_s", 5.0)
    return Gb26875BusConfig(kind="gb26875", id="fire", port=0, address=0x0102, **kw)


@asynccontextmanager
async def listening(source: Gb26875Source, sink: RecordingSink) -> AsyncIterator[int]:
    task = asyncio.create_task(source.run(sink))
    try:
        async with asyncio.timeout(5):
            await source.listening.wait()
        assert source.port is not None
        yield source.port
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_panel_story_becomes_events_and_readings(tmp_path: Any) -> None:
    source = Gb26875Source(bus(), [uitd("uitd1"), component("hydrant", "uitd1", "1-5001")])
    sink = RecordingSink()
    async with listening(source, sink) as port, SimUitd("127.0.0.1", port, UITD) as device:
        for _, objects, why in story.story():
            assert await device.send(objects) == codec.CONFIRM, why
        await until(lambda: sum(1 for e in sink.events_seen if e.code == "gb26875.component_state") >= 1
                    and len(sink.of("hydrant", "pressure")) >= 2)
        await until(lambda: len(device.clock_set) == 1)
    fire = [e for e in sink.events_seen if e.code == "gb26875.fire"]
    assert [e.data["active"] for e in fire] == [True, False]  # raised by the detector, ended by the reset
    assert fire[0].data["component"] == "uitd1/1-2017" and fire[0].data["description"] == "3栋12层 感烟探测器"
    assert fire[0].message == "火警：3栋12层 感烟探测器（1号系统 2017号部件）" and fire[0].device_id == "uitd1"
    faults = [(e.data["active"], e.data["component"]) for e in sink.events_seen if e.code == "gb26875.fault"]
    assert faults == [(True, "uitd1/1-3005"), (False, "uitd1/1-3005")]
    shield = next(e for e in sink.events_seen if e.code == "gb26875.component_state")
    assert shield.data["states"] == "shield" and "屏蔽" in shield.message
    # 350.0 kPa from the panel is the mapped hydrant device's pressure in MPa, like a transmitter's.
    assert [r.value for r in sink.of("hydrant", "pressure")] == [pytest.approx(0.35), pytest.approx(0.12)]
    assert sink.of("hydrant", "pressure")[0].unit == "MPa"
    assert source.stats["confirmed"] == len(story.story()) and source.stats["denied"] == 0


async def test_several_devices_at_once_and_an_unknown_one_is_denied(tmp_path: Any) -> None:
    source = Gb26875Source(bus(), [uitd(f"u{i}", UITD + i) for i in range(5)])
    sink = RecordingSink()
    async with listening(source, sink) as port:
        devices = [SimUitd("127.0.0.1", port, UITD + i) for i in range(5)]
        stranger = SimUitd("127.0.0.1", port, 0x999)
        for d in [*devices, stranger]:
            await d.connect()
        smoke = story.component(story.SMOKE, story.SMOKE_DETECTOR, story.NORMAL | story.FIRE)
        answers = await asyncio.gather(*(d.send([smoke]) for d in devices))
        assert answers == [codec.CONFIRM] * 5
        assert await stranger.send([smoke]) == codec.DENY
        for d in [*devices, stranger]:
            await d.close()
    fires = sorted(e.data["component"] for e in sink.events_seen if e.code == "gb26875.fire")
    assert fires == [f"u{i}/1-2017" for i in range(5)]
    assert sink.event_codes().count("gb26875.unknown_device") == 1


@pytest.mark.parametrize("switch", ["corrupt", "garbage"])
async def test_corrupt_frames_are_denied_and_garbage_is_skipped(switch: str) -> None:
    source = Gb26875Source(bus(), [uitd("uitd1")])
    sink = RecordingSink()
    async with listening(source, sink) as port, SimUitd("127.0.0.1", port, UITD, **{switch: True}) as device:
        smoke = story.component(story.SMOKE, story.SMOKE_DETECTOR, story.NORMAL | story.FIRE)
        answer = await device.send([smoke])
        if switch == "corrupt":
            assert answer == codec.DENY
            await until(lambda: "gb26875.corrupt_frame" in sink.event_codes())
            assert "gb26875.fire" not in sink.event_codes() and source.stats["corrupt_frames"] == 1
        else:
            assert answer == codec.CONFIRM
            await until(lambda: "gb26875.fire" in sink.event_codes())
            assert source.stats["garbage_bytes"] == 3
        # A data unit whose object count does not fit its length is denied, not half-read.
        device.corrupt = False
        bad = codec.encode_objects([smoke])
        assert await device.send_raw(bad[:1] + b"\x02" + bad[2:]) == codec.DENY


async def test_silent_connection_is_dropped_and_the_device_goes_offline() -> None:
    source = Gb26875Source(bus(idle_timeout_s=0.3), [uitd("uitd1"), uitd("never", UITD + 1)])
    sink = RecordingSink()
    async with listening(source, sink) as port, SimUitd("127.0.0.1", port, UITD) as device:
        assert await device.send([codec.UitdState(1, datetime.now())]) == codec.CONFIRM
        await until(lambda: any(s.online for s in sink.statuses if s.device_id == "uitd1"))
        await until(lambda: not device.connected)  # then silence: the gateway hangs up
        await until(lambda: sum(1 for s in sink.statuses if s.device_id == "uitd1" and not s.online) >= 3)
    assert source.stats["dropped_idle"] == 1
    never = [s for s in sink.statuses if s.device_id == "never"]
    assert never and not any(s.online for s in never) and "not connected" in (never[0].error or "")


def test_config_problems_name_the_device() -> None:
    with pytest.raises(ConfigError) as info:
        Gb26875Source(bus(), [
            uitd("a"), uitd("b", UITD), uitd("c", "0xZZ"),
            component("d", "nobody", "1-1"), component("e", "a", "12"),
            DeviceConfig(id="f", name="f", bus="fire", category="other", location={"building": "1"}),
        ])
    text = "\n".join(info.value.problems)
    assert "device b: address 0x1d6dd53c10ac is already a's" in text
    assert "device c: options.address: '0xZZ' is not a number" in text
    assert "device d: options.uitd 'nobody'" in text and "device e: options.component '12'" in text
    assert "device f: a GB/T 26875 device needs options.address" in text


class GatedSink(RecordingSink):
    """Holds each events delivery until released (or fails it), like a store that is slow to commit."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = fail

    async def events(self, events: Any) -> None:
        self.called.set()
        await self.release.wait()
        if self.fail:
            raise OSError("disk I/O error")
        await super().events(events)


@pytest.mark.parametrize("fail", [False, True])
async def test_a_frame_is_confirmed_only_once_its_records_are_stored(fail: bool) -> None:
    source = Gb26875Source(bus(), [uitd("uitd1")])
    sink = GatedSink(fail=fail)
    async with listening(source, sink) as port, SimUitd("127.0.0.1", port, UITD) as device:
        smoke = story.component(story.SMOKE, story.SMOKE_DETECTOR, story.NORMAL | story.FIRE)
        answer = asyncio.create_task(device.send([smoke]))
        await sink.called.wait()
        await asyncio.sleep(0.05)  # give a premature confirm the chance to arrive (it must not)
        assert not answer.done() and codec.CONFIRM not in device.answers
        sink.release.set()
        assert await answer == (codec.DENY if fail else codec.CONFIRM)
    assert bool(sink.events_seen) is not fail


async def test_test_device_says_whether_the_transmission_device_is_connected() -> None:
    from drivers.gb26875.source import probe_panel_device

    config = bus()
    source = Gb26875Source(config, [uitd("uitd1"), component("hydrant", "uitd1", "1-5001")])
    assert not probe_panel_device(config, uitd("uitd1"), []).ok
    sink = RecordingSink()
    async with listening(source, sink) as port:
        assert "not connected" in (probe_panel_device(config, uitd("uitd1"), [source]).error or "")
        async with SimUitd("127.0.0.1", port, UITD) as device:
            assert await device.send([codec.UitdState(1, None)]) == codec.CONFIRM
            probe = probe_panel_device(config, component("hydrant", "uitd1", "1-5001"), [source])
            assert probe.ok and {v.point: v.value for v in probe.values}["frames"] == 1


async def test_stopping_with_devices_connected_hangs_up_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    source = Gb26875Source(bus(), [uitd("uitd1")])
    sink = RecordingSink()
    device = SimUitd("127.0.0.1", 0, UITD)
    async with listening(source, sink) as port:
        device.port = port
        await device.connect()
        assert await device.send([codec.UitdState(1, None)]) == codec.CONFIRM
    await until(lambda: not device.connected)  # the gateway hung up on the way out
    await device.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
