"""The `dllab` command line.

`dllab` with no arguments opens the lab; the subcommands run comparisons headless, list and
show stored runs, and run the tools. Exit codes: 0 success, 1 a run failed (or, for `check`, a
claim does not hold), 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tui_lab.commands.args import positive_int
from tui_lab.commands.args import seeds as _seeds  # argparse types, shared with the tools' options
from tui_lab.commands.args import workers as _workers

if TYPE_CHECKING:
    from engine.runs.store import RunStore

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fast(text: str) -> str:
    from engine.batched.accel import FastPaths

    try:
        FastPaths.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _status(text: str) -> str:
    from typing import get_args

    from engine.runs.events import Status

    statuses = get_args(Status)
    if text not in statuses:
        raise argparse.ArgumentTypeError(f"unknown status {text!r}; choose one of {', '.join(statuses)}")
    return text


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a catalogue id (see `dllab presets`), the id of a recipe saved "
                   "from the Builder, or a path to a preset TOML file")
    p.add_argument("--quick", action="store_true", help="the short form of the comparison (seconds on a CPU)")
    p.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2 (each variant runs per seed)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--workers", type=_workers,
                   help="worker processes; 0 trains in this process (default: fitted to devices and cores)")
    p.add_argument("--fast", type=_fast, default="",
                   help="opt-in fast paths for batched variants, comma-separated: bf16, compile, cuda_graphs "
                        "(CUDA; see docs/performance.md)")
    p.add_argument("--solo", action="store_true",
                   help="train every run on its own, not in batched groups: slower, but a run's numbers then "
                        "do not depend on which runs shared its group (float sums in another order)")
    p.add_argument("--json", action="store_true", help="print results and claims as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dllab",
        description="A terminal training lab: run deep-learning training techniques side by side.",
    )
    sub = parser.add_subparsers(dest="command")
    p_presets = sub.add_parser("presets", aliases=["list"], help="list the catalogue, or read one preset's card")
    p_presets.add_argument("preset", nargs="?", help="a catalogue id, a saved recipe's id or a preset file: print its card "
                           "(explanation, variants, claims)")
    p_presets.add_argument("--json", action="store_true", help="print the list (or the card) as JSON")
    _add_run_options(sub.add_parser("run", help="run a comparison headless and print the results"))
    _add_run_options(sub.add_parser("check", help="run a comparison and say whether each claim holds"))
    p_open = sub.add_parser("open", help="open the lab's dashboard on a comparison and start it")
    p_open.add_argument("preset")
    p_open.add_argument("--quick", action="store_true")
    p_open.add_argument("--seeds", type=_seeds)
    p_open.add_argument("--device", default="auto")
    p_runs = sub.add_parser("runs", help="list stored runs, newest first")
    p_runs.add_argument("--preset")
    p_runs.add_argument("--status", type=_status)
    p_runs.add_argument("--limit", type=positive_int, default=30, help="at most this many runs (default 30)")
    p_runs.add_argument("--json", action="store_true")
    p_show = sub.add_parser("show", help="show one stored run (an id or a unique prefix)")
    p_show.add_argument("run", help="a run id, or a unique prefix of one (dllab runs lists them)")
    p_show.add_argument("--json", action="store_true", help="print the run and its evaluations as JSON")
    from tui_lab.commands import register_all

    register_all(sub)
    return parser


def _console() -> Console:
    return Console(stderr=False, highlight=False)


def cmd_presets(args: argparse.Namespace) -> int:
    from engine.catalogue.presets import catalogue

    if args.preset:
        return _print_card(args.preset, args.json)
    presets = catalogue()
    if args.json:
        print(json.dumps([
            {"id": p.id, "title": p.preset.title, "chapter": p.preset.chapter, "step": p.preset.step,
             "benefit": p.preset.benefit, "summary": p.preset.summary,
             "variants": [v.name for v in p.preset.variants]}
            for p in presets
        ], indent=2))
        return EXIT_OK
    console = _console()
    # ids whole (they are typed); the step and benefit columns only where the summary keeps room
    cols = ("id", "title", "step", "benefit", "summary") if console.width >= 140 else ("id", "title", "summary")
    table = Table(title="dllab catalogue", caption="dllab presets ID: a preset's card · dllab run ID --quick: run it")
    id_width = max(len(p.id) for p in presets) if presets else 2
    for col in cols:
        table.add_column(col, no_wrap=col == "id", min_width=id_width if col == "id" else None,
                         ratio={"title": 2, "summary": 3}.get(col))
    chapter = None
    for p in presets:
        if p.preset.chapter != chapter:
            chapter = p.preset.chapter
            table.add_section()
            table.add_row(f"[bold]{chapter}[/]", *[""] * (len(cols) - 1))
        cells = {"id": p.id, "title": Text(p.preset.title), "step": p.preset.step, "benefit": p.preset.benefit,
                 "summary": Text(p.preset.summary)}
        table.add_row(*(cells[c] for c in cols))
    console.print(table)
    return EXIT_OK


def _print_card(preset: str, as_json: bool) -> int:
    """A preset's card, as the Library shows it: what it compares and why, its variants and claims."""
    from rich.markdown import Markdown

    from engine.catalogue.presets import builtin_dir, load_preset, saved_dir
    from tui_lab.data.frame import BENEFIT_WORDS, STEP_WORDS

    loaded = load_preset(preset)
    p = loaded.preset
    if as_json:
        print(json.dumps({"id": loaded.id, "path": str(loaded.path), **p.model_dump(mode="json")}, indent=2))
        return EXIT_OK
    console = _console()
    # which file an id names: the catalogue's, or a recipe saved from the Builder (and one it hides)
    where = ""
    if loaded.path.parent == saved_dir():
        where = f" · saved recipe ({loaded.path})"
    elif loaded.path.parent == builtin_dir() and (hidden := saved_dir() / loaded.path.name).is_file():
        where = f" · catalogue (a saved recipe of this id, {hidden}, is run by its path)"
    console.print(Text(p.title, style="bold"), Text(f"  {loaded.id} · {p.chapter}{where}", style="dim"))
    console.print(Text(f"step it changes: {STEP_WORDS.get(p.step, p.step)}\n"
                       f"what it buys:    {BENEFIT_WORDS.get(p.benefit, p.benefit)}"))
    console.print(Text(p.summary), "")
    console.print(Markdown(p.explain))
    seeds = ", ".join(map(str, p.default_seeds(False)))
    quick = ", ".join(map(str, p.default_seeds(True)))
    console.print(Text(f"\nVariants ({len(p.variants)}; seeds {seeds}, quick {quick})", style="bold"))
    for v in p.variants:
        console.print(Text(f"  • {v.name}" + (f": {v.description}" if v.description else "")))
    if p.claims:
        console.print(Text("\nClaims (checked when the runs end)", style="bold"))
        for c in p.claims:
            console.print(Text(f"  • {c.text}"))
    console.print(Text(f"\ndllab run {preset} --quick  ·  dllab check {preset} --quick  ·  "
                       f"dllab open {preset}", style="dim"))
    return EXIT_OK


