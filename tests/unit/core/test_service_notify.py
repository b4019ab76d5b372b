"""sd_notify as systemd receives it: datagrams on a real unix socket, pings only while loop and store are healthy."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from edge.service import Notifier, healthy, serial_dropin, serial_ports, watchdog, watchdog_interval_s
from edge.store import Store


@pytest.fixture
def listener(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


async def _next(sock: socket.socket, timeout_s: float = 5) -> str:
    return (await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), timeout_s)).decode()


async def test_states_arrive_as_one_datagram_each(listener: socket.socket) -> None:
    notifier = Notifier(listener.getsockname())
    assert notifier.send("READY=1", "STATUS=running: 3 source(s)")
    assert await _next(listener) == "READY=1\nSTATUS=running: 3 source(s)"
    assert notifier.send("STOPPING=1")
    assert await _next(listener) == "STOPPING=1"


async def test_abstract_socket_names_and_no_socket() -> None:
    name = f"estate-edge-unit-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier("@" + name).send("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"
    quiet = Notifier(None)
    assert not quiet.enabled and not quiet.send("READY=1")  # outside systemd: a no-op, no error
    assert not Notifier("/nonexistent/notify").send("READY=1")  # a gone socket is logged, never raised


def test_watchdog_interval_is_half_the_period_and_only_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval_s() is None


async def test_pings_while_the_store_answers_and_stops_when_it_does_not(tmp_path: Path, listener: socket.socket) -> None:
    store = Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0)
    await store.open()
    assert await healthy(store) is None
    task = asyncio.create_task(watchdog(Notifier(listener.getsockname()), store, 0.05))
    try:
        assert await _next(listener) == "WATCHDOG=1"
        assert await _next(listener) == "WATCHDOG=1"
        await store.close()  # the store stops answering: no more pings, so systemd would restart us
        assert "store read failed" in (await healthy(store) or "")
        while True:  # drain a ping that may have been sent before the close
            try:
                await _next(listener, 0.3)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            await _next(listener, 0.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_serial_dropin_allows_exactly_the_configured_ports(tmp_path: Path) -> None:
    config = tmp_path / "estate.yaml"
    config.write_text("buses:\n"
                      "  - {kind: modbus_rtu, id: A, port: /dev/ttyUSB0, baudrate: 9600}\n"
                      "  - {kind: dlt645, id: B, port: /dev/serial/by-id/usb-FTDI-if00, baudrate: 2400}\n"
                      "  - {kind: cjt188, id: C, port: /dev/ttyUSB0, baudrate: 2400}\n"
                      "  - {kind: modbus_tcp, id: D, host: 127.0.0.1, port: 502}\n"
                      "  - {kind: modbus_rtu, id: E, port: /tmp/pty-link, baudrate: 9600}\n", encoding="utf-8")
    assert serial_ports(config) == ["/dev/ttyUSB0", "/dev/serial/by-id/usb-FTDI-if00"]
    text = serial_dropin(config)
    assert text.splitlines()[2:] == ["[Service]", "DeviceAllow=", "DeviceAllow=/dev/ttyUSB0 rw",
                                     "DeviceAllow=/dev/serial/by-id/usb-FTDI-if00 rw"]
