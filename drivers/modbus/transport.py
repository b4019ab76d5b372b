"""Links: one pymodbus client each, and the one seam where library errors become ``edge.errors``.

``TcpLink`` is one TCP connection to a host:port (a meter or a serial-to-Ethernet converter);
``RtuLink`` is one RS-485 line. Both offer the same call::

    await link.read(device_id, unit, function_code, address, count, timeout) -> bytes

which returns the response's data bytes: 2 per register for FC3/FC4 (``read_holding_registers``,
``read_input_registers``), the packed bits for FC1/FC2 (``read_coils``, ``read_discrete_inputs``;
LSB of the first byte = the first address, ``codec.unpack_bits``),

and raise ``DeviceTimeout``, ``DeviceUnreachable``, ``DeviceProtocolError`` or
``DeviceExceptionCode``, never a pymodbus exception and never ``None``.

Why a packet hook: pymodbus silently drops a frame whose CRC is wrong and then waits for its
timeout, and a malformed TCP PDU makes it raise inside ``data_received``, which closes the socket.
Either way the cause would be lost and the bus would stall for a timeout. The ``trace_packet``
hook checks every received byte stream with ``codec.check_*_response`` *before* pymodbus parses
it: a corrupt frame fails the pending transaction at once with ``DeviceProtocolError`` (so it can
be counted and reported), stale frames from an earlier, timed-out transaction are dropped, and
pymodbus only ever sees well-formed answers to the request in flight.

One transaction at a time per link: an RTU line is one shared wire, and a TCP connection to a
converter forwards onto one. Concurrency over TCP comes from several links per host (the
scheduler's workers), never from pipelining on one. Before each RTU request the link keeps the
line silent for t3.5 after the previous frame.

Connection failures back off per link (0.5 s doubling to 30 s): while a host is known to be down,
reads fail at once with ``DeviceUnreachable`` instead of each paying a connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from drivers.modbus.codec import (
    EXCEPTION_NAMES,
    FrameCheck,
    Verdict,
    check_rtu_response,
    check_tcp_response,
    data_length,
    inter_frame_silence_s,
    pack_bits,
    registers_to_bytes,
)
from edge.backoff import step_s
from edge.errors import (
    DeviceError,
    DeviceExceptionCode,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from edge.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

# pymodbus's own response timeout; ours (per device) always fires first.
_LIBRARY_TIMEOUT_S = 3600.0
_CONNECT_BACKOFF_FIRST_S = 0.5
_CONNECT_BACKOFF_MAX_S = 30.0


@dataclass(slots=True)
class _Pending:
    device_id: str
    unit: int
    function_code: int
    address: int
    count: int
    nbytes: int  # data bytes of a good answer (codec.data_length)
    tid: int = 0
    received: int = 0  # bytes seen so far (to tell a truncated frame from silence)
    failed: DeviceError | None = None
    corrupt: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"unit {self.unit} FC{self.function_code} {self.address:#06x}+{self.count}"


async def _request(client: AsyncModbusTcpClient | AsyncModbusSerialClient, pending: _Pending) -> ModbusPDU:
    """The pymodbus read for the transaction's function code (FC3, FC4, FC2, FC1)."""
    address, count, unit = pending.address, pending.count, pending.unit
    if pending.function_code == 3:
        return await client.read_holding_registers(address, count=count, device_id=unit)
    if pending.function_code == 4:
        return await client.read_input_registers(address, count=count, device_id=unit)
    if pending.function_code == 2:
        return await client.read_discrete_inputs(address, count=count, device_id=unit)
    if pending.function_code == 1:
        return await client.read_coils(address, count=count, device_id=unit)
    raise ValueError(f"{pending.where}: function code {pending.function_code} is not a read")


class _Payload:
    """A checked read response handed to pymodbus's waiting transaction in place of a decoded PDU.

    ``TransactionManager.execute`` only reads ``dev_id`` and ``transaction_id`` and sets ``retries``.
    """

    __slots__ = ("data", "dev_id", "retries", "transaction_id")

    def __init__(self, dev_id: int, transaction_id: int, data: bytes) -> None:
        self.dev_id = dev_id
        self.transaction_id = transaction_id
        self.data = data
        self.retries = 0


