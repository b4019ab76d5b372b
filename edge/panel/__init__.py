"""The local web panel for property staff and installers (FastAPI, server-rendered, no CDN).

    create_app(store, config_path, secrets_path, alarms=..., hooks=PanelHooks(...), pipeline=...)
    await serve_panel(app, host, port)     # one task of the daemon; cancel it to stop

See ``edge.panel.app`` for the wiring and ``edge.panel.hooks`` for what the daemon plugs in.
"""

from edge.panel.app import create_app
from edge.panel.hooks import (
    CameraFrame,
    DiscoveredDevice,
    FrameDetection,
    PanelHooks,
)
from edge.panel.server import PanelStartError, serve_panel

__all__ = [
    "CameraFrame",
    "DiscoveredDevice",
    "FrameDetection",
    "PanelHooks",
    "PanelStartError",
    "create_app",
    "serve_panel",
]
