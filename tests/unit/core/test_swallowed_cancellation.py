"""Reconnect loops stop when cancelled, even when the library they wrap swallowed the cancellation.

The defect: CI hung for 300 s in the OPC-UA pinning test. asyncua 2.1's ``Client._cancel_task``
awaits its own helper tasks under ``except (CancelledError, Exception): pass``; a cancellation that
lands there is spent, the session ends as a lost connection, our reconnect loop goes round again
and whoever cancelled the source (a stop, a reload, a ``TaskGroup``) waits for ever. aiomqtt and
bleak sit in the same place in their loops, so each loop is checked here with a session that
swallows the cancellation the same way and then fails like a lost connection (the camera's resolve
loop waits through the same ``retry_after``).
No network: the library call is what is replaced, the loop under test is the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from drivers.ble.driver import BleSource
from drivers.mqtt.transport import BrokerSession, BrokerSettings
from drivers.opcua.driver import OpcUaSource
from edge.config.buses import BleBusConfig, OpcUaBusConfig
from edge.config.devices import DeviceConfig
from edge.tasks import retry_after


class SwallowingCall:
    """Enters, then loses the caller's cancellation as asyncua's ``_cancel_task`` does, then fails.

    Only the first call swallows: a loop that goes round again is then cancelled for good by the
    test's clean-up, so a regression fails the assertion instead of hanging the suite.
    """

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.entered = asyncio.Event()
        self.calls = 0

    async def __call__(self, *_args: Any) -> None:
        self.calls += 1
        self.entered.set()
        helper = asyncio.create_task(asyncio.sleep(3600))
        if self.calls > 1:
            await helper
        try:  # noqa: SIM105  (written as the library writes it)
            await helper  # the caller's cancellation lands here...
        except (asyncio.CancelledError, Exception):
            pass  # ...and is swallowed, exactly as the library does
        raise self.failure


def opcua_loop(tmp_path: Path, call: SwallowingCall) -> Coroutine[Any, Any, None]:
    bus = OpcUaBusConfig.model_validate({"kind": "opcua", "id": "pr", "endpoint": "opc.tcp://127.0.0.1:1/x",
                                         "backoff_initial_s": 0.05, "backoff_max_s": 0.05})
    device = DeviceConfig.model_validate({"id": "pr1", "name": "pr1", "bus": "pr", "profile": "pump_room_plc",
                                          "category": "water_supply", "location": {"building": "地下室"},
                                          "options": {"prefix": "PumpRoom1"}})
    source = OpcUaSource(bus, [device], certificate_dir=tmp_path, application_uri="urn:test")
    source._session = call  # type: ignore[method-assign]  # the asyncua session is what is replaced
    return source._sessions()


def mqtt_loop(_tmp_path: Path, call: SwallowingCall) -> Coroutine[Any, Any, None]:
    session = BrokerSession(BrokerSettings("127.0.0.1", 1, "c", backoff_initial_s=0.05, backoff_max_s=0.05), name="m")
    session._session = call  # type: ignore[method-assign]  # the aiomqtt session is what is replaced
    return session.run(["#"], lambda _m, _t: None)


def ble_loop(_tmp_path: Path, call: SwallowingCall) -> Coroutine[Any, Any, None]:
    class Scanner:  # bleak's scanner start is what is replaced
        async def __aenter__(self) -> Scanner:
            await call()
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    bus = BleBusConfig.model_validate({"kind": "ble", "id": "ble0", "adapter": "hci0"})
    source = BleSource(bus, [], scanner_factory=lambda _b: Scanner())  # type: ignore[arg-type,return-value]
    return source._scan_forever()


LOOPS: dict[str, tuple[Callable[[Path, SwallowingCall], Coroutine[Any, Any, None]], BaseException]] = {
    "opcua": (opcua_loop, ConnectionError("Connection is closed")),
    "mqtt": (mqtt_loop, aiomqtt.MqttError("Disconnected during message iteration")),
    "ble": (ble_loop, OSError("adapter gone")),
}


@pytest.mark.parametrize("kind", sorted(LOOPS))
async def test_a_reconnect_loop_stops_when_the_library_swallowed_its_cancellation(tmp_path: Path, kind: str) -> None:
    make, failure = LOOPS[kind]
    call = SwallowingCall(failure)
    task = asyncio.create_task(make(tmp_path, call))
    await asyncio.wait_for(call.entered.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert done, f"{kind}: the loop went on after its cancellation was swallowed (session entered {call.calls}x)"
    assert task.cancelled()
    assert call.calls == 1


async def test_retry_after_sleeps_when_nothing_was_cancelled() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await retry_after(0.05)
    assert loop.time() - started >= 0.04
