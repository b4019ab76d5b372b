"""The estate's privacy policy for camera images, and how a camera may tighten it.

Seed 000 5.5 asks for field-level masking and seed 002 5.2.1.1 b) for 加密、脱敏 of personal data;
an evidence JPEG showing a resident's face is such data. Two copies of an evidence image can exist:

- the **upload** copy, sent to the platform (and kept on the box only to be sent): people are
  blurred unless the *estate* turns it off (``privacy.blur_people_upload``, default on). It is an
  estate decision, taken once with the platform operator, not a camera detail an installer can
  switch off by accident;
- the **local** copy, shown in the panel to staff investigating an alarm on site: not blurred by
  default (``privacy.blur_people_local``, default off), and the same switch also blurs the panel's
  live camera view.

A camera may only move towards more privacy: ``cameras[].privacy.blur_people_upload: true`` blurs
that camera's uploads even where the estate does not; ``false`` where the estate blurs is refused
by the config check (it would weaken the estate's policy), naming the camera. When both copies
come out the same, the box renders and stores one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edge.config.common import Section


@dataclass(frozen=True, slots=True)
class EvidenceBlur:
    """What one camera blurs: people in the uploaded copy, and in the local copy (and live view)."""

    upload: bool = True
    local: bool = False

    @property
    def any(self) -> bool:
        """Whether people must be found at all (an extra class in inference, a full-frame pass with a crop)."""
        return self.upload or self.local


class PrivacyPolicy(Section):
    """Estate-wide blurring of people in camera images (see ``edge.config.privacy``)."""

    blur_people_upload: bool = Field(
        True, description="Blur people in evidence images uploaded to the platform. Turn off only where the "
        "estate has agreed with the platform operator to send identifiable images; a camera cannot turn it off."
    )
    blur_people_local: bool = Field(
        False, description="Blur people in the evidence kept on the box for the panel, and in the panel's live "
        "camera view. Off by default so staff investigating an alarm see who was there; the uploaded copy "
        "is blurred separately (blur_people_upload)."
    )

    def for_camera(self, where: str, upload: bool | None, local: bool | None) -> EvidenceBlur:
        """The policy for the camera at ``where`` (``cameras[2]``).

        Its own settings are ``upload`` / ``local`` (``None``: the estate's).

        Raises ``ValueError`` naming the camera's setting when it would blur less than the estate.
        """
        for name, own, estate in (("blur_people_upload", upload, self.blur_people_upload),
                                  ("blur_people_local", local, self.blur_people_local)):
            if own is False and estate:
                raise ValueError(
                    f"{where}.privacy.{name}: false would weaken the estate's privacy.{name}: true; "
                    "a camera may only add blurring (turn it off for the whole estate under privacy:)"
                )
        return EvidenceBlur(upload=bool(upload) or self.blur_people_upload, local=bool(local) or self.blur_people_local)
