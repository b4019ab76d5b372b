"""The Modbus RTU link over a shared serial port (``drivers.modbus.shared_line``) on a real socat pty pair.

The far end is this test writing the exact bytes a device (or a faulty one) would put on the wire,
so each case shows which replies are trusted: only one that accounts for the request (slave id,
function code, byte count, CRC). A corrupt reply fails at once, not after the timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from drivers import serial_line
from drivers.dlt645 import codec as dlt645
from drivers.dlt645.line import SerialLine
from drivers.modbus.codec import rtu_exception, rtu_read_request, rtu_read_response, with_crc
from drivers.modbus.shared_line import SharedRtuLink
from edge.errors import DeviceExceptionCode, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from simulators.modbus.servers import open_raw_pty
from tests.integration.modbus_support import socat_pair

DATA = bytes.fromhex("0bb8 0000")  # two registers
REQUEST = rtu_read_request(5, 3, 0x0010, 2)
GOOD = rtu_read_response(5, 3, DATA)
TIMEOUT = 0.5


class Peer:
    """The device end of the pty: answers each request with the bytes a case prescribes."""

    def __init__(self, path: str) -> None:
        self.fd = open_raw_pty(path)
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        data = os.read(self.fd, 4096)
        self.requests.append(data)
        if self.replies:
            os.write(self.fd, self.replies.pop(0))

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


@asynccontextmanager
async def wired(tmp_path: Path) -> AsyncIterator[tuple[SharedRtuLink, Peer]]:
    async with socat_pair(tmp_path) as (gateway_end, device_end):
        link = SharedRtuLink(gateway_end, baudrate=19200)
        peer = Peer(device_end)
        try:
            yield link, peer
        finally:
            link.close()
            peer.close()


@pytest.mark.parametrize(
    ("reply", "counter"),
    [
        (GOOD, None),
        (REQUEST + GOOD, "echoes"),  # a converter that echoes the request
        (rtu_read_response(9, 3, DATA) + GOOD, "stale_frames"),  # a late answer from another slave first
    ],
)
async def test_the_answer_to_the_request_is_trusted(tmp_path: Path, reply: bytes, counter: str | None) -> None:
    async with wired(tmp_path) as (link, peer):
        peer.replies.append(reply)
        assert await link.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA
        assert peer.requests == [REQUEST]
        if counter is not None:
            assert getattr(link, counter) == 1
        assert link.corrupt_frames == 0 and link.transactions == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (GOOD[:-1] + bytes([GOOD[-1] ^ 0x55]), "bad CRC"),
        (rtu_read_response(5, 3, DATA + b"\x00\x01"), "byte count 6, expected 4"),
        (with_crc(bytes([5, 4, 4]) + DATA), "unexpected function code 0x04"),
        (rtu_exception(5, 3, 2)[:-1] + b"\x00", "bad CRC on exception frame"),
    ],
)
async def test_a_reply_that_does_not_account_for_the_request_fails_at_once(tmp_path: Path, reply: bytes,
                                                                            reason: str) -> None:
    async with wired(tmp_path) as (link, peer):
        peer.replies.append(reply)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(DeviceProtocolError, match=reason) as caught:
            await link.read("P-5", 5, 3, 0x0010, 2, TIMEOUT)
        assert loop.time() - t0 < TIMEOUT / 2, "a corrupt frame must not cost the line a timeout"
        assert caught.value.device_id == "P-5" and caught.value.detail == "unit 5 FC3 0x0010+2"
        assert link.corrupt_frames == 1
        # The line is usable for the next transaction.
        peer.replies.append(GOOD)
        assert await link.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA


async def test_exception_silence_and_truncation_are_told_apart(tmp_path: Path) -> None:
    async with wired(tmp_path) as (link, peer):
        peer.replies.append(rtu_exception(5, 3, 2))
        with pytest.raises(DeviceExceptionCode) as exc:
            await link.read("P-5", 5, 3, 0x0010, 2, TIMEOUT)
        assert exc.value.code == 2 and "illegal data address" in str(exc.value.detail)
        with pytest.raises(DeviceTimeout, match=r"no answer within 0\.2 s"):
            await link.read("P-5", 5, 3, 0x0010, 2, 0.2)  # nothing queued: the device is silent
        peer.replies.append(GOOD[:4])
        with pytest.raises(DeviceProtocolError, match="truncated frame: 4 bytes"):
            await link.read("P-5", 5, 3, 0x0010, 2, 0.2)
        assert link.corrupt_frames == 1


async def test_coils_come_back_packed(tmp_path: Path) -> None:
    async with wired(tmp_path) as (link, peer):
        peer.replies.append(rtu_read_response(5, 2, b"\x05"))
        assert await link.read("DI", 5, 2, 0, 8, TIMEOUT) == b"\x05"
        assert peer.requests == [rtu_read_request(5, 2, 0, 8)]


async def test_meter_and_modbus_buses_share_one_port_and_each_keeps_its_baud_rate(tmp_path: Path) -> None:
    async with socat_pair(tmp_path) as (gateway_end, device_end):
        meter = SerialLine(gateway_end, dlt645.scan_frame, baudrate=2400, parity="N", shared=True)
        modbus = SharedRtuLink(gateway_end, baudrate=9600)
        peer = Peer(device_end)
        try:
            assert meter._port is modbus._port  # one descriptor, one lock, one buffer
            port = modbus._port
            peer.replies.append(GOOD)
            assert await modbus.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA
            assert port.settings == (9600, 8, "N", 1)
            with pytest.raises(DeviceTimeout):  # no meter answers; the port was switched to 2,400 for it
                await meter.transact("EM", dlt645.read_request("665544332211", 0x00010000), timeout=0.1,
                                     detail="read")
            assert port.switches == 1
            peer.replies.append(GOOD)
            assert await modbus.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA
            assert port.switches == 2 and port.settings == (9600, 8, "N", 1)
        finally:
            meter.close()
            assert port.fd is not None, "the port stays open while the Modbus bus uses it"
            modbus.close()
            assert port.fd is None and serial_line._SHARED_PORTS.get(gateway_end) is None
            peer.close()


async def test_a_port_that_refuses_the_other_parity_fails_that_transaction_only(tmp_path: Path) -> None:
    """Linux pseudo-terminals refuse even parity (EINVAL): a real refusal of a switch, named in the error."""
    async with socat_pair(tmp_path) as (gateway_end, device_end):
        modbus = SharedRtuLink(gateway_end, baudrate=9600, parity="N")
        meter = SerialLine(gateway_end, dlt645.scan_frame, baudrate=9600, parity="E", shared=True)
        peer = Peer(device_end)
        try:
            peer.replies.append(GOOD)
            assert await modbus.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA
            with pytest.raises(DeviceUnreachable, match=r"cannot switch the line to \(9600, 8, 'E', 1\)"):
                await meter.transact("EM", dlt645.read_request("665544332211", 0x00010000), timeout=0.1,
                                     detail="read")
            peer.replies.append(GOOD)
            assert await modbus.read("P-5", 5, 3, 0x0010, 2, TIMEOUT) == DATA  # reopened at its own settings
        finally:
            meter.close()
            modbus.close()
            peer.close()
