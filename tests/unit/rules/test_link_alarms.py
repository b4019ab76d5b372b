"""One alarm per dead link, not one per device behind it (issue 10 defect 7; GB/T 20299.3 8.1.8).

500 devices behind 5 dead TCP converters once gave 500 ``device.offline`` alarms and no
converter-level alarm. The real rule engine, fed the statuses the drivers send (each carries its
link), must give 5 ``link.offline`` alarms and hold the device alarms under them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.config import EstateConfig
from edge.records import AlarmState, DeviceStatus, Severity
from edge.rules import OpenAlarm, RuleEngine, TransitionKind

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def engine() -> RuleEngine:
    return RuleEngine.from_config(EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b"}], "devices": [],
    }))


def link_of(i: int) -> str:
    return f"10.0.0.{i % 5 + 1}:502"


def poll(e: RuleEngine, devices: range, second: int, online: bool, link=link_of) -> list:
    ts = T0 + timedelta(seconds=second)
    return [t for i in devices for t in e.on_status(DeviceStatus(f"D{i}", online, ts, None if online else "timeout",
                                                                 link=link(i)))]


def test_500_devices_behind_5_dead_converters_give_5_link_alarms() -> None:
    e = engine()
    assert poll(e, range(500), 0, True) == []
    out = [t for s in (10, 20, 30, 40) for t in poll(e, range(500), s, False)]
    assert [(t.code, t.kind) for t in out] == [("link.offline", TransitionKind.RAISE)] * 5
    assert sorted(t.subject for t in out) == sorted({link_of(i) for i in range(5)})
    assert all(t.data["devices"] == 100 for t in out)
    # The converters come back: 5 clears, and no device alarm was ever raised, so none to clear.
    back = [t for s in (50, 60) for t in poll(e, range(500), s, True)]
    assert [(t.code, t.kind) for t in back] == [("link.offline", TransitionKind.CLEAR)] * 5


def test_devices_still_silent_when_their_link_returns_get_their_own_alarm() -> None:
    e = engine()
    poll(e, range(10), 0, True)
    raised = [t for s in (10, 20, 30) for t in poll(e, range(10), s, False)]
    assert [t.code for t in raised] == ["link.offline"] * 5
    # Link 10.0.0.1 (devices 0 and 5) returns, but device 5 is still silent: once the link is up,
    # its failures count afresh, and it gets its own alarm after offline_after_failures of them.
    out = [t for s in (40, 50, 60) for t in poll(e, [0], s, True) + poll(e, [5], s, False)]
    assert [(t.code, t.kind, t.subject) for t in out] == [
        ("link.offline", TransitionKind.CLEAR, "10.0.0.1:502"),
        ("device.offline", TransitionKind.RAISE, "D5"),
    ]


def test_one_dead_device_on_a_healthy_link_is_a_device_alarm() -> None:
    e = engine()
    poll(e, range(10), 0, True)
    out = [t for s in (10, 20, 30) for t in poll(e, [3], s, False) + poll(e, [8], s, True)]
    assert [(t.code, t.subject) for t in out] == [("device.offline", "D3")]


def test_a_link_with_one_device_is_that_device() -> None:
    e = engine()
    out = [t for s in (0, 10, 20, 30) for t in poll(e, [1], s, s == 0, link=lambda i: "lonely:502")]
    assert [(t.code, t.subject) for t in out] == [("device.offline", "D1")]


def test_a_restored_link_alarm_is_not_raised_again_after_a_restart() -> None:
    e = engine()
    e.restore([OpenAlarm("a1", "link.offline", None, Severity.MAJOR, AlarmState.RAISED, T0, "",
                         {"subject": "10.0.0.1:502"})])
    out = [t for s in (10, 20, 30) for t in poll(e, range(10), s, False)]  # still down after the restart
    assert sorted(t.subject for t in out) == ["10.0.0.2:502", "10.0.0.3:502", "10.0.0.4:502", "10.0.0.5:502"]
