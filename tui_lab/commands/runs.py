"""`dllab runs`: the stored runs, newest first."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from tui_lab.commands import EXIT_INVALID, EXIT_OK, stdout_console
from tui_lab.commands.args import positive_int

if TYPE_CHECKING:
    from engine.runs.store import RunStore


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list stored runs, newest first")
    p.add_argument("--preset")
    p.add_argument("--status", type=_status)
    p.add_argument("--limit", type=positive_int, default=30, help="at most this many runs (default 30)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _status(text: str) -> str:
    from typing import get_args

    from engine.events import Status

    statuses = get_args(Status)
    if text not in statuses:
        raise argparse.ArgumentTypeError(f"unknown status {text!r}; choose one of {', '.join(statuses)}")
    return text


def _compact(x: object) -> str:
    """At most 8 characters: 0.4517, 1.99e-04, inf, –."""
    if not isinstance(x, float):
        return "–"
    return f"{x:.2e}" if x != 0 and abs(x) < 1e-3 else f"{x:.4g}"


TRAIN_LOSS = "train loss\n(eval)"
"""`dllab runs`' header for a run's final train loss: its last evaluation on the training split, in
eval mode (after early stopping, of the restored best weights), not the minibatch "batch loss" that
`dllab run` shows while it trains. Two lines, as the app's History heads it."""
NUMERIC = ("seed", "val acc", TRAIN_LOSS, "wall s")


def _unknown_preset(preset: str, store: RunStore) -> str | None:
    """Why `--preset` names nothing, or None when it does.

    A preset is known when the catalogue or the saved recipes have it, or when the store still has
    runs of it (a saved recipe that was deleted since): only then is an empty list an answer, not a
    typo."""
    from engine.catalogue.presets import builtin_ids, saved_ids

    known = {*builtin_ids(), *saved_ids()}
    if preset in known or store.list_runs(preset=preset, limit=1):
        return None
    stored = {r.preset for r in store.list_runs() if r.preset}
    close = difflib.get_close_matches(preset, sorted(known | stored), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"unknown preset {preset!r}; {hint}`dllab presets` lists the catalogue"


def run(args: argparse.Namespace) -> int:
    from engine.runs.store import RunStore
    from tui_lab.data import fmt
    from tui_lab.tables import clip_name, fit_names, longest

    store = RunStore()
    store.settle_orphans()  # runs whose process is gone end here, with the reason
    rows = store.list_runs(preset=args.preset, status=args.status, limit=args.limit)
    if not rows and args.preset and (problem := _unknown_preset(args.preset, store)):
        print(f"dllab: {fmt.clean(problem)}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=2, default=str))
        return EXIT_OK
    if not rows and args.preset:
        known = sorted({r.preset for r in store.list_runs() if r.preset})
        with_status = f" with status {args.status!r}" if args.status else ""
        print(fmt.clean(f"dllab: no stored runs of preset {args.preset!r}{with_status}"
                        + (f"; the store has runs of: {', '.join(known)}" if known else "; the store is empty")),
              file=sys.stderr)
    console = stdout_console()
    narrow = console.width < 96  # an 80-column terminal: leave out the start time, keep every number whole
    import datetime as dt

    cells = []
    for r in rows:
        started = dt.datetime.fromtimestamp(r.started).strftime("%m-%d %H:%M") if r.started else "–"
        cells.append((  # text from the store, control characters removed (fmt.clean)
            fmt.clean(r.run_id), fmt.clean(r.preset or ""), fmt.clean(r.variant or ""), str(r.seed), fmt.clean(r.status),
            fmt.pct(r.final.get("val_acc")),
            _compact(r.final.get("train_loss")),
            f"{r.wall_time:.1f}" if r.wall_time else "–",
            *([] if narrow else [started]),
        ))
    columns = [("run", 10), ("preset", 0), ("variant", 0), ("seed", 4), ("status", 6), ("val acc", 7),
               (TRAIN_LOSS, 8), ("wall s", 6), *([] if narrow else [("started", 11)])]

    def build(names: dict[str, int]) -> Table:
        table = Table(title=f"stored runs ({store.path})", pad_edge=False, box=box.SIMPLE_HEAD, collapse_padding=True)
        for col, width in columns:
            table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=width or None,
                             justify="right" if col in NUMERIC else "left")
        for run_id, preset, variant, *rest in cells:  # Text: names, not markup
            table.add_row(run_id, Text(clip_name(preset, names["preset"])),
                          Text(clip_name(variant, names["variant"])), *rest)
        return table

    # the names give way (the longer first, down to 6 cells) so that the numbers to their right
    # stay whole: Rich would cut the last columns instead, since none of them may wrap
    names = {"preset": longest(c[1] for c in cells), "variant": longest(c[2] for c in cells)}
    console.print(fit_names(build, console.width, names, floor=6))
    return EXIT_OK
