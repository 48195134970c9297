"""Server-rendered SVG charts: the shapes in a stretchable SVG, the labels in HTML.

The SVG scales to any width (`preserveAspectRatio="none"`, strokes that do not scale), so its
text would be squeezed on a phone; axis labels, legends and the tooltips' table alternative
are plain HTML around it (templates/_macros/charts.html), readable at 390 px and 1440 px.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

WIDTH, HEIGHT = 600, 200
SERIES = 5  # colours in static/css/charts.css: .series-0 ... .series-4


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (min 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return int(math.ceil(step * power))
    return int(10 * power)


def _ticks(top: int) -> list[dict[str, Any]]:
    """Grid lines at 0, half and the top (`where` names the CSS class placing the label)."""
    return [{"value": round(top * f), "y": round(HEIGHT - HEIGHT * f, 2), "where": where}
            for f, where in ((0, "bottom"), (0.5, "middle"), (1, "top"))]


def _label(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%d %b %H:%M")
    return moment.strftime("%d %b")


def change_bars(rows: list[tuple[date, int, int]]) -> dict[str, Any]:
    """Paired bars of members added (ADD) and removed (REMOVE) per day."""
    top = nice_ceiling(max([max(a, r) for _, a, r in rows] or [0]))
    slot = WIDTH / max(len(rows), 1)
    bar = slot * 0.38
    bars = []
    for i, (_, adds, removes) in enumerate(rows):
        x = i * slot + slot * 0.1
        for offset, value, kind in ((0, adds, "add"), (bar, removes, "remove")):
            height = HEIGHT * value / top
            bars.append({"x": round(x + offset, 2), "y": round(HEIGHT - height, 2),
                         "width": round(bar, 2), "height": round(height, 2), "kind": kind})
    # Hover targets: one column per day naming both numbers.
    columns = [{"x": round(i * slot, 2), "width": round(slot, 2),
                "title": f"{day:%a %d %b}: +{adds:,} added, −{removes:,} removed"}
               for i, (day, adds, removes) in enumerate(rows)]
    total_adds = sum(a for _, a, _ in rows)
    total_removes = sum(r for _, _, r in rows)
    first, last = (rows[0][0], rows[-1][0]) if rows else (None, None)
    return {
        "width": WIDTH, "height": HEIGHT, "bars": bars, "columns": columns,
        "ticks": _ticks(top), "rows": rows,
        "x_labels": _x_labels([r[0] for r in rows]),
        "total_adds": total_adds, "total_removes": total_removes,
        "desc": (f"Members added and removed per day from {_label(first)} to {_label(last)}: "
                 f"{total_adds:,} added and {total_removes:,} removed in all; the busiest day "
                 f"saw {max([a + r for _, a, r in rows] or [0]):,} changes.") if rows else "",
        "empty": total_adds + total_removes == 0,
    }


def _x_labels(moments: list[date | datetime]) -> list[dict[str, str]]:
    """Labels at the start, the middle and the end of the x axis (placed by CSS class: the
    page's Content-Security-Policy allows no inline styles)."""
    if not moments:
        return []
    first, last = moments[0], moments[-1]
    middle = first + (last - first) / 2
    if not isinstance(middle, datetime) and isinstance(first, date):
        middle = first + timedelta(days=round((last - first).days / 2))
    labels = [{"text": _label(first), "where": "start"}]
    if last != first:
        labels += [{"text": _label(middle), "where": "middle"},
                   {"text": _label(last), "where": "end"}]
    return labels


def _position(moment: date | datetime, first: date | datetime, span: float) -> float:
    if isinstance(moment, datetime):
        offset = (moment - first).total_seconds()
    else:
        offset = (moment - first).days
    return WIDTH * offset / span if span else WIDTH


def size_lines(series: list[dict[str, Any]], every: str = "day") -> dict[str, Any]:
    """Lines of segment sizes over time; each series is {name, url, points: [(when, size)]}
    with one point per `every` (a day, or for times rather than days a number of minutes or
    an hour, drawn as steps)."""
    moments = sorted({m for s in series for m, _ in s["points"]})
    if not moments:
        return {"empty": True, "lines": [], "ticks": [], "x_labels": [], "series": series}
    first, last = moments[0], moments[-1]
    hourly = isinstance(first, datetime)
    span = (last - first).total_seconds() if hourly else (last - first).days
    top = nice_ceiling(max(size for s in series for _, size in s["points"]))
    lines = []
    for index, s in enumerate(series):
        points = s["points"]
        if len(points) == 1:  # one known size: a flat line across the chart
            points = [(first, points[0][1]), (last, points[0][1])] if first != last \
                else [points[0], points[0]]
        coords = []
        for i, (moment, size) in enumerate(points):
            x = _position(moment, first, span) if span else (0 if i == 0 else WIDTH)
            y = round(HEIGHT - HEIGHT * size / top, 2)
            if hourly and coords:  # a step: the size holds until the next point
                coords.append(f"{round(x, 2)},{coords[-1].split(',')[1]}")
            coords.append(f"{round(x, 2)},{y}")
        lines.append({"points": " ".join(coords), "css": f"series-{index % SERIES}",
                      "name": s["name"]})
        s["css"] = f"series-{index % SERIES}"
        s["now"] = s["points"][-1][1] if s["points"] else 0
        s["low"] = min(size for _, size in s["points"]) if s["points"] else 0
        s["high"] = max(size for _, size in s["points"]) if s["points"] else 0
    labels = _x_labels(moments)
    return {
        "empty": False, "width": WIDTH, "height": HEIGHT, "lines": lines, "series": series,
        "ticks": _ticks(top), "x_labels": labels, "step": "time" if hourly else "day",
        "every": every,
        "desc": "; ".join(f"{s['name']}: {s['now']:,} members now, between {s['low']:,} and "
                          f"{s['high']:,} from {_label(first)} to {_label(last)}"
                          for s in series) + f" (one point per {every}, UTC).",
        "table_moments": moments,
        "table": [(m, [dict(s["points"]).get(m) for s in series]) for m in moments],
    }
