"""The dashboard's chart of operations finished per minute over the last day, drawn by the
server: one bar per minute (its failed part hatched over it), a scale on each axis, and the
same numbers by hour as a table for those who do not see the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bulkops.store.finished import Minute, minute_of

MINUTES = 24 * 60
MINUTE_WIDTH = 0.5
"""A minute's bar, in SVG units: the day is 720 units wide."""
PLOT_HEIGHT = 160
LEFT = 56
"""Room left of the plot for the vertical scale."""
TICK_HOURS = 3


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Hour:
    start: str
    finished: int
    failed: int


@dataclass(frozen=True, slots=True)
class Timeline:
    since: datetime
    finished: int
    failed: int
    peak: int
    peak_minute: str | None
    finished_path: str
    failed_path: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    hours: list[Hour]
    width: float = LEFT + MINUTES * MINUTE_WIDTH + 16
    height: int = PLOT_HEIGHT + 64
    """Room above the plot for the vertical scale's title (20), below for the hours."""
    left: int = LEFT
    plot_height: int = PLOT_HEIGHT


def start_of_day(now: datetime) -> datetime:
    """The first minute of the 24 hours charted, the current minute the last."""
    return minute_of(now) - timedelta(minutes=MINUTES - 1)


def _bars(counts: Sequence[tuple[int, int]], peak: int) -> str:
    """An SVG path of one bar per (minute index, count), heights relative to `peak`."""
    parts = []
    for index, count in counts:
        if count:
            height = round(PLOT_HEIGHT * count / peak, 2)
            x = LEFT + index * MINUTE_WIDTH
            parts.append(f"M{x} {PLOT_HEIGHT}v-{height}h{MINUTE_WIDTH}v{height}z")
    return "".join(parts)


def timeline(minutes: Sequence[Minute], since: datetime) -> Timeline:
    """The chart of `minutes` (those from `since` on that have any, in time order)."""
    indexed = [(int((minute.minute - since).total_seconds() // 60), minute) for minute in minutes]
    peak_at = max(minutes, key=lambda minute: minute.finished, default=None)
    peak = peak_at.finished if peak_at is not None else 0
    scale = peak or 1
    hours = [Hour(_clock(since + timedelta(hours=n)), 0, 0) for n in range(MINUTES // 60)]
    for index, minute in indexed:
        hour = hours[index // 60]
        hours[index // 60] = Hour(
            hour.start, hour.finished + minute.finished, hour.failed + minute.failed
        )
    x_ticks = [
        Tick(LEFT + hours * 60 * MINUTE_WIDTH, _clock(since + timedelta(hours=hours)))
        for hours in range(0, 24 + 1, TICK_HOURS)
    ]
    values = sorted({0, scale // 2, scale})
    y_ticks = [Tick(PLOT_HEIGHT - PLOT_HEIGHT * value / scale, str(value)) for value in values]
    return Timeline(
        since=since,
        finished=sum(minute.finished for minute in minutes),
        failed=sum(minute.failed for minute in minutes),
        peak=peak,
        peak_minute=_clock(peak_at.minute) if peak_at is not None else None,
        finished_path=_bars([(index, minute.finished) for index, minute in indexed], scale),
        failed_path=_bars([(index, minute.failed) for index, minute in indexed], scale),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        hours=hours,
    )


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")
