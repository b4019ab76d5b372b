"""The panel serves a record's local evidence copy and refuses its uploaded copy by name (privacy).

Where the estate's policy renders two copies (``edge.config.privacy``), the store keeps
``<id>.jpg`` (sent to the platform) and ``<id>.local.jpg`` (what staff on the box see; the rows
name it). A viewer who guesses the other name must not get the picture the policy did not mean
for the panel. A record with one copy is served as before.
"""

from __future__ import annotations

from edge.panel.roles import Role
from tests.unit.panel.conftest import Panel

JPEG = b"\xff\xd8\xff\xd9"


async def test_local_copy_served_uploaded_copy_refused(panel: Panel) -> None:
    folder = panel.store.evidence_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rec-1.jpg").write_bytes(JPEG + b"upload")
    (folder / "rec-1.local.jpg").write_bytes(JPEG + b"local")
    (folder / "rec-2.jpg").write_bytes(JPEG + b"only")
    await panel.as_role(Role.VIEWER)
    shown = await panel.client.get("/evidence/rec-1.local.jpg")
    assert shown.status_code == 200 and shown.content == JPEG + b"local"
    assert (await panel.client.get("/evidence/rec-1.jpg")).status_code == 404
    single = await panel.client.get("/evidence/rec-2.jpg")
    assert single.status_code == 200 and single.content == JPEG + b"only"
