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
