"""A pump-room PLC as an asyncua OPC-UA server: the variables of ``drivers/opcua/profiles/pump_room_plc.yaml``.

Security: endpoints with no security and with Basic256Sha256 (Sign, SignAndEncrypt), using a
server certificate generated into the working folder on first start (kept, so a restarted server
presents the same certificate). ``extra_namespaces`` registers other URIs first, which moves the
pump-room namespace to another index: what a PLC project rebuild does, and what the driver's
namespace-independent node ids are for. ``subscriptions=False`` makes the server refuse
subscriptions (``BadServiceUnsupported``) so the driver's polling fallback can be exercised, and
``deadband=False`` one that refuses data-change filters (``BadMonitoredItemFilterUnsupported``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.server.internal_session import InternalSession
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.processes import held_ports

NAMESPACE = "urn:estate-edge:sim:pump-room"
SERVER_URI = "urn:estate-edge:sim:pump-room-plc"

# variable path under the room object, initial value, OPC-UA variant type
VARIABLES: tuple[tuple[str, Any, ua.VariantType], ...] = (
    ("OutletPressure", 0.32, ua.VariantType.Double),
    ("FirePoolLevel", 3.2, ua.VariantType.Double),
    ("SumpLevel", 35.0, ua.VariantType.Float),
    ("Pump1.Running", True, ua.VariantType.Boolean),
    ("Pump1.Current", 18.5, ua.VariantType.Double),
    ("Pump1.Frequency", 45.0, ua.VariantType.Double),
    ("Pump2.Running", False, ua.VariantType.Boolean),
    ("Pump2.Current", 0.0, ua.VariantType.Double),
    ("Pump2.Frequency", 0.0, ua.VariantType.Double),
    ("FaultCode", 0, ua.VariantType.UInt16),
)


def free_port() -> int:
    """A port below the ephemeral range for the server to listen on (``edge.processes.held_ports``)."""
    with held_ports() as free:
        return free()


class PumpRoomPlc:
    """``async with PumpRoomPlc(folder, port=...) as plc:`` then ``await plc.write("PR1", "OutletPressure", 0.05)``."""

    def __init__(self, folder: Path, *, port: int | None = None, rooms: tuple[str, ...] = ("PumpRoom1",),
                 extra_namespaces: tuple[str, ...] = (), subscriptions: bool = True, deadband: bool = True) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.rooms = rooms
        self.extra_namespaces = extra_namespaces
        self.subscriptions = subscriptions
        self.deadband = deadband
        self.server: Server | None = None
        self.nodes: dict[tuple[str, str], Any] = {}
        self.namespace_index = 0

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/estate-edge/pump-room"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cert, key = self.folder / "server_cert.der", self.folder / "server_key.pem"
        await setup_self_signed_certificate(key, cert, SERVER_URI, "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH],
                                            {"countryName": "CN", "organizationName": "estate-edge simulators",
                                             "commonName": "pump-room PLC"})
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("estate-edge pump-room PLC simulator")
        await server.set_application_uri(SERVER_URI)
        server.set_security_policy([
            ua.SecurityPolicyType.NoSecurity,
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ])
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        idx = self.namespace_index = await server.register_namespace(NAMESPACE)
        objects = server.nodes.objects
        for room in self.rooms:
            room_obj = await objects.add_object(ua.NodeId(room, idx), ua.QualifiedName(room, idx))
            parents: dict[str, Any] = {"": room_obj}
            for path, value, vtype in VARIABLES:
                head, _, leaf = path.rpartition(".")
                parent = parents.get(head)
                if parent is None:
                    parent = parents[head] = await room_obj.add_object(ua.NodeId(f"{room}.{head}", idx),
                                                                      ua.QualifiedName(head, idx))
                var = await parent.add_variable(ua.NodeId(f"{room}.{path}", idx), ua.QualifiedName(leaf, idx),
                                                ua.Variant(value, vtype))
                self.nodes[(room, path)] = var
        if not self.subscriptions:
            _use_session_class(server, _NoSubscriptionSession)
        elif not self.deadband:
            _use_session_class(server, _NoDeadbandSession)
        await server.start()
        self.server = server

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def write(self, room: str, path: str, value: Any, *, status: ua.StatusCode | None = None) -> None:
        """Set a variable as the PLC program would (``status`` e.g. Bad for a broken sensor loop)."""
        var = self.nodes[(room, path)]
        vtype = next(t for p, _, t in VARIABLES if p == path)
        data = ua.DataValue(ua.Variant(value, vtype), StatusCode=status or ua.StatusCode(ua.StatusCodes.Good),
                            SourceTimestamp=None, ServerTimestamp=None)
        assert self.server is not None
        await self.server.write_attribute_value(var.nodeid, data)

    async def drift(self, t: float) -> None:
        """Move values a little over time ``t`` (seconds), for demo runs."""
        for room in self.rooms:
            await self.write(room, "OutletPressure", round(0.32 + 0.02 * math.sin(t / 30), 4))
            await self.write(room, "Pump1.Current", round(18.5 + 0.8 * math.sin(t / 7), 2))

    async def __aenter__(self) -> PumpRoomPlc:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


class _NoSubscriptionSession(InternalSession):
    async def create_subscription(self, params: Any, callback: Any = None, request_callback: Any = None) -> Any:
        raise ua.UaStatusCodeError(ua.StatusCodes.BadServiceUnsupported)


class _NoDeadbandSession(InternalSession):
    async def create_monitored_items(self, params: ua.CreateMonitoredItemsParameters) -> list[ua.MonitoredItemCreateResult]:
        """Items asking for a deadband get BadMonitoredItemFilterUnsupported; the others are created."""
        plain = [item for item in params.ItemsToCreate if not _wants_deadband(item)]
        created = iter(await super().create_monitored_items(ua.CreateMonitoredItemsParameters(
            SubscriptionId=params.SubscriptionId, TimestampsToReturn=params.TimestampsToReturn,
            ItemsToCreate=plain)) if plain else [])
        out = []
        for item in params.ItemsToCreate:
            if not _wants_deadband(item):
                out.append(next(created))
            else:
                refused = ua.MonitoredItemCreateResult()
                refused.StatusCode = ua.StatusCode(ua.StatusCodes.BadMonitoredItemFilterUnsupported)
                out.append(refused)
        return out


def _wants_deadband(item: ua.MonitoredItemCreateRequest) -> bool:
    flt = item.RequestedParameters.Filter
    # asyncua decodes the filter into its generated DataChangeFilter class, not ua.DataChangeFilter: duck-type it.
    return int(getattr(flt, "DeadbandType", 0) or 0) != ua.DeadbandType.None_


def _use_session_class(server: Server, session_class: type[InternalSession]) -> None:
    """Sessions of this server (only) are ``session_class``: a PLC with fewer services than asyncua's."""
    iserver = server.iserver

    def create_session(name: str, user: Any = None, external: bool = False) -> InternalSession:
        kwargs = {"user": user} if user is not None else {}
        return session_class(iserver, iserver.aspace, iserver.subscription_service, name, external=external, **kwargs)

    iserver.create_session = create_session  # type: ignore[method-assign]


async def serve(folder: Path, port: int | None, duration: float | None) -> None:
    async with PumpRoomPlc(folder, port=port) as plc:
        print(f"ENDPOINT {plc.endpoint}")
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with contextlib.suppress(asyncio.CancelledError):
            while duration is None or loop.time() - started < duration:
                await plc.drift(loop.time() - started)
                await asyncio.sleep(1.0)


logging.getLogger("asyncua").setLevel(logging.WARNING)
