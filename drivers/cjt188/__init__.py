"""CJ/T 188-2004 water, heat and gas meters on RS-485 or an M-Bus level converter (the same byte stream).

source.py   Cjt188Source (a MeterLineSource, see drivers.dlt645.source), build()
device.py   MeterPoller: read data (DI 901F) with a rolling SER, status bits as readings and events
codec.py    frames, meter data of water / gas and heat meters, unit bytes, status bits (pure)
profile.py  meter profiles (YAML: meter type, DI byte order, status bits, reported values)
profiles/   shipped profiles: cold / hot water (both DI orders), heat, cooling, gas
"""
