"""``python -m simulators.modbus --scenario FILE`` runs alone, prints what it serves and answers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest
import yaml

from drivers.modbus.codec import DataType, decode_value
from drivers.modbus.transport import RtuLink, TcpLink
from edge.errors import DeviceTimeout

REPO = Path(__file__).resolve().parents[2]


async def test_simulator_cli_serves_tcp_and_rtu_and_stops_cleanly(tmp_path: Path) -> None:
    link = tmp_path / "line1"
    scenario = {
        "name": "cli",
        "tcp": [{"id": "conv", "port": 0, "devices": [
            {"id": "meter", "unit_id": 5, "profile": "eastron_sdm120", "model": {"energy": 321.5}}]}],
        "rtu": [{"id": "line1", "link": str(link), "baudrate": 19200, "devices": [
            {"id": "tank", "unit_id": 2, "profile": "generic_rs485_level", "model": {"value": 2.5, "noise": 0},
             "registers": {"unit_code": 7, "decimals": 2, "range_zero": 0, "range_full": 5}}]}],
        "cues": [{"at": 300, "device": "tank", "action": "offline"}],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus", "--scenario", str(path),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            while (line := (await proc.stdout.readline()).decode()) and line.strip() != "READY":
                lines.append(line.strip())
        out = "\n".join(lines)
        match = re.search(r"tcp 127\.0\.0\.1:(\d+) unit 5 meter eastron_sdm120", out)
        assert match, out
        assert f"rtu {link} (line1, 19200 baud) unit 2 tank generic_rs485_level" in out
        assert "cue at 300 s: tank offline" in out

        tcp = TcpLink("127.0.0.1", int(match.group(1)))
        data = await tcp.read("meter", 5, 4, 0x0048, 2, 1.0)
        tcp.close()
        assert decode_value(data, DataType.FLOAT32) == 321.5

        rtu = RtuLink(str(link), baudrate=19200)
        data = await rtu.read("tank", 2, 3, 0x0004, 1, 1.0)
        rtu.close()
        assert decode_value(data, DataType.INT16) == 250  # 2.50 m with 2 decimals
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            code = await proc.wait()
    assert code == 0
    assert not os.path.exists(link)  # socat is gone and its link with it


async def test_bad_scenario_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntcp:\n  - port: 0\n    devices:\n      - {id: a, profile: p, unit_id: 900}\n", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus", "--scenario", str(path),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert f"{path}:5: tcp[0].devices[0].unit_id" in err.decode()


async def test_shipped_state_inputs_scenario_runs_alone_with_a_silent_device(tmp_path: Path) -> None:
    """``--scenario state_inputs``: the DI module answers FC2 over TCP; ``--silent`` keeps the lift box mute."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus", "--scenario", "state_inputs", "--rtu-dir", str(tmp_path),
        "--silent", "B3-LIFT-01", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            while (line := (await proc.stdout.readline()).decode()) and line.strip() != "READY":
                lines.append(line.strip())
        out = "\n".join(lines)
        match = re.search(r"tcp 127\.0\.0\.1:(\d+) unit 1 B3-DI-01 generic_di8_module", out)
        assert match, out
        assert f"rtu {tmp_path / 'lift-rs485'} (lift-rs485, 9600 baud) unit 1 B3-LIFT-01 generic_lift_box" in out
        assert "cue at 30 s: B3-LIFT-01 set fault_code = 5" in out

        tcp = TcpLink("127.0.0.1", int(match.group(1)))
        try:
            assert await tcp.read("B3-DI-01", 1, 2, 0, 8, 1.0) == b"\x03"  # both fire doors shut
        finally:
            tcp.close()
        rtu = RtuLink(str(tmp_path / "lift-rs485"))
        try:
            with pytest.raises(DeviceTimeout):
                await rtu.read("B3-LIFT-01", 1, 3, 0, 6, 0.3)
        finally:
            rtu.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            code = await proc.wait()
    assert code == 0


async def test_silencing_an_unknown_device_is_refused() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus", "--scenario", "state_inputs", "--silent", "B9-NOPE",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    assert proc.returncode == 2 and "--silent: no device B9-NOPE" in err.decode()
