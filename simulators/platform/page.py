"""The platform simulator's ``/_sim`` page: what the platform received, readable by a person.

Counts per kind, then the newest records of each kind (alarms, indicators, events, telemetry) with
the fields that matter per kind, every alarm's evidence picture inline (served by
``/_sim/records/{id}/evidence`` whether it arrived base64 in the record or uploaded apart), and the
full record folded under "record". Everything from a record is HTML-escaped: the gateway's
messages are untrusted text here as anywhere.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

SIM_PAGE_KINDS = ("alarm", "indicator", "event", "telemetry")
SIM_PAGE_LATEST = 15
# Columns shown per kind (the full record is one click away, under "record").
_SIM_COLUMNS = {
    "alarm": ("ts", "code", "state", "severity", "device_id", "message"),
    "indicator": ("indicator", "code", "period", "period_start", "dimensions", "value", "unit", "version", "clause"),
    "event": ("ts", "code", "severity", "device_id", "message"),
    "telemetry": ("ts", "device_id", "readings"),  # readings: point=value unit (quality), v2 and v3 alike
}


def render_sim_page(data: dict[str, Any], latest: dict[str, list[tuple[str, int, int, str]]]) -> str:
    """The inspection page: counts, then per kind the newest records (alarms with their evidence pictures)."""
    esc = html.escape
    counts = "".join(f"<tr><td>{esc(str(k))}</td><td>{v}</td></tr>" for k, v in sorted(data["records"].items()))
    counts += "".join(f"<tr><td>{esc(str(k))} readings</td><td>{v}</td></tr>"
                      for k, v in sorted(data.get("readings", {}).items()))
    counters = "".join(f"<tr><td>{esc(str(k))}</td><td>{v}</td></tr>" for k, v in sorted(data["counters"].items()))
    sections = []
    for kind in SIM_PAGE_KINDS:
        rows = latest.get(kind, [])
        columns = _SIM_COLUMNS[kind]
        head = "".join(f"<th>{c}</th>" for c in ("seq", "received", *columns, "picture", "record"))
        body = []
        for record_id, seq, received_us, raw in rows:
            payload = json.loads(raw)
            cells = "".join(f"<td>{esc(_cell(_column(payload, c)))}</td>" for c in columns)
            evidence = payload.get("evidence")
            picture = (f"<a href='/_sim/records/{esc(record_id)}/evidence'><img alt='evidence' loading='lazy' "
                       f"src='/_sim/records/{esc(record_id)}/evidence' style='max-width:240px;max-height:160px'></a>"
                       if isinstance(evidence, dict) and ("base64" in evidence or "id" in evidence) else "")
            shown = {k: ({**v, "base64": f"<{len(v['base64'])} base64 characters>"}
                         if isinstance(v, dict) and "base64" in v else v) for k, v in payload.items()}
            received = datetime.fromtimestamp(received_us / 1e6, UTC).astimezone().strftime("%H:%M:%S")
            body.append(f"<tr><td>{seq}</td><td>{received}</td>{cells}<td>{picture}</td><td><details><summary>"
                        f"record</summary><pre>{esc(json.dumps(shown, ensure_ascii=False, indent=1))}</pre>"
                        "</details></td></tr>")
        table = (f"<table border=1 cellpadding=3><tr>{head}</tr>{''.join(body)}</table>" if body
                 else "<p>none yet</p>")
        sections.append(f"<h2 id='{kind}'>Latest {kind} records (newest first, up to {SIM_PAGE_LATEST})</h2>{table}")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Platform simulator</title>"
        "<meta http-equiv='refresh' content='10'></head><body style='font-family:sans-serif'>"
        "<h1>Central platform simulator</h1><p>This page reloads every 10 s. "
        + " · ".join(f"<a href='#{k}'>{k}</a>" for k in SIM_PAGE_KINDS) + "</p>"
        f"<h2>Accepted records</h2><table border=1>{counts or '<tr><td>none yet</td></tr>'}</table>"
        + "".join(sections)
        + f"<h2>Counters</h2><table border=1>{counters}</table>"
        "<p>JSON: <a href='/_sim/stats'>/_sim/stats</a>, <a href='/_sim/records?limit=50'>/_sim/records</a>, "
        "<a href='/_sim/readings?limit=50'>/_sim/readings</a></p>"
        "</body></html>"
    )


def _column(payload: dict[str, Any], column: str) -> Any:
    """A shown column: a field of the record, or for telemetry its readings in one line."""
    if column != "readings":
        return payload.get(column)
    points = payload.get("points")
    readings = points if isinstance(points, list) else [payload]
    text = "; ".join(" ".join(part for part in (f"{p.get('point')}={p.get('value')}", p.get("unit") or "",
                                                 f"({p.get('quality')})") if part)
                     for p in readings if isinstance(p, dict))
    return text if len(text) <= 200 else text[:197] + "..."


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)[:200]
    return str(value)
