"""The LR range test in the app: the same engine call as ``dllab lr-find`` (``pick_spec`` +
``engine.diagnostics.lr_find.find_lr``), the curve on a log axis with the suggestion marked, and
"apply to recipe" (``apply_suggestion``), which opens the Builder with that variant's ``train.lr``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Select, Static

from tui_lab.data import fmt
from tui_lab.data.tools import round_lr
from tui_lab.tools.limits import LIMIT
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.lr_curve_plot import LRCurveData, LRCurvePlot
from tui_lab.widgets.tool_view import ToolView, field_row, number


def is_network_preset(loaded: Any) -> bool:
    """A preset whose runs train a network on data (not 2-D surfaces, not gradient checks)."""
    base = loaded.preset.base.as_dict()
    data = base.get("data", {}).get("name")
    train = base.get("train", {})
    return data != "surface" and not train.get("gradcheck", False)


APPLY_TIP = "open the Builder with this variant's train.lr set to the suggestion (a)"


class LRFindView(ToolView):
    tool = "lr"
    help = ("LR range test: train briefly with the learning rate growing from min to max, plot the "
            "smoothed loss, suggest one tenth of the rate at its minimum.")

    def settings(self) -> Iterable[Widget]:
        yield field_row("seed", FieldInput("0", compact=True, id="lr-seed"))
        yield field_row("steps", FieldInput("100", compact=True, id="lr-steps"), "steps of the sweep")
        yield field_row("lr min", FieldInput("1e-5", compact=True, id="lr-min"))
        yield field_row("lr max", FieldInput("10", compact=True, id="lr-max"))
        yield field_row("rule", Select([("min/10", "min/10"), ("steepest", "steepest")], value="min/10",
                                       allow_blank=False, compact=True, id="lr-rule"),
                        "min/10: a tenth of the rate at the minimum; steepest: the steepest descent")

    def buttons(self) -> Iterable[Widget]:
        yield Button("Apply (a)", id="lr-apply", compact=True, disabled=True, tooltip=APPLY_TIP)

    def result(self) -> Iterable[Widget]:
        yield LRCurvePlot(id="lr-plot")
        yield Static("", id="lr-summary", classes="tool-summary")

    def accepts(self, loaded: Any) -> bool:
        return is_network_preset(loaded)

    def collect(self) -> dict[str, Any]:
        params = self.common()
        lo = number(self.text("min"), "lr min", positive=True)
        hi = number(self.text("max"), "lr max", positive=True)
        if not lo < hi:
            raise ValueError(f"lr min ({lo:g}) must be below lr max ({hi:g})")
        params.update(seed=number(self.text("seed"), "seed", kind=int, low=0),
                      steps=number(self.text("steps"), "steps", kind=int, low=2, high=LIMIT),
                      lr_min=lo, lr_max=hi, rule=self.choice("rule") or "min/10")
        return params

    def work(self, params: dict[str, Any]) -> tuple[Any, Any, Any]:
        from engine.diagnostics.lr_find import find_lr
        from engine.runs.device import resolve_device
        from tui_lab.tools.specs import pick_spec

        loaded, spec = pick_spec(str(params["loaded"].path), params["variant"], params["quick"], params["seed"])
        result = find_lr(spec, device=str(resolve_device(params["device"])), lr_min=params["lr_min"],
                         lr_max=params["lr_max"], steps=params["steps"], rule=params["rule"])
        return params["loaded"], spec, result

    def show(self, result: tuple[Any, Any, Any]) -> None:
        loaded, spec, r = result
        self.query_one(LRCurvePlot).show(LRCurveData(
            points=r.display_curve(), marks=[("minimum", r.minimum), ("steepest", r.steepest),
                                             ("suggestion", r.suggestion)]))
        t = spec.recipe.train
        steep = r.steepest_text(lambda v: fmt.num(v, 3))
        self.query_one("#lr-summary", Static).update(Content.from_markup(
            "[b]$id / $v[/] ($opt, batch $bs)\n"
            "[b $success]│ suggested lr $s[/]  [$text-muted]the recipe has $cur[/]\n"
            + ("[b $warning]⚠ $warn[/]\n" if r.warning else "") +
            "[$error]│[/] minimum at $m (loss $best)   [$warning]│[/] steepest descent at $st\n"
            "[$text-muted]$stop · rule $rule · a: apply to the recipe[/]",
            id=fmt.clean(loaded.id), v=fmt.clean(spec.variant), opt=t.optimizer, bs=str(t.batch_size or "full"),
            s=fmt.num(round_lr(r.suggestion), 3), cur=f"{t.lr:g}", m=fmt.num(r.minimum, 3),
            best=fmt.num(r.best_loss, 4), st=steep, stop=r.stopped, rule=r.rule.split(":")[0], warn=r.warning,
        ))
        apply = self.query_one("#lr-apply", Button)
        apply.disabled = False
        apply.tooltip = APPLY_TIP + (f"; careful: {r.warning}" if r.warning else "")

    @property
    def can_apply(self) -> bool:
        return self.result_value is not None

    def apply(self) -> None:
        """Open the Builder on the preset with this variant's lr set to the suggestion (not saved).

        Through the app's `open_in_builder`, which asks first when the Builder has unsaved changes;
        "Learning rate applied" is said once the Builder has taken the recipe (at once when there
        was nothing to lose, after a "yes" otherwise, never after a "no")."""
        if self.result_value is None:
            self.app.notify("run the LR range test first", severity="warning")
            return
        from engine.diagnostics.lr_find import apply_suggestion
        from tui_lab.data.draft import Draft
        from tui_lab.data.tools import draft_with_lr

        loaded, spec, r = self.result_value
        lr = apply_suggestion(spec, round_lr(r.suggestion)).recipe.train.lr
        lr_find = False if getattr(spec.recipe.train, "lr_find", False) else None
        try:
            draft = draft_with_lr(Draft.from_preset(loaded.preset), spec.variant, lr, lr_find=lr_find)
        except KeyError:
            self.app.notify(f"{loaded.id} has no variant {spec.variant!r}", severity="error", markup=False)
            return
        message = (f"train.lr = {lr:g} in variant {spec.variant!r} of {loaded.id}: check it and save (ctrl+s) "
                   "or run (ctrl+r)")
        builder = self.app.builder_screen
        if builder is not None:
            builder.announce_on_load(draft, message, title="Learning rate applied")
        self.app.pending_variant = spec.variant  # the Builder shows this variant
        self.app.open_in_builder(loaded, draft)
        if builder is None:  # no Builder yet: nothing to lose, no question
            self.app.notify(message, title="Learning rate applied", timeout=8, markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "lr-apply":
            event.stop()
            self.apply()
