"""Version 1 of the upload contract: one JSON Schema (draft 2020-12) file per record kind.

The files are data, shipped with the package; ``edge.schemas`` loads them. Never edit a released
version in place: a change that can reject what an older gateway sends is a new ``v2/`` folder.
"""
