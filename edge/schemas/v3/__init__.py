"""Version 3 of the upload contract: one JSON Schema (draft 2020-12) file per record kind.

What changed from v2 (``docs/uplink.md`` says it in full):

* a telemetry record is one poll of one device: ``device_id``, ``ts`` and ``points``, each point with
  its own ``value``, ``unit`` and ``quality`` (v2 sent one record per reading, repeating the id,
  estate, gateway, device and timestamp thirty times for a 30-point meter). Its ``id`` is the id of
  the poll's first stored reading, so it is stable across resends and stays the idempotency key;
* the batch envelope names its ``contract_version`` (3); a batch without it is version 2.

Events, alarm steps, indicators and device records are as in v2 (only their ``$id`` moved). The
files are data, shipped with the package; ``edge.schemas`` loads them. Never edit a released
version in place: a change that can reject what an older gateway sends is a new ``v4/`` folder.
"""
