"""Hyperparameter search in the app: ``engine.catalogue.search.run_search`` over fields of a variant's recipe
(as ``dllab search PRESET --field ...`` runs it: trials in worker processes, every one in the run
store), with the results as a sortable table (click a header or press o) and a scatter of the
score against a chosen field. A preset with a ``[search]`` table fills the settings with its own."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static
from textual.worker import get_current_worker

from tui_lab.data import fmt
from tui_lab.data.tools import parse_fields, sorted_trials
from tui_lab.search_bridge import SearchCancelled, default_executor
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.scatter_plot import ScatterData, ScatterPlot
from tui_lab.widgets.tool_lr_find import is_network_preset
from tui_lab.widgets.tool_view import ToolView, field_row, number

SCORES = ("val_loss", "val_acc", "train_loss", "train_acc", "test_loss", "test_acc", "gap")

make_executor = default_executor
"""``make_executor(on_event=..., device=..., store=..., comparison=..., should_stop=...)``: how the
trials are trained (in this worker thread, batched where they can be, by default)."""


class SearchToolView(ToolView):
    tool = "search"
    help = ("Random or grid search over fields of the recipe (log scales for rates and penalties), "
            "optionally narrowed coarse-to-fine; one run per point, all kept in the History.")
    BINDINGS = [Binding("o", "cycle_sort", "Sort")]

    class Progress(Message):
        """Trials finished so far (posted from the search's thread)."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sort_key = "score"
        self.sort_desc = False
        self.search: Any = None

    def settings(self) -> Iterable[Widget]:
        yield field_row("fields", FieldInput("train.lr=1e-4:1:log", compact=True, id="search-fields"),
                        "section.name=low:high[:log|linear], several separated by ;")
        yield field_row("budget", FieldInput("8", compact=True, id="search-budget"), "runs in all (every round together)")
        yield field_row("method", Select([("random", "random"), ("grid", "grid")], value="random", allow_blank=False,
                                         compact=True, id="search-method"))
        yield field_row("refine", FieldInput("0", compact=True, id="search-refine"), "coarse-to-fine rounds after the first")
        yield field_row("score", Select([(s, s) for s in SCORES], value="val_loss", allow_blank=False, compact=True,
                                        id="search-score"), "losses and gaps are minimized, the rest maximized")
        yield field_row("seed", FieldInput("0", compact=True, id="search-seed"), "every trial's run seed and the search's own")

    def result(self) -> Iterable[Widget]:
        yield Static("", id="search-summary", classes="tool-summary")
        yield DataTable(id="search-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="field-row tool-row", id="search-against-row"):
            yield Label("against", classes="tool-label")
            yield Select([], allow_blank=True, compact=True, id="search-against")
        yield ScatterPlot(id="search-plot")

    def accepts(self, loaded: Any) -> bool:
        return is_network_preset(loaded)

    # -- settings ---------------------------------------------------------------------------

    def preset_changed(self) -> None:
        super().preset_changed()
        self._prefill()

    @on(Select.Changed, "#search-variant")
    def _variant_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._prefill()

    def _prefill(self) -> None:
        """A preset with a [search] table: its fields, budget, method, refinement and score."""
        loaded = self.loaded
        if loaded is None or loaded.preset.search is None:
            return
        variant = next((v for v in loaded.preset.variants if v.name == self.choice("variant")),
                       loaded.preset.variants[0])
        s = loaded.preset.search_settings(variant)
        with self.prevent(Input.Changed, Select.Changed):
            self.query_one("#search-fields", Input).value = "; ".join(
                f"{f.field}={f.low:g}:{f.high:g}:{f.scale}" for f in s.fields)
            self.query_one("#search-budget", Input).value = str(s.budget)
            self.query_one("#search-method", Select).value = s.method
            self.query_one("#search-refine", Input).value = str(s.refine)
            if s.score in SCORES:
                self.query_one("#search-score", Select).value = s.score

    def collect(self) -> dict[str, Any]:
        params = self.common()
        fields = parse_fields(self.text("fields"))
        budget = number(self.text("budget"), "budget", kind=int, low=1, high=10_000)
        refine = number(self.text("refine"), "refine", kind=int, low=0, high=20)
        if budget < refine + 1:
            raise ValueError(f"a budget of {budget} cannot cover {refine + 1} rounds")
        params.update(fields=fields, budget=budget, refine=refine, method=self.choice("method") or "random",
                      score=self.choice("score") or "val_loss", seed=number(self.text("seed"), "seed", kind=int, low=0),
                      store=getattr(self.app, "store", None))
        return params

    # -- running ----------------------------------------------------------------------------

    def work(self, params: dict[str, Any]) -> tuple[Any, Any, Any]:
        from engine.catalogue.search import run_search
        from engine.events import RunFinished
        from tui_lab.tools.specs import pick_spec

        worker = get_current_worker()
        loaded, base = pick_spec(str(params["loaded"].path), params["variant"], params["quick"], params["seed"])
        budget = params["budget"]
        done = [0]

        def on_event(event: Any) -> None:
            if isinstance(event, RunFinished):
                done[0] += 1
                self.post_message(self.Progress(done[0], budget))

        def cancelled() -> bool:
            return worker.is_cancelled

        train_round = make_executor(on_event=on_event, device=params["device"], store=params["store"],
                                    comparison=uuid.uuid4().hex[:8], should_stop=cancelled)

        def executor(specs: list[Any]) -> list[Any]:
            if cancelled():  # stopped: no further round (the running one's trials stop at their next step)
                raise SearchCancelled
            return train_round(specs)

        result = run_search(base, params["fields"], budget=budget, method=params["method"], refine=params["refine"],
                            score=params["score"], seed=params["seed"], executor=executor)
        return params["loaded"], base, result

    def on_search_tool_view_progress(self, event: SearchToolView.Progress) -> None:
        if self.running:
            self.set_status("[$accent]running… $d of $t runs[/] [$text-muted](ctrl+r stops)[/]",
                            d=str(event.done), t=str(event.total))

    def _tick(self) -> None:
        pass  # the progress messages say how far it is

    def show(self, result: tuple[Any, Any, Any]) -> None:
        loaded, base, search = result
        self.search = search
        self.sort_key, self.sort_desc = "score", not search.minimize
        against = self.query_one("#search-against", Select)
        with self.prevent(Select.Changed):
            against.set_options([(f.path, f.path) for f in search.fields])
            against.value = search.fields[0].path
        best = search.best
        if best is None:
            line = Content.from_markup("[b $error]no run finished[/]")
        else:
            params = ", ".join(f"{k} = {v:.3g}" for k, v in best.params.items())
            line = Content.from_markup("[b $success]best: $p[/] → $s $b", p=params, s=search.score,
                                       b=fmt.num(best.score, 4))
        notes = [Content.from_markup("\n[$warning]$n[/]", n=fmt.clean(n)) for n in search.notes]
        # the values go in as $variables: a name with brackets is shown as written, never read as markup
        head = Content.from_markup(
            "[b]$id / $v[/]: $m search, $n runs, score $s ([$text-muted]$dir is better[/])\n",
            id=fmt.clean(loaded.id), v=fmt.clean(base.variant), m=search.method, n=str(len(search.trials)),
            s=search.score, dir="lower" if search.minimize else "higher")
        self.query_one("#search-summary", Static).update(Content("").join([head, line, *notes]))
        self._fill_table()
        self._plot()

    def _fill_table(self) -> None:
        search = self.search
        table = self.query_one("#search-table", DataTable)
        table.clear(columns=True)
        arrow = " ▼" if self.sort_desc else " ▲"
        columns = [("#", "#"), ("round", "round"), *[(f.path, f.path) for f in search.fields], ("score", search.score),
                   ("status", "status")]
        for key, label in columns:
            table.add_column(label + (arrow if key == self.sort_key else ""), key=key)
        best = search.best
        for t in sorted_trials(search.trials, self.sort_key, descending=self.sort_desc):
            style = "b $success" if best is not None and t is best else ""
            cells = [str(t.index + 1), str(t.round + 1), *[f"{t.params[f.path]:.3g}" for f in search.fields],
                     fmt.num(t.score, 4) if not math.isnan(t.score) else "–", t.status]
            if style:
                cells = [Content.from_markup(f"[{style}]$c[/]", c=c) for c in cells]
            table.add_row(*cells, key=str(t.index))

    def _plot(self) -> None:
        search = self.search
        if search is None:
            return
        path = self.choice("against") or search.fields[0].path
        f = next((f for f in search.fields if f.path == path), search.fields[0])
        points = search.scatter(f.path)
        best = search.best
        self.query_one(ScatterPlot).show(ScatterData(
            series=[(search.score, [p[0] for p in points], [p[1] for p in points])], log_x=f.scale == "log",
            title=f"{search.score} against {f.path}", xlabel=f.path,
            best=(best.params[f.path], best.score) if best is not None else None))

    @on(Select.Changed, "#search-against")
    def _against_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._plot()

    @on(DataTable.HeaderSelected, "#search-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def sort_by(self, key: str) -> None:
        """Sort the table by a column (the same column again: the other direction)."""
        if self.search is None:
            return
        if key == self.sort_key:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_key = key
            self.sort_desc = key == "score" and not self.search.minimize
        self._fill_table()

    def action_cycle_sort(self) -> None:
        if self.search is None:
            return
        keys = ["score", *[f.path for f in self.search.fields], "#"]
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key = keys[(i + 1) % len(keys)]
        self.sort_desc = self.sort_key == "score" and not self.search.minimize
        self._fill_table()
