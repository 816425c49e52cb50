"""What changed since the lab's previous run, and a case's trend: the top of
report.html the morning after (from the run history, laghil.report.history).

- **Verdicts** that changed since the previous run of the same lab (a test new
  or gone too).
- **Figures that moved** beyond their run-to-run noise. The noise is the
  history's, never one run's: the repetitions of the figure in the last
  ``window`` runs where it passed (at least ``min_runs`` of them; a run without
  repetitions counts its median) span a range; the current median moved when
  it is outside that range widened by half its width on each side and by the
  figure's resolution. Fewer healthy runs: the figure is not judged for
  movement, and the section says how many there are.
- **What it ran on**: kernel, driver, firmware per port, the profile and
  laghil's version, against the previous run.
- **Flaky tests**: a verdict that flipped between passed and failed more than
  once over the last ``window`` runs (this one included).

Pure functions of history records; the HTML is escaped like the rest of the page."""

from html import escape

WINDOW, MIN_RUNS = 10, 2
JUDGED = ("passed", "failed")


def _e(text):
    return escape("" if text is None else str(text), quote=True)


def _median(f):
    return f.get("median") if f.get("median") is not None else f.get("value")


def noise_band(values, resolution=None):
    """(lo, hi) of the run-to-run noise of healthy runs' values (see the module doc)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) / 2 + (resolution or 0.0)
    # a figure that was never negative (a time, a count) has no noise below zero
    return (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad


def inventory_changes(prev, cur):
    """Lines saying what the run ran on that the previous one did not."""
    out = []
    pk, ck = prev["inventory"]["kernel"], cur["inventory"]["kernel"]
    for node in sorted(set(pk) | set(ck)):
        if pk.get(node) != ck.get(node):
            out.append(f"{node}: kernel {pk.get(node) or 'none'} -> {ck.get(node) or 'none'}")
    pp, cp = prev["inventory"]["ports"], cur["inventory"]["ports"]
    for node in sorted(set(pp) | set(cp)):
        for port in sorted(set(pp.get(node, {})) | set(cp.get(node, {}))):
            a, b = pp.get(node, {}).get(port) or {}, cp.get(node, {}).get(port) or {}
            for k in ("driver", "version", "firmware"):
                if a.get(k) != b.get(k):
                    out.append(f"{node}:{port}: {k} {a.get(k) or 'none'} -> {b.get(k) or 'none'}")
    for k, what in (("profile", "profile"), ("laghil", "laghil")):
        if prev.get(k) != cur.get(k):
            out.append(f"{what} {prev.get(k) or 'none'} -> {cur.get(k) or 'none'}")
    return out


def since_last(cur, history, window=WINDOW, min_runs=MIN_RUNS):
    """What changed from the previous runs of ``cur``'s lab (``history``: its
    earlier records, oldest first; other labs' are ignored)."""
    runs = [r for r in history if r.get("lab") == cur.get("lab") and r["run_id"] != cur["run_id"]]
    if not runs:
        return {"previous": None, "runs": 0, "verdicts": [], "moved": [], "inventory": [],
                "flaky": [], "unjudged": 0}
    prev = runs[-1]
    verdicts = []
    for tid in sorted(set(cur["tests"]) | set(prev["tests"])):
        a, b = prev["tests"].get(tid), cur["tests"].get(tid)
        old, new = (a or {}).get("verdict"), (b or {}).get("verdict")
        if old != new:
            verdicts.append(((b or a).get("name") or tid, old or "not run", new or "not run"))
    moved, unjudged = [], 0
    recent = runs[-window:]
    for tid, t in cur["tests"].items():
        for name, f in t["figures"].items():
            now = _median(f)
            if now is None or f.get("threshold") is None:
                continue
            healthy = [r["tests"][tid]["figures"][name] for r in recent
                       if name in (r["tests"].get(tid) or {}).get("figures", {})
                       and r["tests"][tid]["figures"][name].get("verdict") == "pass"
                       and _median(r["tests"][tid]["figures"][name]) is not None]
            if len(healthy) < min_runs:
                unjudged += 1
                continue
            values = [v for h in healthy
                      for v in ([x for x in h.get("repetitions") or [] if x is not None]
                                or [_median(h)])]
            lo, hi = noise_band(values, f.get("resolution"))
            if not lo <= now <= hi:
                moved.append({"test": t.get("name") or tid, "figure": name, "now": now,
                              "unit": f.get("unit") or "", "lo": lo, "hi": hi,
                              "n": len(healthy), "up": now > hi, "verdict": f.get("verdict")})
    flaky = []
    seq_runs = recent[-(window - 1):] + [cur]
    for tid in cur["tests"]:
        seq = [r["tests"][tid]["verdict"] for r in seq_runs
               if (r["tests"].get(tid) or {}).get("verdict") in JUDGED]
        flips = sum(1 for x, y in zip(seq, seq[1:]) if x != y)
        if flips > 1:
            flaky.append((cur["tests"][tid].get("name") or tid, flips, len(seq)))
    return {"previous": prev["run_id"], "runs": len(runs), "verdicts": verdicts, "moved": moved,
            "inventory": inventory_changes(prev, cur), "flaky": flaky, "unjudged": unjudged}


