"""Critical points in the app: ``dllab critical``'s ``explore`` on one of the notes' tiny nets: the
points where the gradient vanishes, their Hessian eigenvalues and labels (minimum, saddle,
maximum, degenerate), the reference points, and the step along negative curvature at a saddle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Select, Static

from tui_lab.tools.critical import MAX_STARTS, REF_NOTE, found_words, starts_cell
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.fitted_table import FittedTable
from tui_lab.widgets.tool_view import ToolView, field_row, number

NETS = (("chain2: y = w2·w1·x", "chain2"), ("chain3: y = w3·w2·w1·x", "chain3"), ("tanh_121: a 1-2-1 tanh net", "tanh_121"))
KIND_STYLE = {"minimum": "$success", "saddle": "$warning", "maximum": "$error", "degenerate": "$accent"}
KIND_MARK = {"minimum": "+", "maximum": "−", "saddle": "±", "degenerate": "0"}
"""A kind in one cell, by the signs of the Hessian's eigenvalues that make it (the column shrinks to it)."""
KIND_LEGEND = ("kind by the Hessian's eigenvalues: + minimum (all > 0) · − maximum (all < 0) · ± saddle (both signs) · "
               "0 degenerate (one ≈ 0)")
"""The note under the points' table: what the marks say (the kind column is only its mark at 80 columns)."""
POINT_COLUMNS = (("kind", "kind", 0), ("point", "point", 0), ("loss", "loss", 0), ("grad", "‖∇L‖", 0),
                 ("eigenvalues", "eigenvalues", 0), ("starts", "starts", 0))
"""(key, label, least width) of the points' table."""
POINT_GIVE_WAY = ((("grad",), None), (("kind",), 1), (("starts",), None))
"""When the pane is narrow (80 columns the eigenvalues were past its edge): ‖∇L‖ goes (every point
found has a vanishing gradient), the kind shrinks to its mark (+ − ± 0), then the starts go; the
point, its loss and its eigenvalues stay whole."""
KNOWN_COLUMNS = (("reference", "reference", 0), ("expected", "expected", 0), ("measured", "measured", 0),
                 ("eigenvalues", "eigenvalues", 0), ("ok", "ok", 2))
KNOWN_GIVE_WAY = ((("expected",), 1), (("measured",), 1))
"""The reference points' table when narrow: the expected kind, then the measured one, shrink to their marks."""
MAX_ROWS = 12
"""Points listed per kind (the rest are counted)."""


def fmt_value(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def fmt_vec(v: Iterable[float]) -> str:
    return "(" + ", ".join(f"{0.0 if abs(x) < 5e-13 else x:.4g}" for x in v) + ")"


def kind_cell(kind: str) -> Content:
    """A point's kind with its mark, in the kind's colour ("± saddle"; "±" where the column shrinks)."""
    mark = KIND_MARK.get(kind, "?")
    return Content.from_markup(f"[b {KIND_STYLE.get(kind, '$text')}]$m $k[/]", m=mark, k=kind)


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
            yield FittedTable(POINT_COLUMNS, give_way=POINT_GIVE_WAY, icons=("kind",), id="critical-points",
                              cursor_type="row", zebra_stripes=True)
            yield Static("", id="critical-note", classes="tool-note")
            yield FittedTable(KNOWN_COLUMNS, give_way=KNOWN_GIVE_WAY, icons=("expected", "measured"),
                              id="critical-known", cursor_type="row", zebra_stripes=True)
            yield Static("", id="critical-escape", classes="tool-summary")

    def on_mount(self) -> None:
        super().on_mount()
        for table in self.query(FittedTable):
            table.set_rows([])  # the column heads before a run

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
        rows = []
        shown: dict[str, int] = {}
        hidden: dict[str, int] = {}
        for i, p in enumerate(report.points):
            if shown.get(p.kind, 0) >= MAX_ROWS:
                hidden[p.kind] = hidden.get(p.kind, 0) + 1
                continue
            shown[p.kind] = shown.get(p.kind, 0) + 1
            rows.append((str(i), {"kind": kind_cell(p.kind), "point": fmt_vec(p.point), "loss": fmt_value(p.loss),
                                  "grad": f"{p.grad_norm:.1e}", "eigenvalues": fmt_vec(p.eigenvalues),
                                  "starts": starts_cell(p)}))
        self.query_one("#critical-points", FittedTable).set_rows(rows)
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
        notes.append(KIND_LEGEND)
        self.query_one("#critical-note", Static).update(Content.from_markup("[$text-muted]$t[/]", t="\n".join(notes)))
        self.query_one("#critical-known", FittedTable).set_rows([
            (str(i), {"reference": fmt_vec(cp.point), "expected": kind_cell(expected), "measured": kind_cell(cp.kind),
                      "eigenvalues": fmt_vec(cp.eigenvalues),
                      "ok": Content.from_markup("[b $success]✔[/]" if cp.kind == expected else "[b $error]✘[/]")})
            for i, (cp, expected) in enumerate(report.known)])
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