def _run(args: argparse.Namespace, check: bool) -> int:
    from engine.batched.accel import FastPaths
    from engine.catalogue.presets import load_preset
    from tui_lab.headless import print_result, run_comparison

    loaded = load_preset(args.preset)
    if loaded.preset.search is not None:  # a search comparison: each variant is a whole search
        from tui_lab.commands.search import run_search_comparison

        return run_search_comparison(loaded, args)
    console = _console()
    if FastPaths.parse(args.fast).cuda_graphs:
        from engine.runs.device import resolve_device

        with contextlib.suppress(ValueError):  # a bad --device is reported by the run itself
            if (dev := resolve_device(args.device)).type != "cuda":
                print(f"dllab: note: cuda_graphs needs a CUDA device; on {dev} the steps run eagerly",
                      file=sys.stderr)
    result = run_comparison(
        loaded, quick=args.quick, seeds=args.seeds, device=args.device, workers=args.workers,
        console=Console(stderr=True), live=not args.json, fast=args.fast, batch=not args.solo,
    )
    print_result(result, console, as_json=args.json)
    if result.interrupted:
        if not args.json:
            console.print("[yellow]interrupted: unfinished runs were marked cancelled[/]")
        return EXIT_INTERRUPTED
    if check:
        if not args.json:
            held = sum(c.holds for c in result.claims)
            unchecked = sum(bool(c.problem) for c in result.claims)
            more = f" ({unchecked} not checked)" if unchecked else ""
            console.print(f"{held}/{len(result.claims)} claims hold{more}")
        return EXIT_OK if result.claims_hold and not result.any_failed else EXIT_FAILED
    return EXIT_FAILED if result.any_failed else EXIT_OK


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


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.runs.store import RunStore
    from tui_lab.data import fmt
    from tui_lab.tables import clip_name, fit_names, longest

    store = RunStore()
    rows = store.list_runs(preset=args.preset, status=args.status, limit=args.limit)
    if not rows and args.preset and (problem := _unknown_preset(args.preset, store)):
        print(f"dllab: {problem}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=2, default=str))
        return EXIT_OK
    if not rows and args.preset:
        known = sorted({r.preset for r in store.list_runs() if r.preset})
        with_status = f" with status {args.status!r}" if args.status else ""
        print(f"dllab: no stored runs of preset {args.preset!r}{with_status}"
              + (f"; the store has runs of: {', '.join(known)}" if known else "; the store is empty"), file=sys.stderr)
    console = _console()
    narrow = console.width < 96  # an 80-column terminal: leave out the start time, keep every number whole
    import datetime as dt

    cells = []
    for r in rows:
        started = dt.datetime.fromtimestamp(r.started).strftime("%m-%d %H:%M") if r.started else "–"
        cells.append((
            r.run_id, r.preset or "", r.variant or "", str(r.seed), r.status,
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


ALWAYS_SHOWN = {
    "data": ("name",),
    "model": ("kind",),
    "train": ("optimizer", "lr", "batch_size", "steps", "epochs"),
}
"""Recipe fields `dllab show` prints even at their defaults: what the run was (steps or epochs: the
one given)."""


def recipe_fields_shown(section: str, fields: dict[str, object]) -> tuple[dict[str, object], int]:
    """A stored recipe section's fields worth printing: the always relevant ones (an MLP's hidden
    sizes unless depth and width set them, a CNN's channels, a momentum optimizer's momentum too)
    and the others that differ from their defaults; and how many were left out."""
    from engine.recipe.config import section_spec

    model = section_spec(section)
    always = set(ALWAYS_SHOWN[section])
    if section == "model" and fields.get("kind") == "mlp" and fields.get("depth") is fields.get("width") is None:
        always.add("hidden")
    elif section == "model" and fields.get("kind") == "cnn":
        always.add("channels")
    elif section == "train" and fields.get("optimizer") in ("momentum", "nesterov"):
        always.add("momentum")
    shown = {}
    for name, value in fields.items():
        info = model.model_fields.get(name)
        if (info is None or info.is_required()  # no default to compare with
                or value != info.get_default(call_default_factory=True) or (name in always and value is not None)):
            shown[name] = value
    return shown, len(fields) - len(shown)


def _eval_cell(key: str, value: object) -> str:
    """An evaluation's figure: accuracies in percent (as the app shows them), the rest to 4 digits."""
    if key.endswith("_acc") and isinstance(value, float):
        from tui_lab.data import fmt

        return fmt.pct(value)
    return f"{value:.4g}" if isinstance(value, float) else str("–" if value is None else value)


def cmd_show(args: argparse.Namespace) -> int:
    from engine.diagnostics.curves import diagnose
    from engine.runs.store import RunStore

    store = RunStore()
    try:
        row = store.get_run(args.run)
    except KeyError as exc:
        from engine.catalogue.presets import builtin_ids, saved_ids

        hint = (f"; {args.run!r} is a preset: `dllab presets {args.run}` reads its card, "
                f"`dllab runs --preset {args.run}` lists its runs") if args.run in {*builtin_ids(), *saved_ids()} else ""
        print(f"dllab: {exc.args[0]}{hint}", file=sys.stderr)
        return EXIT_INVALID
    evals = store.series(row.run_id).eval_rows()
    if args.json:
        print(json.dumps({"run": row.__dict__, "evals": evals}, indent=2, default=str))
        return EXIT_OK
    console = _console()
    console.print(f"[bold]{row.run_id}[/]  {escape(f'{row.preset} / {row.variant}')} (seed {row.seed})  "
                  f"{escape(f'[{row.status}] {row.reason}')}")
    recipe = row.spec.get("recipe", {})
    at_default = 0
    for section in ("data", "model", "train"):
        shown, rest = recipe_fields_shown(section, recipe.get(section, {}))
        at_default += rest
        console.print(f"[bold]{section}[/]: " + escape(", ".join(f"{k}={v}" for k, v in shown.items())))
    if at_default:
        console.print(f"[dim]the other {at_default} fields are at their defaults (--json lists every field)[/]")
    table = Table(title="evaluations")
    keys = ["step", "epoch", "train_loss", "val_loss", "train_acc", "val_acc"]
    for k in keys:
        table.add_column(k, justify="right")
    stride = max(1, len(evals) // 15)
    for e in evals[::stride] + ([evals[-1]] if evals and (len(evals) - 1) % stride else []):
        table.add_row(*[_eval_cell(k, e.get(k)) for k in keys])
    console.print(table)
    console.print("final: " + ", ".join(f"{k}={_eval_cell(k, v)}" for k, v in row.final.items()
                                        if isinstance(v, float)))
    console.print("curves: " + diagnose(evals, row.status, row.reason).text)
    return EXIT_OK


def cmd_app(args: argparse.Namespace | None) -> int:
    from tui_lab.app import run_app

    if args is not None and getattr(args, "command", None) == "open":
        return run_app(open_preset=args.preset, quick=args.quick, seeds=args.seeds, device=args.device)
    return run_app()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "presets": cmd_presets,
    "list": cmd_presets,  # an alias people try first
    "run": lambda a: _run(a, check=False),
    "check": lambda a: _run(a, check=True),
    "runs": cmd_runs,
    "show": cmd_show,
    "open": cmd_app,
}


def _invalid(exc: Exception) -> str:
    """The message of an invalid-input error. A pydantic ValidationError (a setting no option check
    caught) reads as its fields and problems, without pydantic's own header and links."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return str(exc)
    parts = [f"{'.'.join(map(str, e.get('loc', ()))) or 'value'}: {e.get('msg', '')}" for e in errors()]
    return "invalid setting: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    from engine.catalogue.presets import PresetError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return cmd_app(None)
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        return args.func(args)
    except PresetError as exc:
        print(f"dllab: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (ValueError, FileNotFoundError) as exc:
        print(f"dllab: {_invalid(exc)}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("dllab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `dllab ... | head`: the reader left; say nothing more, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
