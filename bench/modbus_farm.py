"""A light Modbus TCP farm for benchmarks: many units answering FC3 / FC4 with float32 values.

    python bench/modbus_farm.py --base-port 21000 --ports 10 --units 50 --registers 60

Why not ``simulators.modbus``: that simulator plays device models and scripted scenarios (pymodbus
server, datastores, model ticks), so at 500 reads/s its own CPU would take a visible share of a
2-core machine the gateway shares with it. This farm answers from a per-second cache of packed
register blocks with a bare asyncio protocol, so its cost stays small and the figure measured is
the gateway's.

Every port serves units 1..``units``; each unit holds ``registers`` holding (and input) registers
from address 0: ``registers / 2`` big-endian float32 values ``unit * 100 + index + phase``, where
``phase`` moves each second (so report by exception, were it on, would still see changes). Requests
for other function codes or out-of-range addresses get Modbus exception 01 / 02.

Frames (Modbus Application Protocol, Modbus TCP):

    request:  | tid 2 | pid 2 = 0 | len 2 = 6 | unit 1 | fc 1 | address 2 | count 2 |
    answer:   | tid 2 | pid 2 = 0 | len 2 = 3 + 2 * count | unit 1 | fc 1 | byte count 1 | data |
    error:    | tid 2 | pid 2 = 0 | len 2 = 3 | unit 1 | fc | 0x80 1 | exception code 1 |

Prints ``READY`` on stdout once every port listens; stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import struct
import time

_HEADER = struct.Struct(">HHHBBHH")  # one read request: MBAP + function code, address, count
_ANSWER = struct.Struct(">HHHBBB")


class Farm:
    """The register blocks of every unit, packed once per second and shared by all ports."""

    def __init__(self, units: int, registers: int) -> None:
        self.units = units
        self.registers = registers - registers % 2
        self._second = -1
        self._blocks: dict[int, bytes] = {}

    def block(self, unit: int) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._blocks = second, {}
        data = self._blocks.get(unit)
        if data is None:
            phase = round(math.sin(second / 30.0), 3)
            values = [unit * 100 + i + phase for i in range(self.registers // 2)]
            data = self._blocks[unit] = struct.pack(f">{len(values)}f", *values)
        return data


class FarmProtocol(asyncio.Protocol):
    """One client connection: answers every complete request in the buffer, in order (pipelining allowed)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        out = []
        while len(buffer) >= 7:
            length = int.from_bytes(buffer[4:6], "big")
            end = 6 + length
            if len(buffer) < end:
                break
            frame, buffer = buffer[:end], buffer[end:]
            out.append(self.answer(frame))
        self.buffer = buffer
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def answer(self, frame: bytes) -> bytes:
        if len(frame) != 12:
            tid, unit, fc = int.from_bytes(frame[0:2], "big"), frame[6], frame[7] if len(frame) > 7 else 0
            return struct.pack(">HHHBBB", tid, 0, 3, unit, (fc | 0x80) & 0xFF, 0x03)
        tid, _pid, _length, unit, fc, address, count = _HEADER.unpack(frame)
        if fc not in (3, 4):
            return struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 0x01)
        if not 1 <= unit <= self.farm.units or count < 1 or address + count > self.farm.registers:
            return struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 0x02)
        data = self.farm.block(unit)[2 * address : 2 * (address + count)]
        return _ANSWER.pack(tid, 0, 3 + len(data), unit, fc, len(data)) + data


async def serve(base_port: int, ports: int, units: int, registers: int) -> None:
    farm = Farm(units, registers)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: FarmProtocol(farm), "127.0.0.1", base_port + p)
               for p in range(ports)]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-port", type=int, required=True, help="first port; ports base..base+ports-1")
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--units", type=int, default=50, help="units per port (1..units)")
    parser.add_argument("--registers", type=int, default=60, help="registers per unit from address 0")
    args = parser.parse_args()
    asyncio.run(serve(args.base_port, args.ports, args.units, args.registers))


if __name__ == "__main__":
    main()
