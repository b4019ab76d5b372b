"""The key-frames-only reader's GOP check (``drivers.camera.rtsp._KeyFrameGaps``) on made-up arrival times."""

from __future__ import annotations

import logging

import pytest

from drivers.camera.rtsp import _KeyFrameGaps


def feed(gaps: _KeyFrameGaps, times: list[float]) -> float | None:
    result = None
    for t in times:
        result = gaps.add(t)
    return result


@pytest.mark.parametrize(("gop_s", "interval_s", "warns"), [(1.0, 1.0, False), (2.0, 1.0, True), (1.0, 0.5, True),
                                                            (0.5, 1.0, False)])
def test_warns_once_when_key_frames_come_less_often_than_analysis(caplog, gop_s: float, interval_s: float,
                                                                  warns: bool) -> None:
    gaps = _KeyFrameGaps("cam", interval_s)
    with caplog.at_level(logging.WARNING, logger="drivers.camera.rtsp"):
        assert feed(gaps, [0.0, 0.01, 0.02]) is None  # too few to judge (a connection starts with a burst)
        median = feed(gaps, [0.02 + gop_s * k for k in range(1, 30)])
    assert median == pytest.approx(gop_s)
    warned = [r for r in caplog.records if "key frames arrive every" in r.getMessage()]
    assert len(warned) == (1 if warns else 0)
