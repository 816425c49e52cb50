"""The `laghil` command line.

    laghil lab schema [-o FILE]          JSON Schema of lab files (for editors)
    laghil lab check --lab NAME|PATH     reachability, tools and cable carrier
    laghil lab show --lab NAME|PATH      the lab as validated
    laghil lab baseline --lab L          record the lab's clean state (its baseline)
    laghil lab restore --lab L [--dry-run]  replay a killed run's undo journal, then
                                         repair what differs from the baseline
    laghil lab unlock --lab L [--force]  show the lease on the lab; --force breaks it
    laghil vlab up|down|status [--lab]   the embedded virtual rack
    laghil vlab kernel                   fetch the guest kernel into the cache
    laghil measure calibrate [--lab L]   known outages measured by the probe
    laghil report compare BASE CUR       judged figures of a run against a baseline
    laghil report history --lab L [--case C]  a lab's figures over its last runs
"""

import argparse
import json
import sys
from pathlib import Path

from .errors import LaghilError


def _lab(args):
    from .lab import load_lab
    return load_lab(args.lab)


def cmd_lab_schema(args):
    from .lab import lab_schema
    text = json.dumps(lab_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_lab_show(args):
    lab = _lab(args)
    print(json.dumps(lab.model_dump(mode="json"), indent=2))
    return 0


def cmd_lab_check(args):
    from .check import check_lab, format_check
    from .lock import LabLock
    from .runtime import LabRuntime
    lab = _lab(args)
    with LabLock(lab.name):
        rt = LabRuntime(lab)
        try:
            if rt.rack is not None and not rt.rack.is_up():
                print(f"lab {lab.name}: the virtual rack is not running; start it with "
                      f"`laghil vlab up --lab {args.lab}`", file=sys.stderr)
                return 2
            nodes, cables, ok = check_lab(rt)
        finally:
            rt.close(stop_rack=False)
    print(format_check(nodes, cables))
    print(f"\nlab {lab.name}: {'OK' if ok else 'PROBLEMS FOUND'}")
    return 0 if ok else 1


def cmd_lab_baseline(args):
    from .labstate import baseline_path, lab_state, write_baseline
    from .session import held_lab
    lab = _lab(args)
    with held_lab(lab, boot=False, clean=False) as session:
        pending = session.journal.pending()
        if pending:
            print(f"lab {lab.name}: {len(pending)} undo(s) of a killed run are pending in its "
                  f"journal; a baseline is the clean state: run `laghil lab restore --lab "
                  f"{args.lab}` first", file=sys.stderr)
            return 1
        state = lab_state(session.rt)
        path = write_baseline(state, args.output or baseline_path(lab.name))
    for node, snap in sorted(state["nodes"].items()):
        links = snap["links"]
        print(f"{node:10} {len(links)} links ({sum(1 for l in links.values() if l['admin_up'])} "
              f"up), {sum(len(a) for a in snap['addrs'].values())} addresses, "
              f"{len(snap['rdma'])} RDMA links, {len(snap['netns'])} netns")
    for pdu, outlets in sorted(state["pdus"].items()):
        print(f"pdu {pdu:6} " + (outlets["error"] if "error" in outlets else
                                 " ".join(f"{o}:{'on' if v else 'off'}"
                                          for o, v in outlets.items())))
    print(f"\nlab {lab.name}: baseline recorded in {path}")
    return 0


def cmd_lab_restore(args):
    from .labstate import LabDirty
    from .session import held_lab
    lab = _lab(args)
    try:
        with held_lab(lab, boot=False, restore=True, dry_run=args.dry_run) as session:
            report = session.start
    except LabDirty as e:
        print(str(e), file=sys.stderr)
        return 1
    n_restored = len(report["restored"])
    bad = [r for r in report["restored"] + report["repaired"] if not r["ok"]]
    verb = "would replay" if args.dry_run else "replayed"
    print(f"lab {lab.name}: {verb} {n_restored} journaled undo(s); "
          + (f"baseline {report['baseline']}: {len(report['diff'])} difference(s)"
             + ("" if args.dry_run else f", {len(report['repaired'])} repaired")
             if report["baseline"] else "no baseline recorded (laghil lab baseline)")
          + (f"; {len(bad)} FAILED" if bad else ""))
    return 1 if bad else 0


def cmd_lab_unlock(args):
    from .lease import break_leases, read_leases
    from .runtime import LabRuntime
    lab = _lab(args)
    rt = LabRuntime(lab)
    try:
        if rt.rack is not None and not rt.rack.is_up():
            print(f"lab {lab.name}: the virtual rack is not running: no lease to show",
                  file=sys.stderr)
            return 2
        sessions = {n: rt.node(n).session for n in lab.hosts}
        if not args.force:
            found = read_leases(lab.name, sessions)
            for node, (holder, now) in found.items():
                print(f"{node:10} " + (holder.describe(now) if holder else "no lease"))
            print("\n(break a lease with --force)")
            return 0
        broken = break_leases(lab.name, sessions)
    finally:
        rt.close(stop_rack=False)
    if not broken:
        print(f"lab {lab.name}: no lease held")
    for node, holder in broken:
        print(f"lab {lab.name}: broke the lease on {node} of {holder.describe()}")
    return 0


def cmd_vlab(args):
    from .lock import LabLock
    from .vlab.kernel import ensure_kernel
    if args.action == "kernel":
        k = ensure_kernel()
        print(f"guest kernel {k.version} at {k.root}")
        return 0
    from .vlab.rack import Rack
    lab = _lab(args)
    rack = Rack(lab)
    if args.action == "status":
        st = rack.status()
        for name, s in st.items():
            where = (f"127.0.0.1:{s['ssh_port']}" if s["ssh_port"] else
                     f"{rack.plans[name].address}:22 via {rack.jump_of(name).name}")
            print(f"{name:10} pid={s['pid'] or '-':<8} ssh={where} "
                  f"{'answers' if s['ssh'] else 'down'}")
        return 0 if all(s["pid"] and s["ssh"] for s in st.values()) else 3
    with LabLock(lab.name):
        if args.action == "up":
            if lab.twin is not None:
                print(f"vlab {lab.name}: the virtual twin of {lab.twin.of}; stand-ins:\n  - "
                      + "\n  - ".join(lab.twin.stand_ins))
            secs = rack.up(detach=True, reuse=True)
            if secs:
                print(f"vlab {lab.name}: {len(rack.plans)} guests answer SSH; "
                      f"boot wall time {secs:.1f} s")
        else:
            stopped = rack.down()
            print(f"vlab {lab.name}: stopped {len(stopped)} guest(s)")
    return 0


def cmd_measure(args):
    from .measure.calibrate import main_calibrate
    return main_calibrate(args.args)


def cmd_report_compare(args):
    from .profile import load_profile
    from .report.compare import compare, format_rows, load_runs
    tol = args.tolerance
    if tol is None:
        tol = load_profile(args.profile).threshold("regression/tolerance")
    (current,) = load_runs(args.current)[-1:]
    rows = compare(load_runs(args.baseline), current, tol)
    print(format_rows(rows))
    return 1 if any(r.worse for r in rows) else 0


def cmd_report_history(args):
    import os

    from .report.history import history_path, read_history, trend_table
    reports = os.environ.get("LAGHIL_REPORTS_DIR") or Path(__file__).resolve().parent.parent / "reports"
    path = Path(args.history) if args.history else history_path(reports, args.lab)
    records, damaged = read_history(path, lab=args.lab)
    print(f"{path}: {len(records)} run(s) of lab {args.lab}"
          + (f"; damaged line(s) skipped: {damaged}" if damaged else ""))
    for line in trend_table(records, case=args.case, figure=args.figure, last=args.last):
        print(line)
    return 0


def cmd_report_verify(args):
    from .report.verify import verify
    try:
        problems, notes = verify(args.bundle, allowed_signers=args.allowed_signers)
    except (OSError, ValueError) as e:
        raise LaghilError(str(e)) from None
    for n in notes:
        print(f"laghil: {n}")
    for p in problems:
        print(f"PROBLEM: {p}")
    if problems:
        print(f"laghil: bundle {args.bundle}: {len(problems)} problem(s): NOT verified")
        return 1
    print(f"laghil: bundle {args.bundle}: verified")
    return 0


def cmd_profile_derive(args):
    from .derive import derive_profile
    from .profile import default_profiles_dir, load_profile
    from .profile_text import render as render_profile
    from .report.compare import load_runs
    from .report.compare import CompareError
    if args.min_runs < 3 or args.min_reps < 3:
        raise LaghilError(f"--min-runs {args.min_runs} / --min-reps {args.min_reps}: a profile "
                          "is derived from at least 3 runs x 3 repetitions per case")
    runs = []
    for path in args.runs:
        try:
            runs += load_runs(path)
        except CompareError as e:
            raise LaghilError(str(e).replace("baseline ", "run ", 1)) from None
    name = args.name or args.lab.replace(":", "-")
    base = load_profile(args.base)
    d = derive_profile(runs, args.lab, base, name, version=args.version,
                       min_runs=args.min_runs, min_reps=args.min_reps, keep=tuple(args.keep))
    out = Path(args.output) if args.output else default_profiles_dir() / f"{name}.yaml"
    header = [f"laghil certification profile {name} v{args.version}, written by `laghil "
              f"profile derive --lab {args.lab}`", f"from {len(runs)} healthy run(s) on top of "
              f"{base.label} ({Path(base.source).name}): the base's comments are kept; every",
              "derived allowance's derivation is under `derivations`. Derive again rather than "
              "edit it."]
    if args.keep:
        header.append(f"Kept from {base.label}, not derived (--keep): {', '.join(args.keep)}.")
    text = render_profile(d, Path(base.source).read_text(), header)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    n = sum(len(v) for v in d["derivations"].values())
    print(f"laghil: profile {name} v{args.version}: {n} allowance(s) derived from {len(runs)} "
          f"run(s) of lab {args.lab} -> {out}")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="laghil", description="HA/LAG hardware-in-the-loop validation")
    sub = p.add_subparsers(dest="cmd", required=True)

    lab = sub.add_parser("lab", help="lab files").add_subparsers(dest="action", required=True)
    s = lab.add_parser("schema", help="write the JSON Schema of lab files")
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_lab_schema)
    for name, func, helptext in (("check", cmd_lab_check, "check nodes, tools and cables"),
                                 ("show", cmd_lab_show, "print the validated lab")):
        c = lab.add_parser(name, help=helptext)
        c.add_argument("--lab", default="virtual", help="lab name (labs/NAME.yaml) or path")
        c.set_defaults(func=func)

    c = lab.add_parser("baseline", help="record the lab's clean state as its baseline")
    c.add_argument("--lab", default="virtual", help="lab name (labs/NAME.yaml) or path")
    c.add_argument("-o", "--output", help="where (default: the state folder's baselines/LAB.json)")
    c.set_defaults(func=cmd_lab_baseline)
    c = lab.add_parser("restore", help="replay a killed run's undo journal, then repair what "
                                       "differs from the baseline")
    c.add_argument("--lab", default="virtual", help="lab name (labs/NAME.yaml) or path")
    c.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    c.set_defaults(func=cmd_lab_restore)
    c = lab.add_parser("unlock", help="show the lease held on the lab; --force breaks it")
    c.add_argument("--lab", default="virtual", help="lab name (labs/NAME.yaml) or path")
    c.add_argument("--force", action="store_true", help="break the lease, saying whose it was")
    c.set_defaults(func=cmd_lab_unlock)

    m = sub.add_parser("measure", help="measurement tools")
    m.add_argument("action", choices=["calibrate"])
    m.add_argument("args", nargs=argparse.REMAINDER,
                   help="options of the action (see laghil measure calibrate --help)")
    m.set_defaults(func=cmd_measure)

    r = sub.add_parser("report", help="run reports").add_subparsers(dest="action", required=True)
    c = r.add_parser("compare", help="judged figures of a run against a baseline (exit 1 if "
                                     "one is worse)")
    c.add_argument("baseline", help="baseline: a results.json, its run folder, or a folder of runs")
    c.add_argument("current", help="the run to judge: a results.json or its run folder")
    c.add_argument("--tolerance", type=float, default=None,
                   help="share a median may worsen (default: the profile's regression/tolerance)")
    c.add_argument("--profile", default="default")
    c.set_defaults(func=cmd_report_compare)
    c = r.add_parser("history", help="a lab's figures over its last runs (the run history)")
    c.add_argument("--lab", required=True)
    c.add_argument("--case", default=None, help="only tests whose name contains this")
    c.add_argument("--figure", default=None, help="only this figure (e.g. 'T_gap median')")
    c.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    c.add_argument("--history", default=None, metavar="PATH",
                   help="the history file (default reports/history/<lab>.jsonl)")
    c.set_defaults(func=cmd_report_history)
    c = r.add_parser("verify", help="check a certification bundle: checksums, signature, the "
                                    "plan's coverage, consistency (exit 0 only when clean)")
    c.add_argument("bundle", help="reports/<run>/certification or its .tar.gz")
    c.add_argument("--allowed-signers", default=None, metavar="FILE",
                   help="the lab keys a certifier trusts (ssh-keygen ALLOWED SIGNERS format: "
                        "'principal namespaces=\"laghil-cert\" ssh-ed25519 AAAA...')")
    c.set_defaults(func=cmd_report_verify)

    pr = sub.add_parser("profile", help="threshold profiles").add_subparsers(dest="action",
                                                                            required=True)
    c = pr.add_parser("derive", help="derive a profile's allowances from a lab's own healthy "
                                     "runs (their results.json)")
    c.add_argument("--lab", required=True, help="the lab the runs are of (as results.json names "
                                                "it: virtual, rack3, twin:rack3)")
    c.add_argument("runs", nargs="+", help="results.json files, run folders or folders of runs")
    c.add_argument("--base", default="default",
                   help="profile whose thresholds and other allowances are kept (default: default)")
    c.add_argument("--name", help="the profile's name (default: the lab's); written to "
                                  "profiles/NAME.yaml unless -o")
    c.add_argument("-o", "--output", help="where to write the profile")
    c.add_argument("--version", type=int, default=1)
    c.add_argument("--min-runs", type=int, default=3, help="runs needed per case (at least 3)")
    c.add_argument("--min-reps", type=int, default=3, help="repetitions per run (at least 3)")
    c.add_argument("--keep", action="append", default=[], metavar="KIND",
                   help="an allowance kind (e.g. step_ms) kept from the base rather than derived "
                        "(the runs have too few of its figures); repeatable, said in the profile")
    c.set_defaults(func=cmd_profile_derive)

    v = sub.add_parser("vlab", help="the embedded virtual rack")
    v.add_argument("action", choices=["up", "down", "status", "kernel"])
    v.add_argument("--lab", default="virtual",
                   help="a virtual lab (default: virtual), or twin:NAME, the virtual twin of a "
                        "physical one")
    v.set_defaults(func=cmd_vlab)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LaghilError as e:
        print(f"laghil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
