"""`dllab critical`: find a tiny net's critical points and label them from the Hessian."""

from __future__ import annotations

import argparse
import json
import sys

NETS_HELP = "chain2: y = w2·w1·x (the notes' 1-1-1 net); chain3: y = w3·w2·w1·x; tanh_121: a 1-2-1 tanh net"



def register(subparsers) -> None:
    from tui_lab.commands.args import integer, non_negative_int, positive_float, positive_int
    from tui_lab.tools.critical import MAX_STARTS

    p = subparsers.add_parser(
        "critical",
        help="find the critical points of a tiny net's loss and label them (minimum, saddle, ...)",
        description="Drive many random starts to a vanishing gradient, merge duplicates, and label each point "
                    "from its Hessian's eigenvalues (torch.func.hessian, float64). At a saddle, take a step "
                    "along the negative-curvature eigenvector and show the loss going down. " + NETS_HELP,
    )
    p.add_argument("net", nargs="?", default="chain2", help="chain2 (default), chain3 or tanh_121")
    p.add_argument("--starts", type=integer(1, MAX_STARTS), default=48,
                   help=f"random starts, 1 to {MAX_STARTS} (default 48)")
    p.add_argument("--box", type=positive_float, default=2.0,
                   help="starts are uniform in [-box, box]^n; a finite number above 0 (default 2)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--step", type=positive_float, default=1.0,
                   help="length of the escape step at a saddle; a finite number above 0 (default 1)")
    p.add_argument("--rows", type=positive_int, default=10, help="points shown per kind, 1 or more (default 10)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _vec(v) -> str:
    return "(" + ", ".join(f"{0.0 if abs(x) < 5e-13 else x:.4g}" for x in v) + ")"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.diagnostics.critical import TINY_NETS
    from tui_lab.tools.critical import REF_NOTE, explore, found_words, starts_cell

    if args.net not in TINY_NETS:
        print(f"dllab: unknown net {args.net!r}; choose one of {', '.join(TINY_NETS)}", file=sys.stderr)
        return 2
    report = explore(args.net, starts=args.starts, box=args.box, seed=args.seed, step=args.step)
    net, points, known, escape, ok = report.net, report.points, report.known, report.escape, report.ok

    if args.json:
        print(json.dumps({
            "net": net.name, "description": net.description, "parameters": list(net.names),
            "points": [p.__dict__ for p in points],
            "known": [{"point": list(cp.point), "expected": e, "kind": cp.kind, "eigenvalues": list(cp.eigenvalues)}
                      for cp, e in known],
            "escape": escape, "ok": ok,
            "starts": report.search.n_starts, "dropped": report.search.dropped,
        }, indent=2))
        return 0 if ok else 1

    console = Console(highlight=False)
    console.print(f"[bold]{net.name}[/]: {net.description}   parameters ({', '.join(net.names)})")
    console.print(f"{args.starts} random starts in [−{args.box:g}, {args.box:g}]^{net.dim} (seed {args.seed}), "
                  "each driven to ‖∇L‖ ≈ 0; Hessian eigenvalues by torch.func.hessian in float64")
    search = report.search
    console.print(f"[{'yellow' if search.n_dropped else 'dim'}]{search.summary()}[/]")
    style = {"minimum": "green", "saddle": "yellow", "maximum": "red", "degenerate": "cyan"}
    table = Table(title=f"critical points found ({found_words(search)})")
    for col in ("kind", "point", "loss", "‖∇L‖", "Hessian eigenvalues", "starts"):
        table.add_column(col, justify="right" if col in ("loss", "‖∇L‖", "starts") else "left")
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for p in points:
        if shown.get(p.kind, 0) >= args.rows:
            hidden[p.kind] = hidden.get(p.kind, 0) + 1
            continue
        shown[p.kind] = shown.get(p.kind, 0) + 1
        table.add_row(f"[{style[p.kind]}]{p.kind}[/]", _vec(p.point), _fmt(p.loss), f"{p.grad_norm:.1e}",
                      _vec(p.eigenvalues), starts_cell(p))
    console.print(table)
    if any(p.reference for p in points):
        console.print(f"  {REF_NOTE}")
    for kind, n in hidden.items():
        console.print(f"  … and {n} more {kind} point(s) not shown (--rows)")
    degenerate = [p for p in points if p.kind == "degenerate"]
    if degenerate:
        losses = sorted({round(p.loss, 9) for p in degenerate})
        lowest = min(p.loss for p in points)
        flat_minima = [p for p in degenerate if min(p.eigenvalues) > -1e-6 and p.loss <= lowest + 1e-9]
        console.print(f"[cyan]degenerate[/]: {len(degenerate)} point(s) with an eigenvalue ≈ 0, so the second-order "
                      f"test cannot tell; their losses: {', '.join(_fmt(x) for x in losses[:5])}"
                      f"{' …' if len(losses) > 5 else ''}.")
        if len(flat_minima) > 1:
            console.print(f"  {len(flat_minima)} of them sit at the lowest loss found ({_fmt(lowest)}) with no negative "
                          "eigenvalue: minima, but not isolated ones: a connected set (curve or surface) of minima, "
                          "flat along the zero-eigenvalue direction.")
    check = Table(title="reference points")
    for col in ("point", "expected", "measured", "Hessian eigenvalues", ""):
        check.add_column(col)
    for cp, expected in known:
        mark = "[green]✓[/]" if cp.kind == expected else "[red]✗[/]"
        check.add_row(_vec(cp.point), expected, cp.kind, _vec(cp.eigenvalues), mark)
    console.print(check)
    if escape is not None:
        console.print(
            f"[yellow]escape[/]: at the saddle {_vec(escape['from'])} a step of length {args.step:g} along the "
            f"negative-curvature eigenvector {_vec(escape['direction'])} moves to {_vec(escape['to'])}: "
            f"loss {_fmt(escape['loss_before'])} → [bold]{_fmt(escape['loss_after'])}[/]"
        )
    else:
        console.print("no saddle found: nothing to escape from")
    return 0 if ok else 1