class _PymodbusLink:
    """Common machinery: the packet hook, timeouts, error mapping, connection backoff."""

    name: str
    is_tcp: bool

    def __init__(self) -> None:
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._pending: _Pending | None = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self._connect_failures = 0
        self._last_connect_error = ""
        self._reset_after = False
        self._tap: Callable[[bool, bytes], None] | None = None
        self.retired = False
        self.transactions = 0
        self.corrupt_frames = 0
        self.stale_frames = 0

    # ------------------------------------------------------------------ to override

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        raise NotImplementedError

    def _check(self, data: bytes, pending: _Pending) -> FrameCheck:
        raise NotImplementedError

    def _client_options(self) -> dict[str, Any]:
        """What every pymodbus client of ours is given.

        No library retries or reconnects (the lanes decide), a timeout that never fires before ours, and
        the packet hooks.
        """
        return {
            "name": self.name, "retries": 0, "reconnect_delay": 0, "timeout": _LIBRARY_TIMEOUT_S,
            "trace_packet": self._trace_packet, "trace_connect": self._trace_connect,
        }

    async def _before_send(self) -> None:
        """Hook for the RTU inter-frame silence."""

    def _after_transaction(self) -> None:
        """Hook for the RTU inter-frame silence."""

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def close(self) -> None:
        """Close for good: the lane that owned this link stopped, so a probe still holding it must not reopen it."""
        self.retired = True
        self._disconnect()

    def _disconnect(self) -> None:
        """Drop the connection; the next read opens a fresh one (after a corrupt stream, a lost peer)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def receive_buffer(self) -> bytes:
        """Bytes pymodbus has received but not yet used (what a new answer will be appended to)."""
        return bytes(getattr(getattr(self._client, "ctx", None), "recv_buffer", b"") or b"")

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float, *, tap: Callable[[bool, bytes], None] | None = None) -> bytes:
        """Read ``count`` registers (FC3/FC4) or bits (FC1/FC2); returns the response's data bytes.

        ``tap(sending, data)`` sees this transaction's bytes as they go out and come in, before any
        checking (the panel's "test device" shows them); it is called for this transaction only.
        """
        async with self._lock:
            client = await self._connected_client(device_id)
            await self._before_send()
            pending = _Pending(device_id, unit, function_code, address, count, data_length(function_code, count))
            self._pending = pending
            self._tap = tap
            self.transactions += 1
            try:
                async with asyncio.timeout(timeout):
                    response = await _request(client, pending)
            except TimeoutError:
                if pending.failed is not None:
                    raise pending.failed from None
                if pending.received:
                    self.corrupt_frames += 1
                    raise DeviceProtocolError(
                        device_id, f"truncated frame: {pending.received} bytes, then silence", detail=pending.where
                    ) from None
                raise DeviceTimeout(device_id, f"no answer within {timeout:g} s", detail=pending.where) from None
            except DeviceError:
                raise
            except ConnectionException as exc:
                self._reset_after = True
                raise DeviceUnreachable(device_id, f"{self.name}: {exc}", detail=pending.where) from exc
            except ModbusException as exc:
                self._reset_after = True
                raise DeviceProtocolError(device_id, f"{self.name}: {exc}", detail=pending.where) from exc
            except OSError as exc:
                self._reset_after = True
                raise DeviceUnreachable(device_id, f"{self.name}: {exc.strerror or exc}", detail=pending.where) from exc
            finally:
                self._pending = None
                self._tap = None
                self._after_transaction()
                if self._reset_after:
                    self._reset_after = False
                    self._disconnect()
            raise_if_cancelling()  # pymodbus's wait_for may have swallowed a stop (Python 3.11)
        if isinstance(response, _Payload):
            return response.data
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise DeviceExceptionCode(device_id, code, detail=f"{pending.where}: {EXCEPTION_NAMES.get(code, 'unknown')}")
        if function_code in (1, 2):  # pymodbus pads the bits to whole bytes
            bits = response.bits
            if len(bits) < count:
                self.corrupt_frames += 1
                raise DeviceProtocolError(device_id, f"{len(bits)} bits, expected {count}", detail=pending.where)
            return pack_bits(bits[:count])
        registers = response.registers
        if len(registers) != count:
            self.corrupt_frames += 1
            raise DeviceProtocolError(device_id, f"{len(registers)} registers, expected {count}", detail=pending.where)
        return registers_to_bytes(registers)

    # ------------------------------------------------------------------ connection

    async def _connected_client(self, device_id: str) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._disconnect()
        if self.retired:
            raise DeviceUnreachable(device_id, f"{self.name}: the bus is stopped")
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._retry_at:
            raise DeviceUnreachable(
                device_id,
                f"{self.name} unreachable ({self._last_connect_error}); next attempt in {self._retry_at - now:.1f} s",
            )
        client = self._new_client()
        error = "connection failed"
        try:
            async with asyncio.timeout(self._connect_timeout()):
                ok = await client.connect()
        except TimeoutError:
            ok, error = False, f"no connection within {self._connect_timeout():g} s"
        except OSError as exc:
            ok, error = False, exc.strerror or str(exc)
        except asyncio.CancelledError:
            client.close()
            raise
        if not ok:
            client.close()
            self._connect_failures += 1
            delay = step_s(self._connect_failures - 1, _CONNECT_BACKOFF_FIRST_S, _CONNECT_BACKOFF_MAX_S)
            self._retry_at = loop.time() + delay
            self._last_connect_error = error
            raise DeviceUnreachable(device_id, f"{self.name}: {error}")
        self._connect_failures = 0
        self._client = client
        raise_if_cancelling()
        return client

    def _connect_timeout(self) -> float:
        return 3.0

    # ------------------------------------------------------------------ the packet hook

    def _fail_pending(self, pending: _Pending, error: DeviceError) -> None:
        pending.failed = error
        client = self._client
        future = getattr(getattr(client, "ctx", None), "response_future", None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        try:
            if self._tap is not None:
                self._tap(sending, data)
            pending = self._pending
            if sending:
                if pending is not None and self.is_tcp and len(data) >= 2:
                    pending.tid = int.from_bytes(data[:2], "big")
                return data
            if pending is None or pending.failed is not None:
                return b""  # nothing asked for it: swallow instead of letting pymodbus guess
            pending.received = len(data)
            while True:
                check = self._check(data, pending)
                if check.verdict is Verdict.STALE:
                    self.stale_frames += 1
                    data = data[check.length:]
                    pending.received = len(data)
                    if not data:
                        return b""
                    continue
                break
            if check.verdict is Verdict.OK and len(data) == check.length:
                # A complete, checked data response: hand its register bytes over directly instead of
                # letting pymodbus build a register list that would be packed back into bytes.
                start = 9 if self.is_tcp else 3
                if data[start - 2] == pending.function_code:
                    future = getattr(getattr(self._client, "ctx", None), "response_future", None)
                    if future is not None:
                        # A done future is a read cancelled while its answer was on the way (a source
                        # stopping): nobody waits for it, so it is dropped here, not handed to pymodbus.
                        if not future.done():
                            future.set_result(_Payload(pending.unit, pending.tid, data[start : start + pending.nbytes]))
                        return b""
            if check.verdict is Verdict.CORRUPT:
                self.corrupt_frames += 1
                if self.is_tcp:
                    self._reset_after = True  # the next frame boundary is unknown: start a fresh stream
                self._fail_pending(
                    pending, DeviceProtocolError(pending.device_id, f"corrupt frame: {check.reason}", detail=pending.where)
                )
                return b""
            return data
        except Exception:  # the hook runs inside pymodbus's data_received; never let it break the transport
            log.exception("%s: packet check failed", self.name)
            return data

    def _trace_connect(self, connected: bool) -> None:
        pending = self._pending
        if not connected and pending is not None and pending.failed is None:
            self._fail_pending(pending, DeviceUnreachable(pending.device_id, f"{self.name}: connection lost",
                                                          detail=pending.where))


class TcpLink(_PymodbusLink):
    """One Modbus TCP connection to ``host:port``."""

    is_tcp = True

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 3.0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.name = f"{host}:{port}"

    def _connect_timeout(self) -> float:
        return self.connect_timeout_s

    def _new_client(self) -> AsyncModbusTcpClient:
        return AsyncModbusTcpClient(self.host, port=self.port, **self._client_options())

    def _check(self, data: bytes, pending: _Pending) -> FrameCheck:
        return check_tcp_response(data, pending.tid, pending.unit, pending.function_code, pending.count)


class RtuLink(_PymodbusLink):
    """One RS-485 line driven through pyserial: strictly one transaction at a time, t3.5 between frames."""

    is_tcp = False

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        inter_frame_s: float | None = None,
    ) -> None:
        super().__init__()
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.silence_s = (
            inter_frame_s if inter_frame_s is not None else inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
        )
        self.name = f"{port}@{baudrate}"
        self._quiet_at = 0.0

    def _new_client(self) -> AsyncModbusSerialClient:
        return AsyncModbusSerialClient(
            self.port, baudrate=self.baudrate, bytesize=self.bytesize, parity=self.parity, stopbits=self.stopbits,
            **self._client_options(),
        )

    def _check(self, data: bytes, pending: _Pending) -> FrameCheck:
        return check_rtu_response(data, pending.unit, pending.function_code, pending.count)

    async def _before_send(self) -> None:
        wait = self._quiet_at - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    def _after_transaction(self) -> None:
        self._quiet_at = asyncio.get_running_loop().time() + self.silence_s
