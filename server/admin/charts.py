"""The daily-count bar chart of an event, as numbers a template draws as SVG (no chart library, no JS).

The template (``_chart.html``) only places rectangles and text at the coordinates computed here; every
label is plain text, escaped there like everything else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28  # room for the y labels on the left, the dates below


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    title: str  # "Mon 3 Mar 2025: 12 events", the bar's <title> (hover)


@dataclass(frozen=True)
class Tick:
    position: float  # x for a date label, y for a count label
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    bottom: float  # y of the x axis
    right: float  # x where the plot ends
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    label: str  # an accessible summary ("312 events in the last 30 days")


def nice_max(value: int) -> int:
    """The smallest 1/2/5 × 10^k at or above ``value`` (at least 1), so the axis reads round numbers."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return max(1, m * step)
        step *= 10


def daily_chart(counts: list[tuple[int, int]], noun: str = "event") -> Chart:
    """``counts``: ``(day start, count)`` oldest first (``store.daily_counts``); ``noun`` names what is counted."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top = nice_max(max((c for _, c in counts), default=0))
    slot = plot_w / max(len(counts), 1)
    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    for i, (day, count) in enumerate(counts):
        h = plot_h * count / top
        x = LEFT + i * slot
        d = dt.datetime.fromtimestamp(day, tz=dt.UTC)
        bars.append(Bar(round(x + slot * 0.15, 1), round(TOP + plot_h - h, 1), round(slot * 0.7, 1),
                        round(h, 1), count, f"{d.strftime('%a')} {d.day} {d.strftime('%b %Y')}: {count:,} "
                                            f"{_plural(noun, count)}"))
        # A date every 7 days, counted back from today so the last bar is labelled.
        if (len(counts) - 1 - i) % 7 == 0:
            x_ticks.append(Tick(round(x + slot / 2, 1), f"{d.day} {d.strftime('%b')}"))
    y_ticks = [Tick(round(TOP + plot_h - plot_h * v / top, 1), f"{v:,}")
               for v in sorted({0, top // 2, top}) if v == 0 or v * 2 == top or v == top]
    total = sum(c for _, c in counts)
    return Chart(WIDTH, HEIGHT, LEFT, TOP + plot_h, WIDTH - RIGHT, bars, y_ticks, x_ticks, total,
                 f"{total:,} {_plural(noun, total)} in the last {len(counts)} days")


def _plural(noun: str, count: int) -> str:
    """"event" → "events"; "message sent" → "messages sent" (the first word takes the s)."""
    if count == 1:
        return noun
    first, _, rest = noun.partition(" ")
    return f"{first}s {rest}".strip()
