"""Report by exception decides once per reading; a row judged again (retry, split batch) stays in."""

from __future__ import annotations

from edge.uplink.exception import ReportByException


def _p(second: int, value: float | None, quality: str = "good", point: str = "pressure") -> dict:
    return {"device_id": "HP-1", "point": point, "value": value, "quality": quality,
            "ts": f"2026-11-27T00:{second // 60:02d}:{second % 60:02d}.000Z"}


def test_deadband_interval_quality_and_rejudging() -> None:
    rbe = ReportByException({"pressure": 0.01}, default_deadband=0.0, max_interval_s=30)
    first, wobble, drop = _p(0, 0.30), _p(5, 0.305), _p(10, 0.25)
    assert rbe.filter([first, wobble, drop]) == [True, False, True]
    assert rbe.keep(drop) is True  # the same reading again (the half of a split batch): still sent
    assert rbe.keep(_p(20, 0.25)) is False and rbe.keep(_p(40, 0.25)) is True  # 30 s after the last one sent
    assert rbe.keep(_p(41, 0.25, "bad")) is True  # a quality change is news
    assert rbe.keep(_p(42, None, "bad")) is True  # no value to compare: it goes up
    # Points without a deadband of their own send every change, nothing else.
    assert rbe.filter([_p(0, 1.0, point="level"), _p(1, 1.0, point="level"), _p(2, 1.01, point="level")]) == [
        True, False, True]
    assert rbe.held == 3


def _poll(second: int, **values: float) -> dict:
    return {"id": f"R{second}", "device_id": "EM-1", "ts": f"2026-11-27T00:00:{second:02d}.000Z",
            "points": [{"point": name, "value": value, "unit": "V", "quality": "good"} for name, value in values.items()]}


def test_poll_records_lose_only_their_steady_points() -> None:
    """Per point inside a poll record (contract v3): the record keeps its id; one left empty is not sent."""
    rbe = ReportByException({}, default_deadband=0.5, max_interval_s=300)
    first, second, third = _poll(0, va=230.0, vb=231.0), _poll(1, va=230.2, vb=235.0), _poll(2, va=230.1, vb=235.2)
    assert rbe.filter_records([first, second, third]) == [True, True, False]
    assert [p["point"] for p in first["points"]] == ["va", "vb"]
    assert second["id"] == "R1" and [(p["point"], p["value"]) for p in second["points"]] == [("vb", 235.0)]
    assert third["points"] == [] and rbe.held == 3
