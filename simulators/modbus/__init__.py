"""Modbus simulator: many TCP ports and unit ids, RTU lines on socat ptys with real wire timing.

``python -m simulators.modbus --scenario FILE`` (see ``scenario.py`` for the file format).
"""
