"""The certificate page of a certification run: one printable HTML page (A4,
one or two sheets) with the product and firmware as read, the plan and its
claim, the verdict, every plan test with its judged figures against their
bounds, and the bundle's digest (sha256 of its SHA256SUMS).

It is rendered from the bundle's own manifest.json and results.json only, the
same way every time, so ``laghil report verify`` renders it again and refuses
a certificate.html that says anything else.
"""

from html import escape

from .html import fmt

CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font: 10pt/1.35 system-ui, sans-serif; color: #111; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 4pt; }
h2 { font-size: 11pt; margin: 10pt 0 4pt; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 1.5pt 4pt; vertical-align: top; border-bottom: 1px solid #ddd; }
th { font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.v-passed { color: #065f46; font-weight: 700; }
.v-failed, .v-error { color: #991b1b; font-weight: 700; }
.mono { font-family: ui-monospace, monospace; font-size: 8.5pt; word-break: break-all; }
.small { font-size: 8.5pt; color: #444; }
tr { break-inside: avoid; }
"""


def _e(x):
    return escape("" if x is None else str(x), quote=True)


def _list(v):
    return ", ".join(map(str, v)) if isinstance(v, list) else (v or "not read")


# The page's layout version, recorded in the manifest (``certificate_template``):
# a bundle is compared byte for byte with the page this laghil renders only when
# rendered with the same layout; an older layout is checked by what it must say.
TEMPLATE = 2


def render_certificate(manifest, results, digest):
    """The page (str) from the bundle's manifest and results (dicts) and the
    sha256 of its SHA256SUMS."""
    m, r = manifest, results
    prod = m.get("product") or {}
    plan = m.get("plan") or {}
    verdict = r.get("verdict", "?")
    tests = {t["test_id"]: t for t in r.get("tests", [])}
    rows = []
    for nid in m.get("tests") or []:
        t = tests.get(nid) or {}
        figs = [x for x in t.get("measurements", []) if x.get("threshold") is not None]
        v = t.get("verdict", "missing")
        name = nid.split("::", 1)[-1]
        if not figs:
            rows.append(f'<tr><td>{_e(name)}</td><td class="v-{_e(v)}">{_e(v)}</td>'
                        "<td></td><td></td><td></td></tr>")
        for i, f in enumerate(figs):
            rows.append(
                "<tr>" + (f'<td rowspan="{len(figs)}">{_e(name)}</td><td rowspan="{len(figs)}" '
                          f'class="v-{_e(v)}">{_e(v)}</td>' if i == 0 else "")
                + f"<td>{_e(f.get('name'))}</td><td class=\"n\">{_e(fmt(f.get('value')))} "
                f"{_e(f.get('unit'))}</td><td class=\"n\">{_e(f.get('comparison'))} "
                f"{_e(fmt(f.get('threshold')))} {_e(f.get('unit'))}</td></tr>")
    lab = m.get("lab") or {}
    laghil = m.get("laghil") or {}
    s = m.get("summary") or {}
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>laghil certificate: {_e(plan.get('name'))} on {_e(lab.get('name'))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Certificate: {_e(plan.get('name'))} v{_e(plan.get('version'))} "
        f'<span class="v-{_e(verdict)}">{_e(verdict.upper())}</span></h1>',
        f'<p class="small">{_e(plan.get("claim", "")).strip()}</p>',
        "<h2>Product, as the run read it</h2><table>",
        f"<tr><th>NIC driver</th><td>{_e(_list(prod.get('drivers')))}</td>"
        f"<th>Firmware</th><td>{_e(_list(prod.get('firmware')))}</td></tr>",
        f"<tr><th>PCI vendor / device</th><td>{_e(_list(prod.get('vendor')))} / "
        f"{_e(_list(prod.get('model')))}</td><th>Board (PSID)</th>"
        f"<td>{_e(_list(prod.get('board')))}</td></tr>",
        f"<tr><th>Ports read</th><td colspan=\"3\">{_e(len(prod.get('ports') or {}))} "
        "(each in manifest.json)</td></tr>",
        *[f"<tr><th>Switch {_e(n)}</th><td colspan=\"3\">{_e(d.get('platform'))}: "
          f"{_e(d.get('version') or 'version not read: ' + str(d.get('error') or '?'))}</td></tr>"
          for n, d in sorted((m.get("switches") or {}).items())],
        "</table>",
        "<h2>Run</h2><table>",
        f"<tr><th>Lab</th><td>{_e(lab.get('name'))} ({_e(lab.get('kind'))})</td>"
        f"<th>Profile</th><td>{_e((m.get('profile') or {}).get('label'))}</td></tr>",
        f"<tr><th>Started</th><td>{_e(m.get('started'))}</td><th>Finished</th>"
        f"<td>{_e(m.get('finished'))}</td></tr>",
        f"<tr><th>Tests</th><td>{_e(s.get('passed'))} passed, {_e(s.get('failed'))} failed, "
        f"{_e(s.get('error'))} errors, {_e(s.get('skipped'))} skipped of {_e(s.get('total'))}"
        f"</td><th>Repetitions</th><td>{_e(plan.get('reps'))} per failover case</td></tr>",
        f"<tr><th>laghil</th><td>{_e(laghil.get('version'))} "
        f'<span class="mono">{_e(laghil.get("commit") or "commit not recorded")}</span></td>'
        f"<th>Plan sha256</th><td class=\"mono\">{_e(plan.get('sha256'))}</td></tr></table>",
        "<h2>Cases: judged figures against their bounds</h2>",
        "<table><tr><th>test</th><th>verdict</th><th>figure</th><th>value</th><th>bound</th></tr>",
        *rows, "</table>",
        "<h2>Bundle</h2>",
        f'<p>sha256 of SHA256SUMS: <span class="mono">{_e(digest)}</span></p>',
        f'<p class="small">Reproduce: <span class="mono">{_e(m.get("command"))}</span>. Verify: '
        "<span class=\"mono\">laghil report verify certification.tar.gz --allowed-signers "
        "FILE</span> (checksums, signature, the plan's coverage, this page).</p>",
        "</body></html>", ""])
