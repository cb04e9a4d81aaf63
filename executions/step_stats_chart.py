"""A small SVG chart of a connector's per-step statistics (the connector's admin page).

One horizontal bar per step, its length the step's requests over 30 days, split by outcome: 2xx, other
4xx, 429 and 5xx or no answer; the label gives requests, retries and the p50/p95 latency. Plain escaped
markup, no JavaScript; every bar carries its figures as data attributes.
"""

from collections.abc import Mapping
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

TEXT_COLOR = "currentColor"  # the admin theme's text colour, light or dark
FONT = 'font-family="sans-serif" font-size="11"'

SEGMENTS = (
    ("ok", "#2e7d32", "2xx"),
    ("client", "#f9a825", "4xx"),
    ("limited", "#6a1b9a", "429"),
    ("failed", "#c62828", "5xx / no answer"),
)


def _outcomes(status_codes: Mapping[str, int]) -> dict[str, int]:
    found = dict.fromkeys(("ok", "client", "limited", "failed"), 0)
    for code, count in status_codes.items():
        if code == "429":
            found["limited"] += count
        elif code.isdigit() and 200 <= int(code) < 300:
            found["ok"] += count
        elif code.isdigit() and int(code) < 500:
            found["client"] += count
        else:
            found["failed"] += count
    return found


def step_stats_chart(steps: Mapping[str, Mapping[str, Any]], *, width: int = 640) -> SafeString:
    """`steps` as returned by executions.step_stats.step_stats."""
    row_h, label_w, top = 26, 160, 22
    height = top + row_h * max(len(steps), 1) + 8
    peak = max((stats["requests"] for stats in steps.values()), default=0) or 1
    plot_w = width - label_w - 220
    parts = [
        f'<svg class="chart chart-steps" xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} '
        f'{height}" width="100%" style="max-width:{width}px" aria-label="Requests per step, last 30 days">'
    ]
    x = label_w
    for _key, color, label in SEGMENTS:
        parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="13" fill="{TEXT_COLOR}" {FONT}>{escape(label)}</text>'
        )
        x += 24 + 7 * len(label)
    if not steps:
        parts.append(f'<text x="4" y="{top + 16}" fill="{TEXT_COLOR}" {FONT}>No steps.</text>')
    for index, (name, stats) in enumerate(steps.items()):
        y = top + index * row_h
        outcomes = _outcomes(stats["status_codes"])
        tooltip = f"{name}: {stats['requests']} requests, {stats['retries']} retries"
        parts.append(
            f'<g class="step-row" data-step="{escape(name)}" data-requests="{stats["requests"]}" '
            f'data-retries="{stats["retries"]}" data-rate-limited="{stats["rate_limited"]}">'
            f"<title>{escape(tooltip)}</title>"
            f'<text x="4" y="{y + 15}" fill="{TEXT_COLOR}" {FONT}>{escape(name[:24])}</text>'
        )
        x = float(label_w)
        for key, color, _label in SEGMENTS:
            w = plot_w * outcomes[key] / peak
            parts.append(
                f'<rect class="bar-{key}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="14" fill="{color}" '
                f'data-value="{outcomes[key]}"/>'
            )
            x += w
        p50 = "-" if stats["p50_ms"] is None else f"{stats['p50_ms']} ms"
        p95 = "-" if stats["p95_ms"] is None else f"{stats['p95_ms']} ms"
        summary = f"{stats['requests']} req, {stats['retries']} retries, p50 {p50}, p95 {p95}"
        parts.append(
            f'<text x="{label_w + plot_w + 8}" y="{y + 15}" fill="{TEXT_COLOR}" {FONT}>{escape(summary)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped above
