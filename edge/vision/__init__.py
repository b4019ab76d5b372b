"""Vision: ONNX detection on camera frames, tracking, zone analytics, motion gating and evidence.

Data flows one way: a frame source (``drivers.camera``) yields frames; ``pipeline.CameraPipeline``
gates, detects, tracks and runs the analytics; ``source.CameraSource`` turns the analytics'
decisions and the camera's health into ``Event``/``Reading``/``DeviceStatus`` for the sink.
"""
