"""`dllab doctor RUN`: what a stored run's curves and layers point at, with the evidence, and the
catalogue's remedies for each (``engine.diagnostics.doctor``)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape

from tui_lab.commands import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, stdout_console
from tui_lab.commands.args import seeds
from tui_lab.data.fmt import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="what a stored run's curves and layers point at, and the remedies")
    p.add_argument("run", help="a run id, or a unique prefix of one (dllab runs lists them)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--ablate", action="store_true",
                   help="then train your recipe and each proposed remedy over seeds, and say which helped")
    p.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="the ablation's seeds (default 0,1,2)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.diagnostics.doctor import examine_stored
    from engine.runs.store import RunStore

    with RunStore() as store:
        store.settle_orphans()
        try:
            row = store.get_run(args.run)
        except KeyError as exc:
            print(clean(f"dllab: {exc.args[0]}"), file=sys.stderr)
            return EXIT_INVALID
    if row.status in ("pending", "running"):
        print(clean(f"dllab: run {row.run_id} is still {row.status}: the doctor reads a run that has ended"),
              file=sys.stderr)
        return EXIT_INVALID
    report = examine_stored(row)
    if args.json:
        print(json.dumps({"run": row.run_id, "findings": [
            {"cause": f.cause, "title": f.title, "evidence": f.evidence, "frame": f.frame,
             "remedies": [{"text": r.text, "preset": r.preset, "change": r.change} for r in f.remedies]}
            for f in report.findings]}, indent=2))
        return EXIT_OK
    console = stdout_console()
    from tui_lab.data.doctor_text import report_lines, run_heading

    console.print(escape(run_heading(row)), style="bold")
    for line in report_lines(report):
        console.print(escape(line), style="bold" if line[:1].isdigit() else None)
    if args.ablate and not report.healthy:
        return _ablate(row, report, args, console)
    return EXIT_OK


def _ablate(row, report, args: argparse.Namespace, console) -> int:
    """Your recipe and each remedy over the seeds, in the runs' workers; then each remedy's verdict."""
    from engine.diagnostics.doctor import ablation_specs, ablation_verdicts
    from engine.runs.outcomes import OutcomeCollector
    from engine.runs.runner import Runner
    from engine.runs.store import RunStore

    specs = ablation_specs(row.spec, report, args.seeds)
    variants = list(dict.fromkeys(s.variant for s in specs))
    console.print(f"\nablation: {len(variants)} variants × {len(args.seeds)} seeds "
                  f"({', '.join(escape(v) for v in variants)}) …")
    collector = OutcomeCollector()
    runner = Runner(specs, device=args.device, store=RunStore())
    for run_id, spec in zip(runner.run_ids, specs, strict=True):
        collector.register(run_id, spec.variant, spec.seed)
    try:
        runner.start()
        for event in runner.events():
            collector.add(event)
    except KeyboardInterrupt:
        print("dllab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        runner.close()
    console.print(f"comparison {runner.comparison} (`dllab attach {runner.comparison}` or History show its curves)")
    for verdict in ablation_verdicts(report, collector.outcomes()):
        console.print(("✔ " if verdict.helped else "· ") + escape(verdict.text()))
    return EXIT_OK
