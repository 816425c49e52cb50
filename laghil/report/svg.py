"""The timeline chart of report.html as inline SVG: receive rate against
time, one polyline per series; long series reduced to a min/max envelope per
pixel column (``downsample``), so a one-bin outage dip stays visible among
thousands of bins; vertical markers for fault / restore / kernel events with
labels; axes with units and round ticks. No script, no external part: hover
titles are native SVG ``<title>``s, every text escaped."""

from __future__ import annotations

import math
from html import escape

# ---- the chart -----------------------------------------------------------------

SERIES_COLORS = ["#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#333333", "#B8860B",
                 "#8C564B", "#17BECF"]
EVENT_COLORS = {"fault": "#C62828", "restore": "#2E7D32", "kernel": "#6A1B9A",
                "info": "#757575"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
CHAR_W = 6.6           # average glyph width (px) of 11 px text, for label layout
MAX_LABEL = 48         # event labels longer than this are cut (full text on hover)


def downsample(values, columns):
    """Reduce ``values`` to at most 2 points per column: each column's min and max.

    Returns segments ``[[(index, value), ...], ...]``; a column with no finite
    value (no data) breaks the line. Inputs of up to ``2 * columns`` come back
    whole. The min keeps outage dips, the max keeps bursts (duplicates, catch-up).
    """
    n = len(values)
    if n <= 2 * columns:
        return _segments(enumerate(values))
    points = []
    for c in range(columns):
        lo, hi = c * n // columns, (c + 1) * n // columns
        idx = [i for i in range(lo, hi) if _finite(values[i])]
        if not idx:
            points.append((lo, None))
            continue
        imin = min(idx, key=values.__getitem__)
        imax = max(idx, key=values.__getitem__)
        points += [(i, values[i]) for i in sorted({imin, imax})]
    return _segments(points)


def _segments(points):
    segs, cur = [], []
    for i, v in points:
        if _finite(v):
            cur.append((i, v))
        elif cur:
            segs.append(cur)
            cur = []
    if cur:
        segs.append(cur)
    return segs


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def nice_ticks(lo, hi, target=6):
    """Round ticks (steps of 1, 2, 2.5, 5 x 10^k) covering [lo, hi]: (ticks, step)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if raw <= m * mag * (1 + 1e-9))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    while first + len(ticks) * step <= hi + step * 1e-9:
        ticks.append(first + len(ticks) * step)
    return ticks, step


def tick_label(v, step):
    """``v`` with as many decimals as ``step`` needs; never '-0'."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
        decimals += 1
    text = f"{v:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def si_tick_labels(ticks, step):
    """Axis labels with SI prefixes: [0, 500000, 1000000] -> ['0', '500k', '1M']."""
    out = []
    for t in ticks:
        factor, suffix = next(((f, s) for f, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"),
                                                   (1e3, "k")) if abs(t) >= f), (1, ""))
        text = tick_label(t / factor, step / factor)
        out.append((text.rstrip("0").rstrip(".") if "." in text else text) + suffix)
    return out


def _time_zero(timeline):
    """Zero of the time axis and the axis title: the first fault, else the data start."""
    faults = [e for e in timeline.events if e.kind == "fault" and _finite(e.t)]
    if faults:
        first = min(faults, key=lambda e: e.t)
        return first.t, f"time since fault \u201c{_short(first.label)}\u201d (s)"
    starts = [s.t0 for s in timeline.series if _finite(s.t0)]
    starts += [e.t for e in timeline.events if _finite(e.t)]
    return (min(starts) if starts else 0.0), "time since start (s)"


