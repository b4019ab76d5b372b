"""Write estate configs and 0600 secrets files for tests, the way an installer would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edge.config import EstateConfig, load_config


def write_estate(tmp: Path, *, platform_url: str, ca: Path | None, extra: dict[str, Any] | None = None,
                 client_secret: str = "test-secret") -> tuple[Path, Path]:
    """Return (config path, secrets path) for a small estate using the synthetic bus."""
    doc: dict[str, Any] = {
        "estate": {"id": "EST-TEST-01", "name": "测试花园", "gateway_id": "GW-TEST-01", "timezone": "Asia/Shanghai"},
        "platform": {"url": platform_url, "client_id": "gateway", "client_secret": "!secret platform_client_secret",
                     "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "breaker_failures": 3, "breaker_reset_s": 0.5},
        "store": {"path": str(tmp / "edge.db"), "evidence_dir": str(tmp / "evidence"), "batch_max_delay_ms": 5},
        "panel": {"enabled": False},
        "buses": [{"kind": "synthetic", "id": "syn"}],
        "devices": [],
    }
    if ca is not None:
        doc["platform"]["ca_bundle"] = str(ca)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    text = text.replace("'!secret platform_client_secret'", "!secret platform_client_secret")
    config_path = tmp / "estate.yaml"
    config_path.write_text(text, encoding="utf-8")
    secrets_path = tmp / "secrets.yaml"
    secrets_path.write_text(f"platform_client_secret: {client_secret}\n", encoding="utf-8")
    secrets_path.chmod(0o600)
    return config_path, secrets_path


def load(tmp: Path, **kwargs: Any) -> EstateConfig:
    config_path, secrets_path = write_estate(tmp, **kwargs)
    return load_config(config_path, secrets_path)
