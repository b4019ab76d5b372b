"""Buses and sources: how devices are reached. One entry per physical bus or connection.

A discriminated union on ``kind``: each protocol contributes one model here, and the driver
registry (``drivers.registry``) maps the same ``kind`` to the source that serves it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edge.config.common import Identifier, Section


class SyntheticBusConfig(Section):
    """A built-in generator of plausible readings, for demos and soak tests without hardware."""

    kind: Literal["synthetic"]
    id: Identifier
    seed: int = Field(0, description="Random seed, so a demo run is repeatable.")
    fail_devices: list[str] = Field(default_factory=list, description="Device ids that never answer.")


BusConfig = Annotated[SyntheticBusConfig, Field(discriminator="kind")]
