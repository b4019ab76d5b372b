"""Version 2 of the upload contract: one JSON Schema (draft 2020-12) file per record kind.

What changed from v1 (``docs/uplink.md`` says it in full):

* every record names its ``estate_id`` and ``gateway_id`` (two estates' ``B1-HP-01`` no longer collide);
* events and alarm steps carry ``message_code`` and ``params`` beside the rendered ``message``
  (``edge.messages``), and technical detail only in ``data``;
* units are ASCII (``m3``, ``m3/h``, ``degC``).

The files are data, shipped with the package; ``edge.schemas`` loads them. Never edit a released
version in place: a change that can reject what an older gateway sends is a new ``v3/`` folder.
"""
