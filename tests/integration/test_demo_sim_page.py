"""The platform simulator's /_sim page: the newest records per kind, alarms with their pictures, all text escaped.

The two-demos test sees real uploads on it; here the renderer gets hostile text and both evidence
forms (inline base64, uploaded apart by id), and the real simulator answers an empty page and a
picture request for a record it does not have.
"""

from __future__ import annotations

import base64
import json

from simulators.platform.page import SIM_PAGE_KINDS, render_sim_page
from tests.helpers.platform import PlatformSim


def _row(record_id: str, seq: int, payload: dict) -> tuple[str, int, int, str]:
    return (record_id, seq, 1_764_000_000_000_000 + seq, json.dumps(payload, ensure_ascii=False))


def test_alarms_show_their_pictures_and_every_text_is_escaped() -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff" + b"x" * 3000).decode()
    latest = {
        "alarm": [
            _row("01A", 2, {"code": "fire.lane_blocked", "state": "raised", "device_id": "CAM-1",
                            "message": "<script>alert(1)</script>消防通道被占用",
                            "evidence": {"content_type": "image/jpeg", "base64": jpeg}}),
            _row("01B", 1, {"code": "fire.ebike_entry", "state": "raised", "evidence": {"id": "sha256-ab"}}),
        ],
        "indicator": [_row("01C", 3, {"indicator": "energy.total", "period": "hour", "value": 12.5, "unit": "kWh"})],
    }
    page = render_sim_page({"records": {"alarm": 2, "indicator": 1}, "counters": {}}, latest)
    alarms = page.split("<h2 id='alarm'>", 1)[1].split("<h2 id='indicator'>", 1)[0]
    assert alarms.count("<img alt='evidence'") == 2
    assert "src='/_sim/records/01A/evidence'" in alarms and "src='/_sim/records/01B/evidence'" in alarms
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;消防通道被占用" in page
    assert jpeg not in page and f"&lt;{len(jpeg)} base64 characters&gt;" in page  # the record fold is short
    assert "<td>energy.total</td>" in page and "<td>12.5</td>" in page
    assert page.count("none yet") == 2  # event and telemetry
    assert all(f"<h2 id='{kind}'>" in page for kind in SIM_PAGE_KINDS)


def test_the_real_simulator_serves_the_page_and_refuses_an_unknown_picture(platform_sim: PlatformSim) -> None:
    with platform_sim.http() as client:
        page = client.get("/_sim")
        assert page.status_code == 200 and page.text.count("none yet") == len(SIM_PAGE_KINDS) + 1
        missing = client.get("/_sim/records/01NOPE/evidence")
        assert missing.status_code == 404 and "01NOPE" in missing.json()["message"]
