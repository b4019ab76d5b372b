"""Two copies of one evidence picture in the store (privacy): what is shown, what is sent, what is evicted.

A real SQLite store and evidence folder. The uploaded copy (``Event.evidence``) and the panel's
copy (``evidence_local``) are different byte strings standing in for the blurred and the plain
rendering (``edge.vision.evidence.render_copies``; the pictures themselves are tested in
``tests/unit/vision/test_privacy.py`` and end to end in ``tests/integration/test_evidence_privacy.py``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from edge.records import AlarmRecord, AlarmState, Event, Lane
from edge.store import Store
from edge.store.codec import evidence_file_names, upload_evidence_name
from tests.helpers.sql import sql_rows

T0 = datetime(2026, 11, 1, tzinfo=UTC)
UPLOAD = b"\xff\xd8 blurred for the platform " + bytes(4000)
LOCAL = b"\xff\xd8 plain for the panel " + bytes(6000)


async def test_two_copies_the_panel_names_one_and_the_outbox_sends_the_other(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        before = await store.used_bytes()
        (eid,) = await store.append_events([Event("fire.lane_blocked", T0, "CAM-1", evidence=UPLOAD,
                                                  evidence_local=LOCAL)])
        (aid,) = await store.append_alarm_records([AlarmRecord("A1", "fire.lane_blocked", AlarmState.RAISED, T0,
                                                               "CAM-1", evidence=UPLOAD, evidence_local=LOCAL)])
        # The rows name the panel's copy; both files are on disk, each with its own bytes.
        [(shown,)] = await sql_rows(store, "SELECT evidence_path FROM events WHERE id=?", (eid,))
        assert shown == f"{eid}.local.jpg" and upload_evidence_name(shown) == f"{eid}.jpg"
        assert store.evidence_file(shown).read_bytes() == LOCAL  # type: ignore[union-attr]
        assert store.evidence_file(f"{eid}.jpg").read_bytes() == UPLOAD  # type: ignore[union-attr]
        [(alarm_shown,)] = await sql_rows(store, "SELECT evidence_path FROM alarms WHERE alarm_id='A1'")
        assert alarm_shown == f"{aid}.local.jpg"
        # The quota counts both copies of both records.
        assert await store.used_bytes() - before >= 2 * (len(UPLOAD) + len(LOCAL))
        # What leaves the box is the uploaded copy, under the SHA-256 of exactly those bytes.
        for lane, rid in ((Lane.EVENT, eid), (Lane.ALARM, aid)):
            [row] = await store.pending(lane, "", 10)
            ref = row.payload["evidence"]
            assert row.id == rid and ref["id"] == "sha256-" + hashlib.sha256(UPLOAD).hexdigest()
            assert row.attachments == {ref["id"]: UPLOAD} and ref["bytes"] == len(UPLOAD)


async def test_one_copy_when_they_agree_and_nothing_sent_if_the_upload_copy_is_gone(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        first, second = await store.append_events([
            Event("fire.lane_blocked", T0, "CAM-1", evidence=UPLOAD, evidence_local=UPLOAD),  # same picture
            Event("fire.lane_blocked", T0, "CAM-2", evidence=UPLOAD + b"2", evidence_local=LOCAL),
        ])
        names = sorted(p.name for p in store.evidence_dir.iterdir())
        assert names == sorted([f"{first}.jpg", f"{second}.jpg", f"{second}.local.jpg"])
        # Someone deletes the uploaded copy: the panel's copy must not be sent in its place.
        (store.evidence_dir / f"{second}.jpg").unlink()
        rows = {r.id: r for r in await store.pending(Lane.EVENT, "", 10)}
        assert "evidence" in rows[first].payload
        assert "evidence" not in rows[second].payload and rows[second].attachments == {}


async def test_eviction_removes_both_copies(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        (eid,) = await store.append_events([Event("fire.lane_blocked", T0, "CAM-1", evidence=UPLOAD,
                                                  evidence_local=LOCAL)])
        assert evidence_file_names(f"{eid}.local.jpg") == (f"{eid}.local.jpg", f"{eid}.jpg")
        store.quota_bytes = await store.used_bytes() - len(LOCAL)  # over quota by the panel's copy
        assert await store.enforce_quota(chunk=10) >= 1
        assert await store.count("events") == 1  # only the eviction's own record is left
        assert not (store.evidence_dir / f"{eid}.local.jpg").exists()
        assert not (store.evidence_dir / f"{eid}.jpg").exists()
