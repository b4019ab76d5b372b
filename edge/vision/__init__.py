"""Vision: ONNX detection on camera frames, tracking, zone analytics, motion gating and evidence.

Frames in, decisions out; a pure library that imports no driver. ``drivers.camera.source.CameraSource``
acquires the frames (ONVIF, RTSP / snapshots, reconnect, stream health, device status) and hands each
one to ``camera.CameraAnalyser``, whose ``pipeline.CameraPipeline`` gates, detects, tracks and runs the
analytics, and which turns the decisions into ``Event``s with evidence (``edge.cameras`` joins the two).
"""
