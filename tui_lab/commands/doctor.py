"""`dllab doctor RUN`: what a stored run's curves and layers point at, with the evidence, and the
catalogue's remedies for each (``engine.diagnostics.doctor``)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape

from tui_lab.commands import EXIT_INVALID, EXIT_OK, stdout_console
from tui_lab.data.fmt import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="what a stored run's curves and layers point at, and the remedies")
    p.add_argument("run", help="a run id, or a unique prefix of one (dllab runs lists them)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
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
    return EXIT_OK
