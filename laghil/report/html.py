"""report.html: one self-contained page for a run, readable offline from disk.

(One page and its inline SVG charts; the page has no external
parts by design.)

No external URLs, no scripts: inline CSS, and charts as inline SVG generated
here (hover titles are native SVG ``<title>``s). Every text from a run is
escaped. The page: header with totals, a summary table, then per test its
timeline charts, its measurements table and a link to its commands log, and
at the end the lab inventory.

The timeline charts are drawn by :mod:`.svg`, the trends by :mod:`.since`.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .groups import grouped, mode_of
from .results import iso_time
from .svg import _finite, render_timeline_svg

# ---- the page ---------------------------------------------------------------

CSS = """
:root { --pass:#1b7f3b; --fail:#c62828; --error:#7b1fa2; --skip:#5f6b7a; --xfail:#9a5b00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
       color:#1d1d1f; margin:0 auto; padding:24px; max-width:1100px; background:#fafafa; }
h1 { font-size:22px; margin:0 0 6px; } h2 { font-size:17px; margin:0; }
h3 { font-size:14px; margin:18px 0 6px; color:#444; }
header, section, nav { background:#fff; border:1px solid #ddd; border-radius:6px;
                       padding:16px 18px; margin-bottom:18px; }
.meta { color:#555; margin:2px 0; } .meta b { color:#1d1d1f; font-weight:600; }
code, pre, .mono { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, monospace;
                   font-size:12.5px; }
pre { white-space:pre-wrap; word-break:break-word; background:#f6f6f6; padding:8px 10px;
      border-radius:4px; margin:8px 0; max-height:320px; overflow:auto; }
table { border-collapse:collapse; width:100%; margin:6px 0; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid #e6e6e6;
         vertical-align:top; }
th { background:#f2f2f2; font-weight:600; font-size:12.5px; white-space:nowrap; }
td.num { text-align:right; font-variant-numeric: tabular-nums; white-space:nowrap; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
         font-weight:700; letter-spacing:.03em; color:#fff; white-space:nowrap; }
.v-passed, .m-pass { background:var(--pass); }
.v-failed, .m-fail { background:var(--fail); }
.v-error { background:var(--error); }
.v-skipped { background:#fff; color:var(--skip); border:1.5px dashed var(--skip); }
.v-xfailed { background:#fff; color:var(--xfail); border:1.5px solid var(--xfail); }
.m-info { background:#fff; color:#555; border:1px solid #aaa; }
tr.skipped td { color:var(--skip); background:repeating-linear-gradient(135deg,#fff 0 8px,#f4f5f7 8px 16px); }
.reason { font-style:italic; }
section.test { border-left:6px solid #ccc; }
section.test.v-passed-border { border-left-color:var(--pass); }
section.test.v-failed-border { border-left-color:var(--fail); }
section.test.v-error-border { border-left-color:var(--error); }
section.test.v-skipped-border { border-left-color:var(--skip); border-left-style:dashed; }
section.test.v-xfailed-border { border-left-color:var(--xfail); }
.test-head { display:flex; gap:10px; align-items:center; flex-wrap:wrap; }
.why { border-left:3px solid var(--fail); padding-left:10px; margin-top:10px; }
.why.skipped { border-left-color:var(--skip); color:var(--skip); }
.why.xfailed { border-left-color:var(--xfail); }
.totals .badge { margin-right:6px; }
.diff { color:var(--fail); }
figure { margin:10px 0; overflow-x:auto; } figcaption { font-weight:600; margin-bottom:4px; }
svg.timeline { display:block; max-width:100%; height:auto; }
svg.bounds { display:block; width:100%; max-width:900px; height:auto; font-size:11px; }
svg.trend { display:block; width:100%; max-width:560px; height:auto; font-size:10px; }
section.since { border:1px solid #ccc; border-radius:6px; padding:4px 14px; margin:12px 0; }
svg.bounds rect.ok { fill:#4c8bf5; } svg.bounds rect.over { fill:#d93025; }
svg.bounds line.bound { stroke:#1d1d1f; stroke-width:2; }
svg.bounds circle.base { fill:#fbbc04; stroke:#1d1d1f; stroke-width:1; }
span.chg-over { color:#d93025; font-weight:bold; } span.chg-ok { color:#188038; }
table.summary { table-layout:auto; } table.summary td { overflow-wrap:anywhere; }
table.summary td.mode { white-space:nowrap; }
.small { font-size:12px; color:#666; }
a { color:#0b5cad; }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
VERDICT_TEXT = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "skipped": "SKIPPED",
                "xfailed": "KNOWN DEFECT"}


def render_html(run, history=None):
    """The whole report.html of a ``RunResults``, as a string. ``history``: the
    lab's earlier run records (laghil.report.history), for the section on what
    changed since the last run and each failover case's trend."""
    since = trend = ""
    if history is not None:
        import json

        from .history import run_record
        from .since import render_since, since_last, trend_points, trend_svg
        cur = run_record(json.loads(run.to_json()))
        since = render_since(since_last(cur, history))

        def trend(t):
            m = next((m for m in t.measurements if m.name in CHART_FIGURES), None)
            pts = trend_points(history, cur, t.nodeid, m.name) if m else []
            svg = trend_svg(pts, m.unit) if m else ""
            return (f"<figure><figcaption>{_e(m.name)} over the last {len(pts)} runs "
                    f"(median, repetitions, bound)</figcaption>{svg}</figure>") if svg else ""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>laghil {_e(run.run_id)} \u2014 {_e(run.verdict.upper())}</title>",
             f"<style>{CSS}</style></head><body>",
             _header(run), since, _lab_state(run), _summary(run)]
    parts += [_test_section(k, t, trend(t) if trend else "") for k, t in enumerate(run.tests)]
    parts += [_inventory(run.inventory), "</body></html>\n"]
    return "\n".join(p for p in parts if p)


def _e(text):
    return escape("" if text is None else str(text), quote=True)


def badge(verdict):
    return f'<span class="badge v-{_e(verdict)}">{_e(VERDICT_TEXT.get(verdict, verdict))}</span>'


def fmt(v):
    """A figure for a table: 4 significant digits, thousands separated, '\u2013' for none."""
    if not _finite(v):
        return "\u2013"
    if v != 0 and 1e4 <= abs(v) < 1e15:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _when(epoch):
    text = iso_time(epoch)
    return text.replace("T", " ").replace("+00:00", " UTC") if text else "\u2013"


def _header(run):
    s = run.summary()
    totals = " ".join(f'<span class="badge v-{k}">{s[k]} {_e(VERDICT_TEXT[k].lower())}</span>'
                      for k in ("passed", "failed", "error", "xfailed", "skipped"))
    return (f'<header><h1>laghil run <span class="mono">{_e(run.run_id)}</span> '
            f"{badge(run.verdict)}</h1>"
            f'<p class="meta"><b>Lab</b> {_e(run.lab_name)} ({_e(run.lab_kind)}) &middot; '
            f"<b>Profile</b> {_e(run.profile)} &middot; <b>Started</b> {_e(_when(run.started))}"
            f" &middot; <b>Duration</b> {fmt(run.finished - run.started)} s</p>"
            f'<p class="meta totals"><b>{s["total"]} tests</b>: {totals}</p>'
            f"{_twin(run)}{_platform(run)}"
            + (f'<p class="meta twin"><b>Profile of another platform</b>: '
               f"{_e(run.profile_note)}</p>" if run.profile_note else "")
            + (f'<p class="meta twin diff"><b>Seeded defect</b>: {_e(run.seeded)}</p>'
               if run.seeded else "")
            + '<p class="meta">Every figure names its method and resolution; failover figures '
            "are judged against the bound their configuration allows (formula beside each). "
            'Definitions: <a href="../../docs/measurement.md">docs/measurement.md</a> in the '
            "laghil checkout.</p></header>")


PLATFORM_LINES = 12


def _platform(run):
    """The header's line on the platform the profile's allowances were derived
    on, and each way this run's inventory differs from it."""
    p = run.platform or {}
    if not p:
        return ('<p class="meta"><b>Profile platform</b>: not recorded by the profile, so '
                "this run's inventory was not compared with it.</p>")
    bits = [f"lab {_e(p.get('lab', '?'))}"]
    if p.get("kernels"):
        bits.append("kernel " + _e(", ".join(map(str, p["kernels"]))))
    drivers = sorted({d.get("driver") for d in (p.get("ports") or {}).values()
                      if isinstance(d, dict) and d.get("driver")})
    if drivers:
        bits.append("NIC drivers " + _e(", ".join(drivers)))
    if p.get("qemu"):
        bits.append("QEMU " + _e(", ".join(map(str, p["qemu"]))))
    if p.get("runs"):
        bits.append(f"derived from {len(p['runs'])} run(s)")
    line = f'<p class="meta"><b>Profile platform</b>: {" &middot; ".join(bits)}'
    if not run.inventory:
        return line + " &middot; this run recorded no inventory: not compared.</p>"
    if not run.platform_diff:
        return line + " &middot; this run's inventory matches it.</p>"
    shown = run.platform_diff[:PLATFORM_LINES]
    more = len(run.platform_diff) - len(shown)
    items = "".join(f"<li>{_e(d)}</li>" for d in shown)
    if more:
        items += f"<li>and {more} more (results.json platform_diff)</li>"
    return (line + "</p>" + '<div class="meta twin diff"><b>This run\'s platform differs from '
            "the profile's</b>: its allowances were measured on another kernel, NIC or "
            f"emulator than this run's:<ul>{items}</ul></div>")


def _twin(run):
    """The header's word on a twin: which physical lab, and every stand-in."""
    t = run.twin or {}
    if not t:
        return ""
    items = "".join(f"<li>{_e(s)}</li>" for s in t.get("stand_ins", []))
    return (f'<div class="meta twin"><b>Virtual twin of {_e(t.get("of", "?"))}</b> '
            f'({_e(t.get("source", ""))}): its topology, names, cables and fault methods on '
            "the virtual rack; what the rack cannot be is a stand-in:"
            f"<ul>{items}</ul></div>")


def _lab_state(run):
    return _lab_start(run) + (
        "" if not run.lab_state_diff else
        f'<section class="diff"><h2>Lab NOT as it was before the run</h2>'
        f"<pre>{_e(chr(10).join(run.lab_state_diff))}</pre></section>")


def _lab_start(run):
    """What the session found and put right before its first test: undos a
    killed run left in the journal, differences from the clean baseline and the
    repairs; a note when the lab has no baseline to be compared with."""
    st = run.lab_start or {}
    lines = []
    for r in st.get("restored", []):
        lines.append(f"{'restored' if r.get('ok') else 'FAILED to restore'} (journal of run "
                     f"{r.get('run', '?')}): {r.get('what', '')}"
                     + (f" - {r['detail']}" if r.get("detail") else ""))
    for d in st.get("diff", []):
        lines.append(f"differed from the baseline: {d}")
    for r in st.get("repaired", []):
        lines.append(f"{'repaired' if r.get('ok') else 'FAILED to repair'}: {r.get('what', '')}"
                     + (f" - {r['detail']}" if r.get("detail") else ""))
    for r in st.get("refused", []):
        lines.append(f"not repaired: {r}")
    if not lines:
        if st and not st.get("baseline"):
            return ('<p class="meta">Lab start: no clean baseline recorded, so the lab was not '
                    "compared with one (<span class=\"mono\">laghil lab baseline</span>)."
                    + (f" Recorded now: {_e(st['saved_baseline'])}." if st.get("saved_baseline")
                       else "") + "</p>")
        return ""
    return ('<section class="diff"><h2>Lab at the start of the run: found and put right</h2>'
            f"<pre>{_e(chr(10).join(lines))}</pre></section>")


# the figure a group's chart shows per mode, against its bound
CHART_FIGURES = ("T_gap median", "RDMA T_gap median")


def _summary(run):
    """One table per use case (bonding, team, RoCE LAG...), failures and known
    defects first; a chart per group of the failover figure per mode against
    its bound."""
    index = {id(t): k for k, t in enumerate(run.tests)}
    parts = []
    for group, tests in grouped(run.tests):
        counts = {}
        for t in tests:
            counts[t.verdict] = counts.get(t.verdict, 0) + 1
        totals = " ".join(f'<span class="badge v-{v}">{n} {_e(VERDICT_TEXT[v].lower())}</span>'
                          for v, n in counts.items())
        rows = [_summary_row(index[id(t)], t) for t in tests]
        parts.append(
            f'<h3>{_e(group)} <span class="small">{len(tests)} tests: {totals}</span></h3>'
            f"{_bound_chart(tests)}"
            '<table class="summary"><thead><tr><th>Test</th><th>Mode</th><th>Verdict</th>'
            "<th>Key figure</th><th>Threshold</th><th>Duration</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table>')
    return f'<nav class="summary"><h2>Summary</h2>{"".join(parts)}</nav>'


def _summary_row(k, t):
    base = t.name.split("[", 1)[0]
    link = f'<a href="#t{k}" title="{_e(t.nodeid)}">{_e(base)}</a>'
    mode = f'<td class="mode">{_e(mode_of(t.name)) or "&ndash;"}</td>'
    dur = f'<td class="num">{fmt(t.duration_s)} s</td>'
    if t.verdict == "skipped":
        return (f'<tr class="skipped"><td>{link}</td>{mode}<td>{badge("skipped")}</td>'
                f'<td colspan="2" class="reason">{_e(t.reason)}</td>{dur}</tr>')
    m = t.key_measurement()
    figure = f"{_e(m.name)} {fmt(m.value)} {_e(m.unit)}" if m else "\u2013"
    thr = (f"{_e(m.comparison)} {fmt(m.threshold)} {_e(m.unit)}"
           if m and m.threshold is not None else "\u2013")
    title = f' title="{_e(_first_line(t.reason))}"' if t.reason else ""
    return (f"<tr{title}><td>{link}</td>{mode}<td>{badge(t.verdict)}</td><td>{figure}</td>"
            f"<td>{thr}</td>{dur}</tr>")


def _bound_chart(tests):
    """Inline SVG: per test with a CHART_FIGURES figure, a bar of the figure and a
    tick at its bound (red bar when over)."""
    items = []
    for t in tests:
        m = next((m for m in t.measurements if m.name in CHART_FIGURES), None)
        if m is not None and _finite(m.value) and _finite(m.threshold):
            items.append((mode_of(t.name) or t.name, m))
    if not items:
        return ""
    top = max(max(m.value, m.threshold, (m.baseline or {}).get("median") or 0)
              for _, m in items) or 1.0
    row, left, width = 18, 230, 520
    h = row * len(items) + 24
    out = [f'<svg class="bounds" viewBox="0 0 {left + width + 130} {h}" role="img" '
           f'aria-label="failover figure per mode against its bound">']
    for i, (label, m) in enumerate(items):
        y = 4 + i * row
        w = width * m.value / top
        x_b = left + width * m.threshold / top
        cls = "over" if m.value > m.threshold else "ok"
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_e(label[:40])}</text>'
                   f'<rect class="{cls}" x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 6}">'
                   f"<title>{_e(m.name)} {fmt(m.value)} {_e(m.unit)}; bound {fmt(m.threshold)}"
                   f" {_e(m.unit)}: {_e(m.basis)}</title></rect>"
                   f'<line class="bound" x1="{x_b:.1f}" x2="{x_b:.1f}" y1="{y}" y2="{y + row - 2}"/>'
                   + (f'<circle class="base" cx="{left + width * m.baseline["median"] / top:.1f}" '
                      f'cy="{y + row / 2:.1f}" r="3"><title>baseline median '
                      f'{fmt(m.baseline["median"])} {_e(m.unit)}</title></circle>'
                      if m.baseline and _finite(m.baseline.get("median")) else "")
                   + f'<text x="{left + width + 8}" y="{y + 12}">{fmt(m.value)} / {fmt(m.threshold)}'
                   f" {_e(m.unit)}</text>")
    out.append(f'<text x="{left}" y="{h - 4}" class="small">{_e(items[0][1].name)} (bar) '
               "against its bound (tick)" + (", the baseline's median (dot)"
                                                if any(m.baseline for _, m in items) else "")
               + ", per mode</text></svg>")
    return "".join(out)


def _first_line(text):
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _test_section(k, t, trend=""):
    head = (f'<div class="test-head"><h2>{_e(t.name)}</h2>{badge(t.verdict)}'
            f'<span class="small">{_e(t.outcome)} in pytest &middot; {fmt(t.duration_s)} s'
            + (f" &middot; markers: {_e(', '.join(t.markers))}" if t.markers else "")
            + "</span></div>"
            f'<p class="meta mono">{_e(t.nodeid)}</p>')
    why = ""
    if t.verdict == "skipped":
        why = f'<p class="why skipped">Skipped: {_e(t.reason)}</p>'
    elif t.verdict == "xfailed":
        why = (f'<div class="why xfailed"><p>Failed as expected, of a known defect '
               f"(not a pass): {_e(t.reason)}</p></div>")
    elif t.reason:
        why = f'<div class="why"><pre>{_e(t.reason)}</pre></div>'
    charts = "".join(f"<figure><figcaption>{_e(tl.title)}</figcaption>"
                     f"{render_timeline_svg(tl)}</figure>" for tl in t.timelines)
    log = ""
    if t.commands_log:
        log = (f'<p class="meta">Commands log: <a href="{_e(quote(t.commands_log))}">'
               f"{_e(t.commands_log)}</a></p>")
    return (f'<section class="test v-{_e(t.verdict)}-border" id="t{k}">{head}{why}{charts}'
            f"{_measurements_table(t.measurements)}{trend}{log}</section>")


def _measurements_table(measurements):
    if not measurements:
        return ""
    with_base = any(m.baseline for m in measurements)
    rows = []
    for m in measurements:
        st = m.stats
        res = f"{fmt(m.resolution)} {_e(m.unit)}" if m.resolution is not None else "\u2013"
        thr = (f"{_e(m.comparison)} {fmt(m.threshold)} {_e(m.unit)}"
               if m.threshold is not None else "\u2013")
        prof = f'<br><span class="small">profile {_e(m.profile)}</span>' if m.profile else ""
        if m.basis:
            prof += f'<br><span class="small">bound: {_e(m.basis)}</span>'
        note = f'<br><span class="small">{_e(m.note)}</span>' if m.note else ""
        base = ""
        if with_base:
            base = f'<td class="num">{baseline_cell(m.baseline)}</td>'
        rows.append(
            f"<tr><td>{_e(m.name)}{note}</td><td class=\"num\"><b>{fmt(m.value)}</b></td>"
            f"<td>{_e(m.unit)}</td><td class=\"num\">{st['n']}</td>"
            + "".join(f'<td class="num">{fmt(st[k])}</td>' for k in ("min", "median", "p95", "max"))
            + base
            + f"<td>{_e(m.method)}</td><td class=\"num\">{res}</td><td>{thr}{prof}</td>"
            f'<td><span class="badge m-{_e(m.verdict)}">{_e(m.verdict.upper())}</span></td></tr>')
    return ("<h3>Measurements</h3><table><thead><tr><th>Figure</th><th>Value</th><th>Unit</th>"
            "<th>n</th><th>min</th><th>median</th><th>p95</th><th>max</th>"
            + ("<th>Baseline (median) / change</th>" if with_base else "")
            + "<th>Method</th><th>Resolution</th><th>Threshold</th><th>Verdict</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table>')


def baseline_cell(b):
    """The baseline's median, its count and the change of this run's median, or a dash."""
    if not b:
        return "\u2013"
    ch = "n/a" if b.get("change") is None else f"{b['change']:+.0%}"
    cls = "over" if b.get("worse") else "ok"
    return (f"{fmt(b.get('median'))} (n={b.get('n')})<br>"
            f'<span class="chg-{cls}">{_e(ch)}{" WORSE" if b.get("worse") else ""}</span>')


def _inventory(inv):
    if not inv:
        return '<section class="inventory"><h2>Lab inventory</h2><p class="small">' \
               "No inventory was collected in this run (the smoke tests collect it).</p></section>"
    rows = []
    for node, data in sorted(inv.items()):
        if not isinstance(data, dict):
            rows.append(f'<tr><td>{_e(node)}</td><td colspan="9">{_e(data)}</td></tr>')
            continue
        if isinstance(data.get("switch"), dict):
            sw = data["switch"]
            what = (f"switch, {sw.get('platform')}: "
                    + (sw.get("version") or f"version not read ({sw.get('error') or '?'})"))
            rows.append(f'<tr><td><b>{_e(node)}</b></td><td colspan="9">{_e(what)}</td></tr>')
            continue
        ports = sorted((data.get("ports") or {}).items()) or [("", {})]
        rdma = ", ".join(map(str, data.get("rdma") or [])) or "\u2013"
        node_cells = (f'<td rowspan="{len(ports)}"><b>{_e(node)}</b></td>'
                      f'<td rowspan="{len(ports)}" class="mono">{_e(data.get("kernel", ""))}</td>'
                      f'<td rowspan="{len(ports)}">{_yes(data.get("bonding"))}</td>'
                      f'<td rowspan="{len(ports)}">{_yes(data.get("team"))}</td>'
                      f'<td rowspan="{len(ports)}">{_e(rdma)}</td>')
        for i, (port, p) in enumerate(ports):
            p = p if isinstance(p, dict) else {"driver": p}
            cells = "".join(f"<td>{_e(p.get(k) or '') or '&ndash;'}</td>"
                            for k in ("driver", "version", "firmware", "bus"))
            rows.append(f"<tr>{node_cells if i == 0 else ''}<td>{_e(port) or '&ndash;'}</td>"
                        f"{cells}</tr>")
    return ('<section class="inventory"><h2>Lab inventory</h2><table><thead><tr><th>Node</th>'
            "<th>Kernel</th><th>bonding</th><th>team</th><th>RDMA</th><th>Port</th>"
            "<th>Driver</th><th>Driver version</th><th>Firmware</th><th>Bus</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _yes(v):
    return "\u2013" if v is None else ("yes" if v is True else "no" if v is False else _e(v))