def render_timeline_svg(timeline, width=960, height=300, max_points=1000, standalone=False):
    """The chart of one ``Timeline`` as an ``<svg>`` element (string).

    At most about ``max_points`` points per series are drawn. ``standalone`` adds
    the XML namespace, for an .svg file or attachment.
    """
    t_ref, x_title = _time_zero(timeline)
    series = [s for s in timeline.series if s.values]
    events = sorted((e for e in timeline.events if _finite(e.t)), key=lambda e: e.t)
    ts = [e.t for e in events]
    for s in series:
        ts += [s.t0, s.t0 + len(s.values) * s.bin_s]
    ymax = max((v for s in series for v in s.values if _finite(v)), default=0)
    units = sorted({s.unit for s in series}) or ["pkt/s"]

    x0, x1 = (min(ts) - t_ref, max(ts) - t_ref) if ts else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1.0
    xticks, xstep = nice_ticks(x0, x1, 10)
    yticks, ystep = nice_ticks(0, ymax if ymax > 0 else 1, 5)
    ytop = max(yticks[-1], ymax)

    ml, mr, mb = 64, 18, 42
    plot_w, plot_h = width - ml - mr, height - mb
    sx = lambda t: ml + (t - t_ref - x0) / (x1 - x0) * plot_w  # noqa: E731
    rows = _label_rows([(sx(e.t), _short(e.label)) for e in events], width - mr)
    mt = 14 + 13 * (max((r for r, _, _ in rows), default=-1) + 1)
    sy = lambda v: mt + plot_h - v / ytop * plot_h  # noqa: E731
    legend_h, legend_svg = _legend(_legend_items(series, events), ml, width - mr)
    total_h = height + mt + legend_h

    out = [f'<svg class="timeline" role="img" width="{width}" height="{total_h}" '
           f'viewBox="0 0 {width} {total_h}" font-family="{escape(FONT)}" font-size="11"'
           + (' xmlns="http://www.w3.org/2000/svg"' if standalone else "") + ">",
           f"<title>{escape(timeline.title)}</title>",
           f'<rect x="{ml}" y="{mt}" width="{plot_w}" height="{plot_h}" fill="#fff" '
           f'stroke="#bbb"/>']
    for v, text in zip(yticks, si_tick_labels(yticks, ystep)):
        y = sy(v)
        out.append(f'<line x1="{ml}" x2="{ml + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333">'
                   f"{escape(text)}</text>")
    for t in xticks:
        x = sx(t + t_ref)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt + plot_h}" y2="{mt + plot_h + 5}" '
                   f'stroke="#666"/><text x="{x:.1f}" y="{mt + plot_h + 17}" '
                   f'text-anchor="middle" fill="#333">{escape(tick_label(t, xstep))}</text>')
    out.append(f'<text class="x-title" x="{ml + plot_w / 2:.1f}" y="{mt + plot_h + 34}" '
               f'text-anchor="middle" fill="#111">{escape(x_title)}</text>')
    out.append(f'<text class="y-title" transform="translate(14 {mt + plot_h / 2:.1f}) '
               f'rotate(-90)" text-anchor="middle" fill="#111">'
               f'{escape("receive rate (" + ", ".join(units) + ")")}</text>')
    columns = max(1, max_points // 2)
    for k, s in enumerate(series):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        out.append(f'<g class="series" stroke="{color}" fill="{color}"><title>'
                   f"{escape(s.label)} ({escape(s.unit)}, {len(s.values)} bins of "
                   f"{s.bin_s * 1e3:.4g} ms)</title>")
        for seg in downsample(s.values, columns):
            xy = [(sx(s.t0 + (i + 0.5) * s.bin_s), sy(v)) for i, v in seg]
            if len(xy) == 1:   # a lone bin: a dot, not an invisible zero-length line
                out.append(f'<circle cx="{xy[0][0]:.1f}" cy="{xy[0][1]:.1f}" r="1.5"/>')
            else:
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
                out.append(f'<polyline fill="none" stroke-width="1.5" stroke-linejoin="round" '
                           f'points="{pts}"/>')
        out.append("</g>")
    for e, (row, tx, anchor) in zip(events, rows):
        x = sx(e.t)
        color = EVENT_COLORS.get(e.kind, EVENT_COLORS["info"])
        dash = "" if e.kind in ("fault", "restore") else ' stroke-dasharray="4 3"'
        clock = "" if e.clock == "controller" else f" ({e.clock} clock)"
        out.append(
            f'<g class="event event-{escape(e.kind)}"><title>{escape(e.kind)}: {escape(e.label)}'
            f" at {e.t - t_ref:+.4f} s{escape(clock)}</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt - 2 - 13 * row}" y2="{mt + plot_h}" '
            f'stroke="{color}" stroke-width="1.5"{dash}/>'
            f'<text x="{tx:.1f}" y="{mt - 4 - 13 * row}" text-anchor="{anchor}" fill="{color}">'
            f"{escape(_short(e.label))}</text></g>")
    if not series and not events:
        out.append(f'<text x="{ml + plot_w / 2}" y="{mt + plot_h / 2}" text-anchor="middle" '
                   f'fill="#777">no data</text>')
    out.append(f'<g class="legend" transform="translate(0 {height + mt})">{legend_svg}</g>')
    out.append("</svg>")
    return "\n".join(out)


def _short(label):
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "\u2026"


def _label_rows(labels, right):
    """Place event labels [(x, text)], sorted by x, in rows so that none overlap.

    Returns (row, text x, text-anchor) per label: right of its marker, or left of
    it when it would run past ``right``.
    """
    ends, out = [], []
    for x, text in labels:
        w = len(text) * CHAR_W + 8
        start, tx, anchor = x + 3, x + 3, "start"
        if start + w > right:
            start, tx, anchor = x - 3 - w, x - 3, "end"
        row = next((r for r, end in enumerate(ends) if end < start), len(ends))
        if row == len(ends):
            ends.append(0)
        ends[row] = max(ends[row], start + w)
        out.append((row, tx, anchor))
    return out


def _legend_items(series, events):
    items = [("line", SERIES_COLORS[k % len(SERIES_COLORS)], s.label)
             for k, s in enumerate(series)]
    kinds = list(EVENT_COLORS) + sorted({e.kind for e in events} - set(EVENT_COLORS))
    items += [("event", EVENT_COLORS.get(k, EVENT_COLORS["info"]), k)
              for k in kinds if any(e.kind == k for e in events)]
    return items


def _legend(items, left, right):
    """(height, svg) of the legend, wrapped to the chart width."""
    parts, x, y = [], left, 14
    for kind, color, text in items:
        w = 26 + len(text) * CHAR_W + 14
        if x + w > right and x > left:
            x, y = left, y + 16
        if kind == "line":
            parts.append(f'<line x1="{x}" x2="{x + 20}" y1="{y - 4}" y2="{y - 4}" '
                         f'stroke="{color}" stroke-width="2.5"/>')
        else:
            parts.append(f'<line x1="{x + 10}" x2="{x + 10}" y1="{y - 11}" y2="{y + 2}" '
                         f'stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{x + 26}" y="{y}" fill="#222">{escape(text)}</text>')
        x += w
    return (y + 8 if items else 0), "".join(parts)
