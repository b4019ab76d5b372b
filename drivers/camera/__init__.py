"""Frame sources: RTSP streams (OpenCV) and HTTP snapshot polling, both latest-frame-only."""