def render_since(s, window=WINDOW, min_runs=MIN_RUNS):
    """The report's top section."""
    if s["previous"] is None:
        return ('<section class="since"><h2>Since the last run</h2><p class="meta">No earlier '
                "run of this lab in its history: nothing to compare yet.</p></section>")
    parts = [f'<section class="since"><h2>Since the last run '
             f'<span class="mono">{_e(s["previous"])}</span></h2>']
    if not (s["verdicts"] or s["moved"] or s["inventory"] or s["flaky"]):
        parts.append("<p><b>No change</b>: same verdicts, no figure outside its run-to-run "
                     "noise, same kernel, drivers, firmware and profile.</p>")
    if s["verdicts"]:
        parts.append("<h3>Verdicts that changed</h3><ul>" + "".join(
            f"<li>{_e(n)}: {_e(a)} &rarr; <b>{_e(b)}</b></li>" for n, a, b in s["verdicts"])
            + "</ul>")
    if s["moved"]:
        parts.append("<h3>Figures outside their run-to-run noise</h3><ul>" + "".join(
            f'<li class="{"chg-over" if m["up"] else "chg-ok"}">{_e(m["test"])}: '
            f'{_e(m["figure"])} {m["now"]:.4g} {_e(m["unit"])} '
            f'({"above" if m["up"] else "below"} {m["lo"]:.4g}\u2013{m["hi"]:.4g}, the noise of '
            f'the repetitions of its last {m["n"]} passing runs)</li>' for m in s["moved"]) + "</ul>")
    if s["inventory"]:
        parts.append("<h3>What it ran on</h3><ul>" + "".join(
            f"<li>{_e(x)}</li>" for x in s["inventory"]) + "</ul>")
    if s["flaky"]:
        parts.append("<h3>Flaky</h3><ul>" + "".join(
            f"<li>{_e(n)}: its verdict flipped {k} times over its last {m} runs</li>"
            for n, k, m in s["flaky"]) + "</ul>")
    if s["unjudged"]:
        parts.append(f'<p class="small">{s["unjudged"]} figure(s) have fewer than {min_runs} '
                     f"passing runs in the last {window}: not judged for movement yet.</p>")
    parts.append("</section>")
    return "".join(parts)


def trend_points(history, cur, test_id, figure, last=30):
    """[(run id, median, lo rep, hi rep, bound, verdict, inventory changed)] of
    the last ``last`` runs (``cur`` the newest) that have the figure."""
    runs = [r for r in history if r.get("lab") == cur.get("lab") and r["run_id"] != cur["run_id"]]
    out, digest = [], None
    for r in runs + [cur]:
        f = (r["tests"].get(test_id) or {}).get("figures", {}).get(figure)
        d = r["inventory"]["digest"]
        if f is not None and _median(f) is not None:
            reps = [x for x in f.get("repetitions") or [] if x is not None] or [_median(f)]
            out.append((r["run_id"], _median(f), min(reps), max(reps), f.get("threshold"),
                        f.get("verdict"), digest is not None and d != digest))
        digest = d
    return out[-last:]


def trend_svg(points, unit="ms", width=520, height=140):
    """Inline SVG of a case's trend: per run its median (dot; red when failed),
    the spread of its repetitions (whisker), the bound (dashed steps) and a
    dashed vertical line where the inventory changed."""
    if len(points) < 2:
        return ""
    top = max(max(p[3] for p in points), max((p[4] or 0) for p in points)) * 1.1 or 1.0
    left, right, bottom, head = 44, 8, 18, 8
    w, h = width - left - right, height - bottom - head
    step = w / (len(points) - 1)

    def y(v):
        return head + h * (1 - v / top)
    out = [f'<svg class="trend" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="trend over {len(points)} runs">',
           f'<text x="2" y="{head + 8}" class="small">{top:.3g}</text>'
           f'<text x="2" y="{head + h}" class="small">0 {_e(unit)}</text>'
           f'<line x1="{left}" x2="{left}" y1="{head}" y2="{head + h}" stroke="#999"/>']
    bound = [(left + i * step, y(p[4])) for i, p in enumerate(points) if p[4] is not None]
    if bound:
        out.append('<polyline fill="none" stroke="#1d1d1f" stroke-dasharray="4 3" points="'
                   + " ".join(f"{x:.1f},{yy:.1f}" for x, yy in bound) + '"><title>bound</title>'
                   "</polyline>")
    for i, (rid, med, lo, hi, b, verdict, changed) in enumerate(points):
        x = left + i * step
        if changed:
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{head}" y2="{head + h}" '
                       f'stroke="#6A1B9A" stroke-dasharray="2 2"><title>inventory changed at '
                       f"{_e(rid)}</title></line>")
        color = "#d93025" if verdict == "fail" else "#4c8bf5"
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
                   f'stroke="{color}" stroke-width="2"/>'
                   f'<circle cx="{x:.1f}" cy="{y(med):.1f}" r="3.5" fill="{color}"><title>'
                   f"{_e(rid)}: median {med:.4g} {_e(unit)} (repetitions {lo:.4g}\u2013{hi:.4g})"
                   + (f"; bound {b:.4g}" if b is not None else "") + "</title></circle>")
    out.append(f'<text x="{left}" y="{height - 4}" class="small">{_e(points[0][0])}</text>'
               f'<text x="{width - right}" y="{height - 4}" class="small" text-anchor="end">'
               f"{_e(points[-1][0])}</text></svg>")
    return "".join(out)
