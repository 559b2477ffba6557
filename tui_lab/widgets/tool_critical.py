"""Critical points in the app: ``dllab critical``'s ``explore`` on one of the notes' tiny nets: the
points where the gradient vanishes, their Hessian eigenvalues and labels (minimum, saddle,
maximum, degenerate), the reference points, and the step along negative curvature at a saddle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import DataTable, Select, Static

from tui_lab.tools.critical import MAX_STARTS, REF_NOTE, found_words, starts_cell
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.tool_view import ToolView, field_row, number

NETS = (("chain2: y = w2·w1·x", "chain2"), ("chain3: y = w3·w2·w1·x", "chain3"), ("tanh_121: a 1-2-1 tanh net", "tanh_121"))
KIND_STYLE = {"minimum": "$success", "saddle": "$warning", "maximum": "$error", "degenerate": "$accent"}
MAX_ROWS = 12
"""Points listed per kind (the rest are counted)."""


def fmt_value(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def fmt_vec(v: Iterable[float]) -> str:
    return "(" + ", ".join(f"{0.0 if abs(x) < 5e-13 else x:.4g}" for x in v) + ")"


class CriticalView(ToolView):
    tool = "critical"
    uses_preset = False
    uses_quick = False
    help = ("Drive random starts to a vanishing gradient and label each point from its Hessian's "
            "eigenvalues; at a saddle, step along the negative-curvature direction.")

    def settings(self) -> Iterable[Widget]:
        yield field_row("net", Select(NETS, value="chain2", allow_blank=False, compact=True, id="critical-net"))
        yield field_row("starts", FieldInput("48", compact=True, id="critical-starts"), "random starts")
        yield field_row("box", FieldInput("2", compact=True, id="critical-box"), "starts are uniform in [-box, box]^n")
        yield field_row("seed", FieldInput("0", compact=True, id="critical-seed"))
        yield field_row("step", FieldInput("1", compact=True, id="critical-step"), "length of the escape step at a saddle")

    def result(self) -> Iterable[Widget]:
        with VerticalScroll(id="critical-scroll"):
            yield Static("", id="critical-title", classes="tool-summary")
            yield DataTable(id="critical-points", cursor_type="row", zebra_stripes=True)
            yield Static("", id="critical-note", classes="tool-note")
            yield DataTable(id="critical-known", cursor_type="row", zebra_stripes=True)
            yield Static("", id="critical-escape", classes="tool-summary")

    def on_mount(self) -> None:
        super().on_mount()
        points = self.query_one("#critical-points", DataTable)
        for key in ("kind", "point", "loss", "‖∇L‖", "eigenvalues", "starts"):
            points.add_column(key, key=key, width=10 if key == "kind" else None)
        known = self.query_one("#critical-known", DataTable)
        for key in ("reference", "expected", "measured", "eigenvalues", "ok"):
            known.add_column(key, key=key, width=2 if key == "ok" else None)

    def collect(self) -> dict[str, Any]:
        return {
            "net": self.choice("net") or "chain2",
            "starts": number(self.text("starts"), "starts", kind=int, low=1, high=MAX_STARTS),
            "box": number(self.text("box"), "box", positive=True),
            "seed": number(self.text("seed"), "seed", kind=int, low=0),
            "step": number(self.text("step"), "step", positive=True),
        }

    def work(self, params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        from tui_lab.tools.critical import explore

        return params, explore(params["net"], starts=params["starts"], box=params["box"], seed=params["seed"],
                               step=params["step"])

    def show(self, result: tuple[dict[str, Any], Any]) -> None:
        params, report = result
        net = report.net
        self.query_one("#critical-title", Static).update(Content.from_markup(
            "[b]$n[/]: $d   [$text-muted]parameters ($p)[/]\n"
            "[$text-muted]$s starts uniform in ±$b per parameter (seed $seed); Hessian eigenvalues in "
            "float64; $k[/]\n"
            f"[{'$warning' if report.search.n_dropped else '$text-muted'}]$drop[/]",
            n=net.name, d=net.description, p=", ".join(net.names), s=str(params["starts"]), b=f"{params['box']:g}",
            seed=str(params["seed"]), k=found_words(report.search, " points"), drop=report.search.summary()))
        table = self.query_one("#critical-points", DataTable)
        table.clear()
        shown: dict[str, int] = {}
        hidden: dict[str, int] = {}
        for i, p in enumerate(report.points):
            if shown.get(p.kind, 0) >= MAX_ROWS:
                hidden[p.kind] = hidden.get(p.kind, 0) + 1
                continue
            shown[p.kind] = shown.get(p.kind, 0) + 1
            style = KIND_STYLE.get(p.kind, "$text")
            table.add_row(Content.from_markup(f"[b {style}]$k[/]", k=p.kind), fmt_vec(p.point), fmt_value(p.loss),
                          f"{p.grad_norm:.1e}", fmt_vec(p.eigenvalues), starts_cell(p), key=str(i))
        notes = [f"… and {n} more {kind} point(s)" for kind, n in hidden.items()]
        if any(p.reference for p in report.points):
            notes.append(f"{REF_NOTE}.")
        degenerate = [p for p in report.points if p.kind == "degenerate"]
        if degenerate:
            lowest = min(p.loss for p in report.points)
            flat = [p for p in degenerate if min(p.eigenvalues) > -1e-6 and p.loss <= lowest + 1e-9]
            notes.append(f"degenerate: {len(degenerate)} point(s) with an eigenvalue ≈ 0: the second-order test "
                         "cannot tell.")
            if len(flat) > 1:
                notes.append(f"{len(flat)} of them sit at the lowest loss found ({fmt_value(lowest)}) with no negative "
                             "eigenvalue: minima, but a connected set of them, flat along the zero-eigenvalue direction.")
        self.query_one("#critical-note", Static).update(Content.from_markup("[$text-muted]$t[/]", t="\n".join(notes)))
        known = self.query_one("#critical-known", DataTable)
        known.clear()
        for i, (cp, expected) in enumerate(report.known):
            ok = cp.kind == expected
            known.add_row(fmt_vec(cp.point), expected, cp.kind, fmt_vec(cp.eigenvalues),
                          Content.from_markup("[b $success]✔[/]" if ok else "[b $error]✘[/]"), key=str(i))
        e = report.escape
        if e is None:
            text = Content.from_markup("[$text-muted]no saddle found: nothing to escape from[/]")
        else:
            text = Content.from_markup(
                "[b $warning]escape[/]: at the saddle $f a step of $s along the negative-curvature eigenvector $u "
                "moves to $t: loss $a → [b]$z[/]",
                f=fmt_vec(e["from"]), s=f"{e['step']:g}", u=fmt_vec(e["direction"]), t=fmt_vec(e["to"]),
                a=fmt_value(e["loss_before"]), z=fmt_value(e["loss_after"]))
        self.query_one("#critical-escape", Static).update(text)
