"""WS-Discovery (ONVIF Core 7.3): find cameras by multicast Probe, or probe one host by unicast.

Frame on the wire (SOAP 1.2 over UDP, one datagram each way)::

    gateway -> 239.255.255.250:3702 (or host:port)   Probe { Types = dn:NetworkVideoTransmitter }
    camera  -> gateway (unicast, from the camera)    ProbeMatches { EndpointReference, Types,
                                                                    Scopes, XAddrs, RelatesTo }

The Probe is sent twice (UDP may drop one; WS-Discovery's own retransmission advice) and every
answer arriving within ``timeout`` is kept, one per endpoint reference. Answers are parsed with
defusedxml with DTDs forbidden: a datagram from any host on the LAN is untrusted input, and an XXE
or "billion laughs" payload is dropped, not parsed. The port is a parameter so tests and the
camera simulator can use an unprivileged one.

*Leniency where unambiguous.* Cameras in the field answer in many dialects: SOAP 1.1 envelopes,
WS-Addressing 2005/08, WS-Discovery 1.1 (2009/01) namespaces, elements in no namespace, a
``RelatesTo`` that is missing or written as ``uuid:...`` instead of ``urn:uuid:...``, no
``Action``. Elements are therefore found by local name, whatever their namespace. An answer is
still refused when it is *unambiguously* not ours: a ``RelatesTo`` naming another message, or an
``Action`` that is not ProbeMatches (a Hello or Bye). A missing ``RelatesTo`` is accepted because
the probe socket is bound to a fresh ephemeral port for this probe only: whatever ProbeMatches
arrives there answers it. A match needs an endpoint reference and at least one XAddr; every
match dropped is logged with its reason, never silently.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

log = logging.getLogger(__name__)

MULTICAST_GROUP = "239.255.255.250"
DEFAULT_PORT = 3702
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
PROBE_ACTION = f"{WSD}/Probe"
MATCHES_ACTION = f"{WSD}/ProbeMatches"


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    endpoint: str  # EndpointReference/Address, e.g. urn:uuid:...
    xaddrs: tuple[str, ...]  # device service URLs
    scopes: tuple[str, ...]
    types: tuple[str, ...]
    sender: str  # IP the answer came from

    def scope_value(self, key: str) -> str | None:
        """The value of an ``onvif://www.onvif.org/<key>/<value>`` scope, if present."""
        prefix = f"onvif://www.onvif.org/{key}/"
        return next((s[len(prefix):] for s in self.scopes if s.startswith(prefix)), None)


def build_probe(message_id: str, types: str = "dn:NetworkVideoTransmitter") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}">'
        f"<s:Header><a:Action s:mustUnderstand=\"1\">{PROBE_ACTION}</a:Action>"
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>"
        "</a:ReplyTo><a:To s:mustUnderstand=\"1\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        f"</s:Header><s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element, name: str) -> Element | None:
    """The first direct child named ``name`` in any namespace (or none)."""
    return next((c for c in parent if _local(c.tag) == name), None)


def _text(parent: Element, name: str) -> str:
    child = _child(parent, name)
    return (child.text or "").strip() if child is not None else ""


def _same_message_id(a: str, b: str) -> bool:
    """``urn:uuid:X`` and ``uuid:X`` (and case) are the same UUID message id."""
    def norm(value: str) -> str:
        value = value.strip().lower()
        for prefix in ("urn:uuid:", "uuid:"):
            if value.startswith(prefix):
                return value[len(prefix):]
        return value

    return norm(a) == norm(b)


def parse_probe_matches(data: bytes, message_id: str, sender: str) -> list[DiscoveredDevice]:
    """Devices in a ProbeMatches datagram answering ``message_id``; [] for anything else.

    Raises ``ValueError`` for XML that declares a DTD or entities (refused, possible XXE) or is
    malformed, so the caller can count and log it.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValueError(f"refused WS-Discovery datagram from {sender}: {type(exc).__name__}") from exc
    except SafeET.ParseError as exc:
        raise ValueError(f"malformed WS-Discovery datagram from {sender}: {exc}") from exc
    if _local(root.tag) != "Envelope":
        log.info("WS-Discovery datagram from %s is not a SOAP envelope (<%s>): ignored", sender, _local(root.tag))
        return []
    header = _child(root, "Header")
    relates = _text(header, "RelatesTo") if header is not None else ""
    action = _text(header, "Action") if header is not None else ""
    if relates and not _same_message_id(relates, message_id):
        return []  # an answer to someone else's probe: not ours, nothing to log
    if action and not action.endswith("/ProbeMatches"):
        log.debug("WS-Discovery %s from %s ignored while probing", action.rsplit("/", 1)[-1], sender)
        return []
    body = _child(root, "Body")
    matches = [m for m in (body.iter() if body is not None else ()) if _local(m.tag) == "ProbeMatch"]
    devices: list[DiscoveredDevice] = []
    for match in matches:
        reference = _child(match, "EndpointReference")
        endpoint = _text(reference, "Address") if reference is not None else ""
        xaddrs = tuple(_text(match, "XAddrs").split())
        if not endpoint or not xaddrs:
            log.warning("WS-Discovery ProbeMatch from %s dropped: no %s", sender,
                        "endpoint reference" if not endpoint else "XAddrs")
            continue
        devices.append(DiscoveredDevice(
            endpoint=endpoint,
            xaddrs=xaddrs,
            scopes=tuple(_text(match, "Scopes").split()),
            types=tuple(_text(match, "Types").split()),
            sender=sender,
        ))
    return devices


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, DiscoveredDevice] = {}
        self.refused = 0

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        sender = str(addr[0])
        try:
            devices = parse_probe_matches(data, self.message_id, sender)
        except ValueError as exc:
            self.refused += 1
            log.warning("%s", exc)
            return
        for device in devices:
            self.found.setdefault(device.endpoint, device)


async def probe(
    *,
    timeout: float = 3.0,
    port: int = DEFAULT_PORT,
    host: str | None = None,
    interface: str = "0.0.0.0",
    group: str = MULTICAST_GROUP,
    types: str = "dn:NetworkVideoTransmitter",
) -> list[DiscoveredDevice]:
    """Devices answering a Probe within ``timeout`` seconds, sorted by endpoint.

    ``host`` given: unicast to ``host:port``. Otherwise multicast to ``group:port`` from the
    ``interface`` address (``0.0.0.0`` lets the kernel choose the route).
    """
    loop = asyncio.get_running_loop()
    message_id = f"urn:uuid:{uuid.uuid4()}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.bind((interface if host is None else "0.0.0.0", 0))
    if host is None:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        if interface != "0.0.0.0":
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    transport, collector = await loop.create_datagram_endpoint(lambda: _Collector(message_id), sock=sock)
    target = (host or group, port)
    payload = build_probe(message_id, types)
    try:
        transport.sendto(payload, target)
        await asyncio.sleep(min(0.1, timeout / 4))
        transport.sendto(payload, target)
        await asyncio.sleep(max(0.0, timeout - min(0.1, timeout / 4)))
    finally:
        transport.close()
    return sorted(collector.found.values(), key=lambda d: d.endpoint)
