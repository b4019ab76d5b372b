"""The panel's routes: one module per area; pages render templates, ``api`` answers JSON."""

from edge.panel.routes import admin, alarms, api, auth, bus_tools, cameras, devices, overview, system, tools

__all__ = ["admin", "alarms", "api", "auth", "bus_tools", "cameras", "devices", "overview", "system", "tools"]
