"""Reload (SIGHUP or the panel) on a real in-process gateway: validate and build first, then swap (issue 10 defect 5).

(a) a reloaded uplink is stopped with the gateway, before the store closes, and keeps the clock
    check's Date hook;
(b) a config whose sources cannot be built (an unknown profile, a bus that fails to build) is
    refused as a whole: the running config, sources and rules stay;
(c) the energy watch built by a reload restores the open energy alarms, so they still clear.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.app import Gateway
from edge.ids import new_id
from edge.indicators.energy_watch import NIGHT_FLOW
from edge.records import AlarmRecord, AlarmState
from edge.store import Store
from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim


def _devices(count: int = 2) -> list[dict[str, Any]]:
    return [{"id": f"WM-{i}", "name": f"水表{i}", "bus": "syn", "category": "water", "location": {"building": "1栋"},
             "poll_interval_s": 0.05} for i in range(count)]


async def _running(gateway: Gateway) -> asyncio.Task[None]:
    task = asyncio.create_task(gateway.run(install_signals=False))
    for _ in range(400):
        if gateway.supervisor is not None and gateway.supervisor.sources:
            return task
        if task.done():
            task.result()
        await asyncio.sleep(0.025)
    raise AssertionError("gateway did not start")


@pytest.fixture
async def estate(tmp_path: Path, platform_sim: PlatformSim) -> AsyncIterator[tuple[Path, Path]]:
    yield write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca, extra={"devices": _devices()})


def _edit(config: Path, change: Any) -> None:
    doc = yaml.safe_load(config.read_text(encoding="utf-8").replace("!secret ", "SECRET:"))
    change(doc)
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).replace("SECRET:", "!secret ")
    config.write_text(text, encoding="utf-8")


async def test_reloaded_uplink_keeps_the_clock_hook_and_stops_with_the_gateway(estate: tuple[Path, Path]) -> None:
    config, secrets = estate
    gateway = Gateway(config, secrets)
    task = await _running(gateway)
    first = gateway.uplink
    assert first is not None and first.client._on_date_header is not None
    _edit(config, lambda d: d["platform"].update({"batch_size": 77}))
    changes = await gateway.reload()
    assert changes is not None and "uplink" in changes["restarted"]
    second = gateway.uplink
    assert second is not None and second is not first and second.settings.batch_size == 77
    assert second.client._on_date_header is not None, "the reloaded uplink lost the clock check's Date hook"
    assert first._workers == []
    gateway.request_stop()
    await asyncio.wait_for(task, 30)
    assert second._workers == [] and second._http is not None and second._http.is_closed, \
        "the reloaded uplink was never stopped"


@pytest.mark.parametrize("breakage", ["unknown profile", "unknown bus kind option"])
async def test_a_reload_whose_sources_cannot_be_built_is_refused_whole(estate: tuple[Path, Path], breakage: str) -> None:
    config, secrets = estate
    gateway = Gateway(config, secrets)
    task = await _running(gateway)
    try:
        running_config = gateway.config
        assert gateway.supervisor is not None
        sources_before = dict(gateway.supervisor.sources)
        rules_before = gateway.rules._specs if gateway.rules else None

        def break_it(doc: dict[str, Any]) -> None:
            doc["thresholds"] = {"offline_after_failures": 9}  # a change that must NOT apply
            doc["buses"].append({"kind": "modbus_tcp", "id": "b2", "host": "127.0.0.1", "port": 1})
            device = {"id": "EM-X", "name": "x", "bus": "b2", "category": "electricity", "location": {"building": "1"},
                      "unit_id": 1}
            if breakage == "unknown profile":
                device["profile"] = "no_such_profile_anywhere"
            else:
                device.update(profile="chint_ddsu666", options={"not_an_option": 1})
            doc["devices"].append(device)

        _edit(config, break_it)
        assert await gateway.reload() is None
        assert gateway.config is running_config
        assert dict(gateway.supervisor.sources) == sources_before
        assert gateway.rules is not None and gateway.rules._specs is rules_before
        assert gateway.reloads == 0
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)


async def test_open_energy_alarms_survive_a_reload(tmp_path: Path, estate: tuple[Path, Path]) -> None:
    config, secrets = estate
    store_path = tmp_path / "edge.db"
    async with Store(store_path, maintenance_interval_s=0) as store:  # raised by an earlier run
        from datetime import UTC, datetime

        await store.append_alarm_records([AlarmRecord(new_id(), NIGHT_FLOW, AlarmState.RAISED,
                                                      datetime.now(UTC), "WM-0", data={"subject": "WM-0"})])
    gateway = Gateway(config, secrets)
    task = await _running(gateway)
    try:
        assert gateway.energy is not None
        before = set(gateway.energy._open)
        assert any(k[0] == NIGHT_FLOW for k in before)
        _edit(config, lambda d: d.setdefault("indicators", {}).setdefault("energy", {}).update(
            {"night_min_duration_min": 90}))
        assert await gateway.reload() is not None
        assert gateway.energy is not None and gateway.energy.settings.night_min_duration_min == 90
        assert set(gateway.energy._open) == before, "the reloaded energy watch forgot its open alarms"
        assert gateway.rule_chain is not None and gateway.rule_chain.engines[1] is gateway.energy
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)


async def test_a_reload_naming_a_missing_file_is_refused_with_its_name(estate: tuple[Path, Path], tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A CA bundle that is gone is what ``check`` refuses: a reload refuses it too, naming the file."""
    config, secrets = estate
    gateway = Gateway(config, secrets)
    task = await _running(gateway)
    try:
        first = gateway.uplink
        missing = tmp_path / "gone" / "ca.pem"
        _edit(config, lambda d: d["platform"].update({"ca_bundle": str(missing)}))
        assert await gateway.reload() is None
        assert gateway.uplink is first
        assert str(missing) in caplog.text
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)
