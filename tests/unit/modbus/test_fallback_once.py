"""A firmware address fallback is announced once and costs no refused request per poll (issue 10 defect 7).

Seen on a third-party Modbus server: ``modbus.address_fallback`` 48 times in 48 s. The server
serves the DTSU666's energy at the alternate addresses only one point at a time and refuses a
merged read there, so every poll re-merged, was refused, fell back again and announced it again.
The in-memory link below is that server.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from drivers.modbus.device import DevicePoller
from drivers.modbus.profile import ProfileLibrary
from edge.config.devices import DeviceConfig
from edge.errors import DeviceExceptionCode

T0 = datetime(2026, 5, 1, tzinfo=UTC)
ALTERNATE = {0x101E: 777.0, 0x1028: 12.5}


class PickyServer:
    """Serves every register as 0 except that the energy lives only at 0x101E / 0x1028, read alone."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float) -> bytes:
        self.requests.append((address, count))
        energy_span = range(0x4000, 0x4100)
        if address in energy_span or (address <= 0x1028 + 1 and address + count > 0x101E and count > 2):
            raise DeviceExceptionCode(device_id, 0x02)
        if address in ALTERNATE and count == 2:
            return struct.pack(">f", ALTERNATE[address])
        ratios = {0x0006: 1, 0x0007: 10}  # CT ratio 1, PT ratio x10 = 10
        return b"".join(struct.pack(">h", ratios.get(address + i, 0)) for i in range(count))


async def test_fallback_is_announced_once_and_then_read_without_refusals() -> None:
    device = DeviceConfig.model_validate({"id": "dtsu", "name": "dtsu", "bus": "b", "category": "electricity",
                                          "location": {"building": "1"}, "profile": "chint_dtsu666", "unit_id": 2})
    poller = DevicePoller(device, ProfileLibrary([]).get("chint_dtsu666"), max_gap=16)
    server = PickyServer()
    events = []
    polls = 20
    for i in range(polls):
        result = await poller.poll(server, T0 + timedelta(seconds=i), float(i))
        events += result.events
        values = {r.point: r.value for r in result.readings}
        assert values["energy_import"] == 777.0 and values["energy_export"] == 12.5
    fallbacks = [e for e in events if e.code == "modbus.address_fallback"]
    assert sorted(e.data["point"] for e in fallbacks) == ["energy_export", "energy_import"]
    # After the first polls have learnt where the energy is, no poll asks for anything refused.
    refused = [r for r in server.requests[-5 * 4:] if r[0] in range(0x4000, 0x4100) or (r[0] == 0x101E and r[1] > 2)]
    assert refused == []
