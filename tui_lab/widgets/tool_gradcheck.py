"""The gradient check in the app: backprop against centred differences, per parameter tensor, with
the thresholds. The specs and the check are ``dllab gradcheck``'s own (``check_specs`` /
``check_all``): by default the demo, a small tanh MLP with a hand-written linear layer checked
once with a correct backward and once with a deliberately broken one (the bias gradient averaged
instead of summed), which the check must single out."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Select, Static

from tui_lab.data import fmt
from tui_lab.tools.limits import LIMIT
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.fitted_table import FittedTable
from tui_lab.widgets.tool_view import ToolView, field_row, number

DEMO = "demo"
"""The preset menu's first entry: the hand-written layer demo (no preset)."""
ALL = "*"
STATUS_STYLE = {"pass": "$success", "warn": "$warning", "fail": "$error"}
COLUMNS = (("tensor", "tensor", 0), ("rel", "rel. error", 10), ("verdict", "verdict", 0), ("shape", "shape", 0),
           ("checked", "checked", 0), ("worst", "worst entry", 0))
"""(key, label, least width) of a result's table."""
GIVE_WAY = ((("worst",), None), (("shape",), None), (("checked",), None), (("tensor",), 12))
"""When the pane is narrow (80 columns): the details go, then the tensor names are cut in the middle;
the relative error and the verdict ("PASS ≤ 1e-7") stay whole."""


class GradcheckView(ToolView):
    tool = "gradcheck"
    uses_quick = False
    help = ("Backprop against centred differences in float64, per tensor: ≤ 1e-7 correct, ≤ 1e-4 fine "
            "with kinks, ≤ 1e-2 uncomfortable, above: wrong. The demo breaks a layer on purpose.")

    def settings(self) -> Iterable[Widget]:
        yield field_row("layer", Select([("as the spec says", ""), ("none", "none"), ("custom", "custom"),
                                         ("broken", "broken")], value="", allow_blank=False, compact=True,
                                        id="gradcheck-layer"),
                        "replace the first linear layer by a hand-written one (correct or broken backward)")
        yield field_row("dtype", Select([("float64", "float64"), ("float32", "float32")], value="float64",
                                        allow_blank=False, compact=True, id="gradcheck-dtype"))
        yield field_row("entries", FieldInput("200", compact=True, id="gradcheck-entries"), "entries checked per tensor")
        yield field_row("seed", FieldInput("0", compact=True, id="gradcheck-seed"))

    def result(self) -> Iterable[Widget]:
        yield VerticalScroll(id="gradcheck-results")

    def preset_options(self) -> list[tuple[str | Text, str]]:
        return [("demo: hand-written layer", DEMO), *super().preset_options()]

    def set_presets(self, presets: list[Any], selected: Any = None, *, saved: Collection[Path] = ()) -> None:
        super().set_presets(presets, selected, saved=saved)
        if selected is None:
            with self.prevent(Select.Changed):
                self.query_one("#gradcheck-preset", Select).value = DEMO
            self.preset_changed()

    def variant_options(self, loaded: Any) -> list[tuple[str | Text, str]]:
        return [("every variant", ALL), *super().variant_options(loaded)]

    def preset_changed(self) -> None:
        if self.choice("preset") == DEMO:
            variant = self.query_one("#gradcheck-variant", Select)
            with self.prevent(Select.Changed):
                variant.set_options([("correct and broken", ALL)])
                variant.value = ALL
            return
        super().preset_changed()

    def collect(self) -> dict[str, Any]:
        demo = self.choice("preset") == DEMO
        loaded = None if demo else self.loaded
        if not demo and loaded is None:
            raise ValueError("choose a preset first")
        variant = self.choice("variant")
        return {
            "preset": None if loaded is None else str(loaded.path),
            "variant": None if variant in (None, ALL) else variant,
            "layer": self.choice("layer") or None,
            "dtype": self.choice("dtype") or None,
            "max_elements": number(self.text("entries"), "entries", kind=int, low=1, high=LIMIT),
            "seed": number(self.text("seed"), "seed", kind=int, low=0),
        }

    def work(self, params: dict[str, Any]) -> list[tuple[Any, Any, str | None]]:
        from tui_lab.tools.gradcheck import check_all, check_specs

        specs = check_specs(params["preset"], params["variant"], seed=params["seed"], layer=params["layer"],
                            dtype=params["dtype"], max_elements=params["max_elements"])
        return check_all(specs)

    async def _show(self, results: list[tuple[Any, Any, str | None]]) -> None:
        from engine.checks.gradcheck import THRESHOLDS
        from tui_lab.tools.gradcheck import result_notes, unexpected

        box = self.query_one("#gradcheck-results", VerticalScroll)
        await box.remove_children()
        widgets: list[Widget] = []
        for i, (spec, result, replaced) in enumerate(results):
            m, t = spec.recipe.model, spec.recipe.train
            bad = unexpected(spec, result)
            if t.gradcheck_layer == "broken":
                head = ("[b $success]✔ the broken layer is caught[/]" if result.count("fail")
                        else "[b $error]✘ the broken layer was NOT caught[/]")
            elif bad:
                head = "[b $error]✘ a gradient is wrong[/]"
            elif result.count("warn"):
                head = "[b $warning]! uncomfortable[/]"
            else:
                head = "[b $success]✔ every tensor passes[/]"
            widgets.append(Static(Content.from_markup(
                f"[b]$v[/]  {head}\n[$text-muted]$desc[/]", v=fmt.clean(spec.variant),
                desc=f"{m.kind} {m.hidden_sizes} {m.activation}, {spec.recipe.data.name}, {result.dtype}, "
                     f"h = {result.h:g}, loss {result.loss:.4g}"), classes="tool-summary"))
            table = FittedTable(COLUMNS, names={"tensor": "."}, give_way=GIVE_WAY, id=f"gradcheck-table-{i}",
                                cursor_type="row", zebra_stripes=True, classes="gradcheck-table")
            widgets.append(table)
            notes = result_notes(result, replaced, t.gradcheck_layer)
            if notes:
                widgets.append(Static(Content("\n".join(notes)), classes="tool-note"))
        widgets.append(Static(Content.from_markup(
            "[$text-muted]thresholds (relative error ‖a − n‖ / max(‖a‖, ‖n‖) per tensor): $t[/]",
            t="; ".join(words for _, words in THRESHOLDS)), classes="tool-note"))
        await box.mount_all(widgets)
        for i, (_spec, result, replaced) in enumerate(results):
            rows = []
            for tc in result.tensors:
                style = STATUS_STYLE.get(tc.status, "$text")
                star = " *" if replaced and tc.name.startswith(replaced + ".") else ""
                rows.append((tc.name, {
                    "tensor": tc.name + star, "rel": Content.from_markup(f"[{style}]$r[/]", r=f"{tc.rel_error:.1e}"),
                    "verdict": Content.from_markup(f"[b {style}]$s[/] $w", s=tc.status.upper(), w=tc.words),
                    "shape": Text("×".join(map(str, tc.shape))), "checked": Text(f"{tc.n_checked}/{tc.n_total}"),
                    "worst": Text(f"{tc.max_entry_rel:.0e}"),
                }))
            box.query_one(f"#gradcheck-table-{i}", FittedTable).set_rows(rows)

    def show(self, result: list[tuple[Any, Any, str | None]]) -> None:
        self.call_later(self._show, result)
