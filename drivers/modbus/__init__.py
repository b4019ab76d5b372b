"""Modbus TCP and RTU acquisition on pymodbus 3 (async).

driver.py     ModbusSource (one per bus; the edge.sources.Source) and build() for drivers.registry
scheduler.py  lanes: per-line / per-connection workers, slots, skipping late cycles, backoff
device.py     DevicePoller: read plan, atomic polls, firmware fallbacks, decoding, statistics
transport.py  TcpLink / RtuLink: pymodbus clients, frame checks, the error-mapping seam
planner.py    request merging (pure)
codec.py      registers <-> values, frames, CRC, wire timing (pure)
profile.py    device profiles (YAML) and where they are found
handover.py   the bounded hand-over from pollers to the sink
profiles/     the shipped profiles, one YAML file per model
"""
