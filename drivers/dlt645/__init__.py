"""DL/T 645-2007 / -1997 electricity meters on RS-485 (pyserial + asyncio).

The meter-line machinery here is shared by the CJ/T 188 driver.

    source.py   MeterLineSource (a ModbusSource with another poller and link), Dlt645Source, build()
    device.py   MeterPoller: one DI per transaction, replies checked against the request, follow-up frames
    line.py     SerialLine: one transaction at a time, inter-frame silence, frame scanning, shared ports
    codec.py    frames, +0x33, BCD values, checksums, stream scanning (pure)
    profile.py  meter profiles (YAML: DI, format, unit, scale, counter or gauge)
    probe.py    the panel's test read and the read-address command for commissioning
    profiles/   shipped profiles: household (2007 and 1997), three-phase, DTSU666 in DL/T 645 mode
"""
