"""WS-UsernameToken digest: what zeep (the driver's library) sends is what the simulator checks."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from lxml import etree
from zeep.wsse.username import UsernameToken

from simulators.camera.onvif_service import CameraIdentity, MediaInfo, OnvifCameraService, password_digest

ENV = "http://www.w3.org/2003/05/soap-envelope"


def service(offset_s: float = 0.0) -> OnvifCameraService:
    media = MediaInfo(640, 480, 10, "rtsp://127.0.0.1/x", "/snap.jpg")
    return OnvifCameraService(CameraIdentity("c"), media, lambda: None, username="admin", password="pa55",
                              clock_offset_s=offset_s)


def signed(password: str, created: datetime) -> etree._Element:
    envelope = etree.fromstring(f'<s:Envelope xmlns:s="{ENV}"><s:Header/><s:Body/></s:Envelope>'.encode())
    token = UsernameToken("admin", password, use_digest=True, created=created.replace(tzinfo=None),
                          zulu_timestamp=True)
    envelope, _ = token.apply(envelope, {})
    return envelope


def as_stdlib(el: etree._Element):  # type: ignore[no-untyped-def]
    from defusedxml import ElementTree as SafeET

    return SafeET.fromstring(etree.tostring(el))


def test_digest_formula() -> None:
    # Base64(SHA-1(nonce + created + password)) for a fixed nonce and time, worked out with hashlib.
    nonce, created = bytes(range(16)), "2025-01-01T00:00:00Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"pa55").digest()).decode()
    assert password_digest(nonce, created, "pa55") == expected
    assert password_digest(nonce, "2025-01-01T00:00:01Z", "pa55") != expected


def test_zeep_token_accepted_and_replay_refused() -> None:
    sim = service()
    root = as_stdlib(signed("pa55", datetime.now(UTC)))
    assert sim._check_wsse(root) is None
    assert sim._check_wsse(root) == "nonce replayed"


def test_wrong_password_refused() -> None:
    assert service()._check_wsse(as_stdlib(signed("nope", datetime.now(UTC)))) == "wrong user name or password"


def test_token_from_a_skewed_clock_refused_unless_adjusted() -> None:
    sim = service(offset_s=3600)  # the camera's clock is an hour ahead
    problem = sim._check_wsse(as_stdlib(signed("pa55", datetime.now(UTC))))
    assert problem is not None and "away from the camera clock" in problem
    assert sim._check_wsse(as_stdlib(signed("pa55", datetime.now(UTC) + timedelta(seconds=3600)))) is None
