"""Server-side SVG charts for the admin dashboard: plain markup, no JavaScript, no external assets.

Pure functions from numbers and labels to SVG; no ORM. Every label and attribute value is HTML-escaped, so a
workspace named `<script>` renders as text. Each mark carries a class and data attributes with its figures
(`data-date`, `data-succeeded`, `data-value` ...), which is what tests and the browser test count and read.
"""

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from console.selectors import DayCount, LabelledValue

SUCCEEDED_COLOR = "#2e7d32"
FAILED_COLOR = "#c62828"
BAR_COLOR = "#417690"  # the admin's own blue
AXIS_COLOR = "#999999"
TEXT_COLOR = "currentColor"  # the admin theme's text colour, light or dark
FONT = 'font-family="sans-serif" font-size="11"'
MAX_LABEL_CHARS = 40


def _number(value: float) -> str:
    """A compact number for attributes and labels: integers without decimals, others with one."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at least `value` (the top of a value axis); 1 for 0."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def daily_executions_chart(series: Sequence[DayCount], *, width: int = 760, height: int = 240) -> SafeString:
    """Stacked bars per day: succeeded (bottom) and failed (top).

    One `<g class="day-group">` per day in `series`, each holding exactly one `rect.bar-succeeded` and one
    `rect.bar-failed` (zero height when the count is 0), so the number of groups is the number of days.
    """
    left, right, top, bottom = 44, 8, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((day.succeeded + day.failed for day in series), default=0))
    slot = plot_w / max(len(series), 1)
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg class="chart chart-daily" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'aria-label="Executions per day, succeeded and failed">'
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT_COLOR}" {FONT}>'
            f"{_number(peak * fraction)}</text>"
        )
    for index, day in enumerate(series):
        x = left + index * slot + (slot - bar_w) / 2
        ok_h = plot_h * day.succeeded / peak
        failed_h = plot_h * day.failed / peak
        base = top + plot_h
        iso = day.day.isoformat()
        tooltip = escape(f"{iso}: {day.succeeded} succeeded, {day.failed} failed")
        parts.append(
            f'<g class="day-group" data-date="{iso}" data-succeeded="{day.succeeded}" data-failed="{day.failed}">'
            f"<title>{tooltip}</title>"
            f'<rect class="bar bar-succeeded" x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar_w:.1f}" '
            f'height="{ok_h:.1f}" fill="{SUCCEEDED_COLOR}"/>'
            f'<rect class="bar bar-failed" x="{x:.1f}" y="{base - ok_h - failed_h:.1f}" width="{bar_w:.1f}" '
            f'height="{failed_h:.1f}" fill="{FAILED_COLOR}"/>'
            "</g>"
        )
        if index % 5 == 0 or index == len(series) - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                f'fill="{TEXT_COLOR}" {FONT}>{day.day:%m-%d}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{AXIS_COLOR}"/>'
        f'<rect x="{left}" y="{height - 12}" width="10" height="10" fill="{SUCCEEDED_COLOR}"/>'
        f'<text x="{left + 14}" y="{height - 3}" fill="{TEXT_COLOR}" {FONT}>succeeded</text>'
        f'<rect x="{left + 90}" y="{height - 12}" width="10" height="10" fill="{FAILED_COLOR}"/>'
        f'<text x="{left + 104}" y="{height - 3}" fill="{TEXT_COLOR}" {FONT}>failed</text>'
        "</svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped above


def horizontal_bar_chart(
    items: Sequence[LabelledValue], *, css_class: str, unit: str = "", width: int = 760
) -> SafeString:
    """One `<g class="hbar">` row per item (label, bar, value), longest bar = largest value."""
    row_h, label_w, value_w = 24, 300, 110
    bar_space = width - label_w - value_w
    css_class = escape(css_class)
    if not items:
        return mark_safe(  # noqa: S308 - constant markup
            f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 30" '
            f'width="100%" style="max-width:{width}px" role="img">'
            f'<text x="0" y="20" fill="{TEXT_COLOR}" {FONT}>No finished executions in this period.</text></svg>'
        )
    peak = max(item.value for item in items) or 1
    height = row_h * len(items) + 4
    parts = [
        f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" role="img">'
    ]
    suffix = escape(unit)
    for index, item in enumerate(items):
        y = index * row_h + 2
        bar_len = max(bar_space * item.value / peak, 1)
        label = escape(_shorten(item.label))
        full = escape(f"{item.label}: {_number(item.value)}{unit}" + (f" ({item.detail})" if item.detail else ""))
        parts.append(
            f'<g class="hbar" data-label="{escape(item.label)}" data-value="{_number(item.value)}">'
            f"<title>{full}</title>"
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="{TEXT_COLOR}" {FONT}>{label}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{bar_len:.1f}" height="{row_h - 8}" '
            f'fill="{BAR_COLOR}"/>'
            f'<text x="{label_w + bar_len + 6:.1f}" y="{y + 15}" fill="{TEXT_COLOR}" {FONT}>'
            f"{_number(item.value)}{suffix}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped above


def success_rate_chart(rate: float | None, *, size: int = 140) -> SafeString:
    """A ring filled to the success rate, with the percentage in its middle ("n/a" when nothing finished)."""
    radius = size / 2 - 12
    circumference = 2 * 3.141592653589793 * radius
    filled = circumference * (rate or 0)
    text = "n/a" if rate is None else f"{rate * 100:.1f}%"
    data_rate = "" if rate is None else f"{rate:.4f}"
    center = size / 2
    ring_color = "#e5e5e5" if rate is None else FAILED_COLOR
    return mark_safe(  # noqa: S308 - numbers only
        f'<svg class="chart chart-success-rate" data-rate="{data_rate}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" aria-label="Success rate {text}">'
        f'<circle cx="{center}" cy="{center}" r="{radius:.1f}" fill="none" stroke="{ring_color}" stroke-width="16"/>'
        f'<circle class="success-arc" cx="{center}" cy="{center}" r="{radius:.1f}" fill="none" '
        f'stroke="{SUCCEEDED_COLOR}" stroke-width="16" stroke-dasharray="{filled:.2f} {circumference:.2f}" '
        f'transform="rotate(-90 {center} {center})"/>'
        f'<text x="{center}" y="{center + 6}" text-anchor="middle" fill="{TEXT_COLOR}" font-family="sans-serif" '
        f'font-size="18" font-weight="bold">{text}</text>'
        "</svg>"
    )
