"""One physical RS-485 line shared by a DL/T 645 bus and a CJ/T 188 bus (the installer said so with
``shared_line``): one port, one lock, each bus with its own parity; ``estate-edge check`` warns about
the mixed parity and refuses two buses on one port that did not both say so (a Modbus RTU bus among them
included: with ``shared_line`` it joins the line, see ``test_shared_rs485_line``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from drivers.cjt188 import codec as cjt188
from drivers.cjt188.profile import load_profile as cjt188_profile
from drivers.cjt188.source import Cjt188Source
from drivers.dlt645 import codec as dlt645
from drivers.dlt645.profile import load_profile as dlt645_profile
from drivers.dlt645.source import Dlt645Source
from edge.cli import main as cli
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig, ModbusRtuBusConfig, shared_line_report
from simulators.cjt188.meter import SimMeter as WaterMeter
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter as PowerMeter
from tests.helpers.config import write_estate
from tests.integration.modbus_support import RecordingSink, device


def either(buf: bytes) -> dlt645.Scan:
    """The simulated line hears both protocols: a DL/T 645 frame, else a CJ/T 188 one."""
    scan = dlt645.scan_frame(buf)
    return scan if scan.verdict in (dlt645.Verdict.OK, dlt645.Verdict.CORRUPT) else cjt188.scan_frame(buf)


class Hears:
    """A meter on the shared line ignores the other protocol's frames."""

    def __init__(self, meter: Any, frame_type: type) -> None:
        self.meter, self.frame_type = meter, frame_type
        self.silent = self.corrupt = self.truncate = self.garbage = False

    def answer(self, frame: Any) -> bytes | None:
        return self.meter.answer(frame) if isinstance(frame, self.frame_type) else None


async def test_two_meter_buses_share_one_port_and_lock(tmp_path: Path) -> None:
    port = str(tmp_path / "line")
    meters = [Hears(PowerMeter("665544332211", dlt645_profile("generic_household")), dlt645.Frame),
              Hears(WaterMeter("00000000000012", cjt188_profile("generic_water")), cjt188.Frame)]
    server = MeterLineServer(port, meters, either, baudrate=9600, parity="E")
    await server.start()
    power = Dlt645Source(Dlt645BusConfig(kind="dlt645", id="p", port=port, baudrate=9600, parity="N", shared_line=True),
                         [device("EM", "p", "generic_household", 0, period=0.5, options={"address": "665544332211"})])
    # Another baud rate on the same port: the port is switched per transaction. (Switching a Linux pty from
    # or to parity E is refused by the kernel (EINVAL), so both use N here; mixed parity is covered by `check`.)
    water = Cjt188Source(Cjt188BusConfig(kind="cjt188", id="w", port=port, baudrate=2400, parity="N", shared_line=True),
                         [device("WM", "w", "generic_water", 0, period=0.3, options={"address": "12"})])
    sink = RecordingSink()
    tasks = [asyncio.create_task(s.run(sink)) for s in (power, water)]
    try:
        async with asyncio.timeout(15):
            while len(sink.of("EM", "energy_import")) < 3 or len(sink.of("WM", "volume")) < 3:
                await asyncio.sleep(0.02)
        lines = [s.live_link() for s in (power, water)]
        assert lines[0] is not None and lines[1] is not None
        assert lines[0]._port is lines[1]._port  # one descriptor, one lock for the physical line
        assert lines[0].transactions > 0 and lines[1].transactions > 0
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        await server.stop()
    # No transaction of one bus was cut short by the other's: nothing failed on either.
    assert power.stats["devices"]["EM"]["failed"] == 0 and water.stats["devices"]["WM"]["failed"] == 0
    assert server.stats["collisions"] == 0


def _bus(kind: str, bus_id: str, port: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "id": bus_id, "port": port, **kw}


@pytest.mark.parametrize(
    ("buses", "code", "text"),
    [
        ([_bus("dlt645", "a", "/dev/ttyS1", parity="E", shared_line=True),
          _bus("cjt188", "b", "/dev/ttyS1", parity="N", shared_line=True)], 0, "warning: port /dev/ttyS1 is shared"),
        ([_bus("dlt645", "a", "/dev/ttyS1"), _bus("cjt188", "b", "/dev/ttyS1")], 1, "set shared_line: true"),
        ([_bus("dlt645", "a", "/dev/ttyS1", shared_line=True), _bus("modbus_rtu", "m", "/dev/ttyS1")], 1,
         "set shared_line: true on each of them (missing on m)"),
        # The installer says a DTSU666 (DL/T 645 factory setting 9600 8E1) shares the line with 8N1 Modbus devices.
        ([_bus("dlt645", "a", "/dev/ttyS1", baudrate=9600, parity="E", shared_line=True),
          _bus("modbus_rtu", "m", "/dev/ttyS1", baudrate=9600, parity="N", shared_line=True)], 0,
         "warning: port /dev/ttyS1 is shared by buses with mixed parity (a E, m N)"),
        ([_bus("dlt645", "a", "/dev/ttyS1", baudrate=2400, parity="N", shared_line=True),
          _bus("modbus_rtu", "m", "/dev/ttyS1", baudrate=9600, parity="N", shared_line=True)], 0,
         "with different line settings (2400 8N1, 9600 8N1)"),
    ],
)
def test_check_reports_shared_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str], buses: list[dict[str, Any]],
                                    code: int, text: str) -> None:
    config, secrets = write_estate(tmp_path, platform_url="https://127.0.0.1:9", ca=None,
                                   extra={"platform": {"enabled": False}, "buses": buses})
    assert cli(["check", str(config), "--secrets", str(secrets)]) == code
    assert text in capsys.readouterr().err


def test_same_settings_on_a_shared_line_need_no_warning() -> None:
    buses = [Dlt645BusConfig(kind="dlt645", id="a", port="/dev/ttyS1", shared_line=True),
             Cjt188BusConfig(kind="cjt188", id="b", port="/dev/ttyS1", shared_line=True),
             ModbusRtuBusConfig(kind="modbus_rtu", id="m", port="/dev/ttyS1", baudrate=2400, parity="E",
                                shared_line=True)]
    assert shared_line_report(list(buses)) == ([], [])
