"""The sanity checks in the app: ``engine.checks.sanity.run_sanity`` on a variant's recipe (as
``dllab sanity`` calls it), shown as a pass/fail table with the measured numbers and, below, each
check's full message and advice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from tui_lab.data import fmt
from tui_lab.tools.limits import LIMIT, MIN_SAMPLES
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.fitted_table import FittedTable
from tui_lab.widgets.tool_lr_find import is_network_preset
from tui_lab.widgets.tool_view import ToolView, field_row, number

STATUS_STYLE = {"pass": "$success", "FAIL": "$error", "warn": "$warning", "skipped": "$warning"}
STATUS_MARK = {"pass": "✔ pass", "FAIL": "✘ FAIL", "warn": "! warn", "skipped": "– skipped"}
COLUMNS = (("check", "check", 0), ("result", "result", 9), ("numbers", "measured", 0))
"""(key, label, least width) of the table."""
GIVE_WAY = ((("check",), 16), (("result",), 1), (("check",), 8))
"""When the pane is narrow (80 columns): the checks' names are cut in the middle, then the result
shrinks to its mark (✔ ✘ ! –); the measured numbers stay whole."""


def key_numbers(check: Any) -> str:
    """The one or two numbers that decide a check, for the table."""
    m = check.measured
    if check.name == "initial loss":
        if "expected" in m:
            return f"{fmt.num(m.get('initial_loss'), 4)} vs {fmt.num(m.get('expected'), 4)}"
        return fmt.num(m.get("initial_loss"), 4)
    if check.name == "penalty raises the loss":
        objs = m.get("objectives") or []
        return " < ".join(fmt.num(o, 4) for o in objs[:: max(1, len(objs) - 1)]) if objs else ""
    if check.name == "overfit a tiny subset":
        acc = m.get("train_acc")
        acc_text = f", acc {fmt.pct(acc)}" if isinstance(acc, int | float) else ""
        return f"loss {fmt.num(m.get('train_loss'), 3)}{acc_text}"
    return ""


class SanityView(ToolView):
    tool = "sanity"
    help = ("Checks before a long run: the first loss ≈ ln C, an L2 penalty raises the loss, "
            "the net can memorize a handful of samples.")

    def settings(self) -> Iterable[Widget]:
        yield field_row("seed", FieldInput("0", compact=True, id="sanity-seed"))
        yield field_row("steps", FieldInput("300", compact=True, id="sanity-steps"), "steps of the overfitting check")
        yield field_row("samples", FieldInput("20", compact=True, id="sanity-samples"),
                        "training samples the net must memorize")

    def result(self) -> Iterable[Widget]:
        yield Static("", id="sanity-title", classes="tool-summary")
        yield FittedTable(COLUMNS, names={"check": " "}, give_way=GIVE_WAY, icons=("result",), id="sanity-table",
                          cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="sanity-details"):
            yield Static("", id="sanity-text")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#sanity-table", FittedTable).set_rows([])  # the column heads before a run

    def accepts(self, loaded: Any) -> bool:
        return is_network_preset(loaded)

    def collect(self) -> dict[str, Any]:
        params = self.common()
        params.update(seed=number(self.text("seed"), "seed", kind=int, low=0),
                      steps=number(self.text("steps"), "steps", kind=int, low=1, high=LIMIT),
                      samples=number(self.text("samples"), "samples", kind=int, low=MIN_SAMPLES, high=LIMIT))
        return params

    def work(self, params: dict[str, Any]) -> tuple[Any, Any, list[Any]]:
        from engine.checks.sanity import run_sanity
        from engine.runs.device import resolve_device
        from tui_lab.tools.specs import pick_spec

        loaded, spec = pick_spec(str(params["loaded"].path), params["variant"], params["quick"], params["seed"])
        checks = run_sanity(spec, device=str(resolve_device(params["device"])), overfit_steps=params["steps"],
                            n_samples=params["samples"])
        return params["loaded"], spec, checks

    def show(self, result: tuple[Any, Any, list[Any]]) -> None:
        loaded, spec, checks = result
        failed, warned = sum(c.failed for c in checks), sum(c.status == "warn" for c in checks)
        if failed:
            verdict = f"[b $error]{failed} check(s) fail[/]"
        elif warned:
            verdict = f"[b $warning]no check fails; {warned} warning(s)[/]"
        else:
            verdict = "[b $success]every check passes[/]"
        self.query_one("#sanity-title", Static).update(Content.from_markup(
            f"[b]$id / $v[/]: {verdict}", id=fmt.clean(loaded.id), v=fmt.clean(spec.variant)))
        rows = []
        for c in checks:
            style = STATUS_STYLE.get(c.status, "$text")
            rows.append((c.name, {"check": c.name, "numbers": Text(key_numbers(c)),
                                  "result": Content.from_markup(f"[b {style}]$s[/]", s=STATUS_MARK.get(c.status, c.status))}))
        self.query_one("#sanity-table", FittedTable).set_rows(rows)
        parts = []
        for c in checks:
            style = STATUS_STYLE.get(c.status, "$text")
            parts.append(Content.from_markup(f"[b {style}]$s[/] [b]$n[/]\n  $m\n", s=STATUS_MARK.get(c.status, c.status),
                                             n=c.name, m=c.message))
            if c.advice:
                parts.append(Content.from_markup("  [$warning]advice:[/] $a\n", a=c.advice))
        self.query_one("#sanity-text", Static).update(Content("").join(parts))
