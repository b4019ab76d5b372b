"""Server-drawn SVG line charts (no chart library, no CDN, no script needed to see them).

One chart per point: the average per bucket as a line, the min..max range as a band behind it,
optional alarm limits as dashed lines, a few "nice" value ticks and time ticks in the estate's time
zone. Gaps (a bucket missing for more than two bucket widths) break the line instead of drawing a
straight segment over a time with no data. All text is escaped; values are numbers we format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from edge.panel.live import Bucket

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^n steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks and ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.4g}"


def line_chart(buckets: Sequence[Bucket], *, start_us: int, end_us: int, bucket_us: int, tz: ZoneInfo,
               unit: str, title: str, limits: Sequence[tuple[str, float]] = (), empty_text: str = "no data") -> Markup:
    x_span = max(end_us - start_us, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(us: float) -> float:
        return LEFT + (us - start_us) / x_span * plot_w

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="chart-bg"/>',
    ]
    values = [v for b in buckets for v in (b.vmin, b.vmax)] + [v for _, v in limits]
    if not buckets:
        parts.append(f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" class="chart-empty">'
                     f"{escape(empty_text)}</text>")
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    else:
        lo, hi = min(values), max(values)
    ticks = nice_ticks(lo, hi)
    y_lo, y_hi = (ticks[0], ticks[-1]) if len(ticks) >= 2 else (lo - 1, hi + 1)
    y_span = (y_hi - y_lo) or 1.0

    def y(v: float) -> float:
        return TOP + plot_h - (v - y_lo) / y_span * plot_h

    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{_fmt(tick)}</text>')
    parts.extend(_time_ticks(start_us, end_us, tz, x))
    if unit:
        parts.append(f'<text x="4" y="{TOP + 10}" class="tick unit">{escape(unit)}</text>')

    # min..max band and average line, split into runs at gaps
    runs: list[list[Bucket]] = []
    for b in buckets:
        if runs and b.start_us - runs[-1][-1].start_us <= 2 * bucket_us:
            runs[-1].append(b)
        else:
            runs.append([b])
    half = bucket_us / 2
    for run in runs:
        top = " ".join(f"{x(b.start_us + half):.1f},{y(b.vmax):.1f}" for b in run)
        bottom = " ".join(f"{x(b.start_us + half):.1f},{y(b.vmin):.1f}" for b in reversed(run))
        parts.append(f'<polygon points="{top} {bottom}" class="band"/>')
        if len(run) == 1:
            b = run[0]
            parts.append(f'<circle cx="{x(b.start_us + half):.1f}" cy="{y(b.avg):.1f}" r="2" class="dot"/>')
        else:
            line = " ".join(f"{x(b.start_us + half):.1f},{y(b.avg):.1f}" for b in run)
            parts.append(f'<polyline points="{line}" class="line"/>')
    for name, value in limits:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="limit">'
                     f"<title>{escape(name)} {_fmt(value)}</title></line>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _time_ticks(start_us: int, end_us: int, tz: ZoneInfo, x: Callable[[float], float]) -> list[str]:
    span_h = (end_us - start_us) / 3.6e9
    step_h = 4 if span_h <= 30 else 24
    start = datetime.fromtimestamp(start_us / 1e6, tz)
    # first tick on a whole step boundary in local time
    first = start.replace(minute=0, second=0, microsecond=0)
    hour = (first.hour // step_h + 1) * step_h
    out = []
    tick_us = int(first.timestamp() * 1e6) + (hour - first.hour) * 3_600_000_000
    while tick_us < end_us:
        local = datetime.fromtimestamp(tick_us / 1e6, tz)
        label = local.strftime("%H:%M") if step_h < 24 else local.strftime("%m-%d")
        px = x(tick_us)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" class="grid"/>')
        out.append(f'<text x="{px:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="tick">{label}</text>')
        tick_us += step_h * 3_600_000_000
    return out
