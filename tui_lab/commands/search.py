"""`dllab search`: grid or random hyperparameter search over fields of a preset's recipe."""

from __future__ import annotations

import argparse
import difflib
import json
import math


def register(subparsers) -> None:
    from tui_lab.commands.args import non_negative_int, positive_int, seeds, workers

    p = subparsers.add_parser(
        "search",
        help="grid / random hyperparameter search (log scales, coarse-to-fine) over a preset's recipe",
        description="Varies named fields of a variant's recipe over ranges and trains one run per point (runs go "
                    "to the run store), then prints the points sorted by score and a scatter of the score against "
                    "each field. Example: dllab search optimizers --field train.lr=1e-4:1:log "
                    "--field train.weight_decay=1e-6:1e-2:log --budget 16 --method random --refine 1. "
                    "A preset with a [search] table (hparam-search) runs its own comparison when no --field is "
                    "given, and its claims are checked.",
    )
    p.add_argument("preset", help="a catalogue id or a path to a preset TOML file")
    p.add_argument("--field", action="append", default=[], metavar="SECTION.NAME=LOW:HIGH[:log|linear]",
                   help="a field to search (repeat for several)")
    p.add_argument("--budget", type=positive_int, default=16, help="runs in all, 1 or more (default 16)")
    p.add_argument("--method", choices=["grid", "random"], default="random")
    p.add_argument("--refine", type=non_negative_int, default=0,
                   help="coarse-to-fine rounds after the first, 0 or more (default 0)")
    p.add_argument("--score", default="val_loss", help="metric to rank by (default val_loss; losses are minimized)")
    p.add_argument("--variant", help="the variant whose recipe is the base (default: the first)")
    p.add_argument("--quick", action="store_true", help="use the preset's quick form (short runs)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="run seed of every trial, and the search's own seed")
    p.add_argument("--seeds", type=seeds, help="[search] presets: comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=workers, help="worker processes for each round (default: train in this process, which is faster for short runs)")
    p.add_argument("--sort", default="score",
                   help="sort the table by score (best first) or by a searched field (e.g. train.lr)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _check_store() -> None:
    """A run store that cannot be written: a StoreError (exit 2) before anything is printed or trained."""
    from engine.runs.store import RunStore

    with RunStore() as store:
        store.check(write=True)


def _executor(args: argparse.Namespace, console):
    from engine.catalogue.search import runner_executor, stored_inline_executor

    if not args.workers:  # default and 0: in this process. A round is a handful of short runs:
        # starting worker processes for each round cost more than the runs (45 s against 7 s for
        # hparam-search --quick on 2 cores); --workers N asks for worker processes
        return stored_inline_executor(device=args.device)
    return runner_executor(device=args.device, workers=args.workers)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from engine.catalogue.presets import load_preset
    from engine.catalogue.search import SearchField, run_search
    from tui_lab.tools.specs import pick_spec

    torch.set_num_threads(1)
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    loaded = load_preset(args.preset)
    _check_store()
    if not args.field:
        if loaded.preset.search is None:
            raise ValueError("give at least one --field SECTION.NAME=LOW:HIGH[:log|linear] "
                             f"({loaded.id} has no [search] table of its own)")
        if args.sort != "score":
            raise ValueError(f"--sort orders the table of a --field search; {loaded.id}'s own search "
                             "prints the best point of each search instead")
        return _run_preset(loaded, args, console, err)
    fields = [SearchField.parse(text) for text in args.field]
    _, base = pick_spec(args.preset, args.variant, args.quick, args.seed)
    check_score(args.score, base)
    check_sort(args.sort, fields, args.score)
    err.print(f"searching {', '.join(f.describe() for f in fields)}: {args.method}, budget {args.budget}"
              + (f", {args.refine} refine round(s)" if args.refine else ""))

    def on_round(rnd: int, trials) -> None:
        best = min((t.score for t in trials if not math.isnan(t.score)), default=math.nan)
        err.print(f"  round {rnd + 1}: {len(trials)} runs, best {args.score} {best:.4g}")

    result = run_search(base, fields, budget=args.budget, method=args.method, refine=args.refine,
                        score=args.score, seed=args.seed, executor=_executor(args, err), on_round=on_round)
    if args.json:
        print(json.dumps({"preset": loaded.id, "variant": base.variant, **result.as_dict()}, indent=2, default=str))
        return 0 if result.best is not None else 1
    print_search(result, console, sort="score" if args.sort == args.score else args.sort)
    return 0 if result.best is not None else 1


def check_score(score: str, base) -> None:
    """A ValueError (exit 2) before any training when runs like `base` never report `score`."""
    from engine.catalogue.metric_names import run_kind, unknown_metric

    kind = run_kind(base)
    if problem := unknown_metric(score, kind, numeric=True):
        raise ValueError(f"--score: {problem}")


def check_sort(sort: str, fields, score: str) -> None:
    """A ValueError (exit 2) before any training when --sort names nothing the table has."""
    allowed = ["score", *(f.path for f in fields)]
    if sort in allowed or sort == score:
        return
    close = difflib.get_close_matches(sort, allowed, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"--sort {sort!r} is not a field this search varies; {hint}"
                     f"sort by {', '.join(allowed)}")


def results_table(result, sort: str = "score"):
    """A rich table of the trials, best first (or sorted by a field)."""
    from rich.table import Table

    table = Table(title=f"{result.method} search: {len(result.trials)} runs, score = {result.score} "
                        f"({'lower' if result.minimize else 'higher'} is better)")
    table.add_column("#", justify="right")
    table.add_column("round", justify="right")
    for f in result.fields:
        table.add_column(f.path, justify="right")
    table.add_column(result.score, justify="right")
    table.add_column("status")
    table.add_column("run")
    best = result.best
    for t in result.ranked(sort):
        mark = "bold green" if best is not None and t is best else ""
        table.add_row(str(t.index + 1), str(t.round + 1), *[f"{t.params[f.path]:.3g}" for f in result.fields],
                      f"{t.score:.4g}", t.status, t.run_id, style=mark)
    return table


def print_search(result, console, sort: str = "score") -> None:
    from tui_lab.widgets.text_chart import ansi_text, chart

    console.print(results_table(result, sort))
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")
    best = result.best
    if best is None:
        console.print("[red]no run finished[/]")
        return
    params = ", ".join(f"{k} = {v:.3g}" for k, v in best.params.items())
    console.print(f"[bold]best: {params}[/] → {result.score} {best.score:.4g} (run {best.run_id})")
    for f in result.fields:
        points = result.scatter(f.path)
        if len(points) >= 2:
            xs, ys = zip(*points, strict=True)
            console.print(ansi_text(chart([(f.path, xs, ys)], kind="scatter", log_x=f.scale == "log",
                                title=f"{result.score} against {f.path}", xlabel=f.path, height=14,
                                color=console.is_terminal)))


def _run_preset(loaded, args: argparse.Namespace, console, err) -> int:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from engine.catalogue.claims import check_claims
    from engine.catalogue.search import run_search_preset
    from tui_lab.data.fmt import clean
    from tui_lab.headless import claims_view

    _check_store()
    seeds = args.seeds or None

    def progress(variant: str, seed: int, rep: int, res) -> None:
        err.print(f"  {escape(clean(variant))} (seed {seed}, search {rep + 1}): best {res.score} {res.best_score:.4g}")

    outcomes, results = run_search_preset(loaded, quick=args.quick, seeds=seeds,
                                          executor=_executor(args, err), progress=progress)
    claims = check_claims(loaded.preset.claims, outcomes)
    if args.json:
        print(json.dumps({
            "preset": loaded.id,
            "outcomes": [{"variant": o.variant, "seed": o.seed, "final": o.final} for o in outcomes],
            "searches": {f"{v}|{s}": [r.as_dict() for r in rs] for (v, s), rs in results.items()},
            "claims": [c.as_dict() for c in claims],
        }, indent=2, default=str))
        return 0 if all(c.holds for c in claims) else 1
    settings = loaded.preset.search
    table = Table(title=escape(clean(f"{loaded.preset.title}: best {settings.score} per search "
                                     f"({settings.budget} runs each)")))
    fields = [f.field for f in settings.fields]
    for col in ("variant", "seed", "best score", *[f"best {f}" for f in fields]):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for o in outcomes:
        table.add_row(Text(clean(o.variant)), str(o.seed), f"{o.final['best_score']:.4g}",
                      *[f"{o.final.get('best.' + f, math.nan):.3g}" for f in fields])
    console.print(table)
    first = next(iter(results.values()))[0]
    lr_field = first.fields[0]
    from tui_lab.widgets.text_chart import ansi_text, chart

    series = []
    for (variant, _seed), runs in results.items():
        pts = [p for r in runs for p in r.scatter(lr_field.path)]
        if pts:
            xs, ys = zip(*pts, strict=True)
            series.append((variant, xs, ys))
    if series:
        console.print(ansi_text(chart(series, kind="scatter", log_x=lr_field.scale == "log",
                            title=f"{settings.score} of every run against {lr_field.path}", xlabel=lr_field.path,
                            height=16, color=console.is_terminal)))
    console.print("[bold]Claims[/]")
    console.print(claims_view(claims))
    return 0 if all(c.holds for c in claims) else 1


def run_search_comparison(loaded, args: argparse.Namespace) -> int:
    """`dllab run` / `dllab check` of a preset with a [search] table: the same as `dllab search`."""
    from rich.console import Console

    seeds = getattr(args, "seeds", None)
    ns = argparse.Namespace(quick=args.quick, seeds=seeds or None,
                            device=args.device, workers=getattr(args, "workers", None), json=args.json)
    return _run_preset(loaded, ns, Console(highlight=False), Console(stderr=True, highlight=False))
