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
