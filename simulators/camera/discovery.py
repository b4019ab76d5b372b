"""WS-Discovery responder for the simulated cameras: answers Probes on a chosen UDP port.

Joins the WS-Discovery multicast group on one interface (127.0.0.1 in tests, so nothing leaves
the machine) and also answers unicast Probes sent straight to the port. Each simulated camera
answers with its own ProbeMatches datagram, as separate physical cameras would. Probes are parsed
with defusedxml; anything with a DTD is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import uuid
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from drivers.onvif.discovery import MATCHES_ACTION, MULTICAST_GROUP, PROBE_ACTION, SOAP_ENV, WSA, WSD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    endpoint: str  # urn:uuid:...
    xaddr: str
    scopes: tuple[str, ...]


def endpoint_for(camera_id: str) -> str:
    """A stable endpoint reference per simulated camera id."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'estate-edge-sim/' + camera_id)}"


def probe_matches(relates_to: str, item: Announcement) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:a="{WSA}" xmlns:d="{WSD}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        f"<s:Header><a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID><a:RelatesTo>{relates_to}</a:RelatesTo>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:Action>{MATCHES_ACTION}</a:Action></s:Header>"
        "<s:Body><d:ProbeMatches><d:ProbeMatch>"
        f"<a:EndpointReference><a:Address>{item.endpoint}</a:Address></a:EndpointReference>"
        "<d:Types>dn:NetworkVideoTransmitter</d:Types>"
        f"<d:Scopes>{' '.join(item.scopes)}</d:Scopes><d:XAddrs>{item.xaddr}</d:XAddrs>"
        "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
    ).encode()


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, items: list[Announcement]) -> None:
        self.items = items
        self.transport: asyncio.DatagramTransport | None = None
        self.probes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        try:
            root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except (DefusedXmlException, SafeET.ParseError):
            return
        header = root.find(f"{{{SOAP_ENV}}}Header")
        if header is None or (header.findtext(f"{{{WSA}}}Action") or "").strip() != PROBE_ACTION:
            return
        message_id = (header.findtext(f"{{{WSA}}}MessageID") or "").strip()
        types = root.findtext(f".//{{{WSD}}}Probe/{{{WSD}}}Types") or ""
        if types.strip() and "NetworkVideoTransmitter" not in types and "Device" not in types:
            return
        self.probes += 1
        assert self.transport is not None
        for item in self.items:
            self.transport.sendto(probe_matches(message_id, item), addr)


class DiscoveryResponder:
    def __init__(self, items: list[Announcement], *, port: int, interface: str = "127.0.0.1",
                 group: str = MULTICAST_GROUP) -> None:
        self.items = items
        self.port = port
        self.interface = interface
        self.group = group
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Responder | None = None

    @property
    def probes(self) -> int:
        return self._protocol.probes if self._protocol else 0

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("", self.port))
        membership = struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(self.interface))
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        except OSError as exc:  # no multicast on this interface: unicast probes still work
            log.warning("WS-Discovery: cannot join %s on %s: %s", self.group, self.interface, exc)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: _Responder(self.items), sock=sock)
        self._transport, self._protocol = transport, protocol

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
