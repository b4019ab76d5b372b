"""GB/T 26875.3-2011: the fire-alarm panel's user information transmission device connects to the gateway.

source.py   Gb26875Source: the TCP listener, confirm / deny, time sync, group-committed hand-over,
availability per idle window; build() and the panel's test-device answer
state.py    PanelState: decoded objects -> events (fire, fault, supervise, power fault per component)
and readings (analog values, mapped to a component's own device when configured) (pure)
codec.py    @@ ... ## frames, little-endian fields, GB18030 text, the object types (pure)
"""
