"""ONVIF cameras: WS-Discovery, device and media services (onvif-zeep-async), camera clock offset."""
