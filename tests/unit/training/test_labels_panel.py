"""The labelling routes through the real panel app: roles, uploads, refusals that name the place."""

from __future__ import annotations

from pathlib import Path

from edge.panel.roles import Role
from tests.unit.panel.conftest import Panel, _make_panel  # noqa: F401  (the panel tests' own app factory)
from tests.unit.training.scenes import ebike_scenes


async def test_viewer_reads_admin_labels_and_uploads_are_checked(tmp_path: Path, shared_dir: Path) -> None:
    async for panel in _make_panel(tmp_path):
        jpeg = ebike_scenes(shared_dir, 1)[0].jpeg
        admin = await panel.as_role(Role.ADMIN)
        headers = {"X-CSRF-Token": admin, "content-type": "image/jpeg"}
        created = await panel.client.post("/api/labels/frames/cam-1", params={"reason": "false_alarm", "note": "婴儿车"},
                                          content=jpeg, headers=headers)
        assert created.status_code == 201, created.text
        frame = created.json()
        assert frame["reason"] == "false_alarm" and (frame["width"], frame["height"]) == (584, 375)
        image = await panel.client.get(f"/api/labels/image/cam-1/{frame['frame_id']}")
        assert image.status_code == 200 and image.content == jpeg
        not_jpeg = await panel.client.post("/api/labels/frames/cam-1", content=b"GIF89a....", headers=headers)
        assert not_jpeg.status_code == 422 and "cam-1" in not_jpeg.text
        unknown_camera = await panel.client.post("/api/labels/frames/cam-9", content=jpeg, headers=headers)
        assert unknown_camera.status_code == 404
        bad_reason = await panel.client.post("/api/labels/frames/cam-1", params={"reason": "boredom"}, content=jpeg,
                                             headers=headers)
        assert bad_reason.status_code == 422
        outside = await panel.client.put(
            f"/api/labels/frames/cam-1/{frame['frame_id']}", headers={"X-CSRF-Token": admin},
            json={"boxes": [{"x1": 10, "y1": 10, "x2": 999, "y2": 50, "label": "stroller"}]})
        assert outside.status_code == 422 and "outside the 584x375 frame" in outside.text
        saved = await panel.client.put(
            f"/api/labels/frames/cam-1/{frame['frame_id']}", headers={"X-CSRF-Token": admin},
            json={"boxes": [{"x1": 10, "y1": 10, "x2": 99, "y2": 50, "label": "stroller"}]})
        assert saved.status_code == 200 and saved.json()["boxes"][0]["label"] == "stroller"

        viewer_client = panel.new_client()
        viewer = await panel.as_role(Role.VIEWER, client=viewer_client)
        listed = await viewer_client.get("/api/labels/frames", params={"camera": "cam-1", "state": "labelled"})
        assert listed.status_code == 200 and listed.json()["total"] == 1
        refused = await viewer_client.put(f"/api/labels/frames/cam-1/{frame['frame_id']}", headers={"X-CSRF-Token": viewer},
                                          json={"boxes": []})
        assert refused.status_code == 403
        assert (await viewer_client.post("/api/labels/models/cam-1/rollback", headers={"X-CSRF-Token": viewer})
                ).status_code == 403
        no_token = await panel.client.delete(f"/api/labels/frames/cam-1/{frame['frame_id']}")
        assert no_token.status_code == 403, "CSRF applies to the labelling API"
        assert (await panel.client.post("/api/labels/models/cam-1/rollback", headers={"X-CSRF-Token": admin})
                ).status_code == 409, "nothing to roll back to yet"
        missing = await panel.client.post("/api/labels/models/cam-1/activate", headers={"X-CSRF-Token": admin},
                                          json={"card": "site-nothing"})
        assert missing.status_code == 422 and "site-nothing" in missing.text
        gone = await panel.client.delete(f"/api/labels/frames/cam-1/{frame['frame_id']}", headers={"X-CSRF-Token": admin})
        assert gone.status_code == 200
        assert (await panel.client.get(f"/api/labels/frames/cam-1/{frame['frame_id']}")).status_code == 404
        await viewer_client.aclose()
