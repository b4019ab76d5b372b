"""The BLE advertisement replayer for tests and simulators: ``drivers.ble.replay`` plus the shipped recordings.

The replaying ``Scanner`` lives in the driver (a BLE bus can name a recording in its config, which
is how the demo estate runs its BLE sensor without a radio); this module keeps the names the tests
import and says where the recordings are (``recordings/*.jsonl``, package data).
"""

from __future__ import annotations

from pathlib import Path

from drivers.ble.replay import ReplayScanner, advertisement_from, load_recording, uuid16

RECORDINGS = Path(__file__).resolve().parent / "recordings"

__all__ = ["RECORDINGS", "ReplayScanner", "advertisement_from", "load_recording", "uuid16"]
