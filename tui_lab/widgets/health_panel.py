"""A run's per-layer health, standalone: feed it Diagnostics events, it shows the latest.

- a table per layer: the update/weight ratio on a log gauge with the healthy band around 1e-3
  marked (and the value coloured: in the band, below it, above it), activation mean and std,
  dead and saturated shares, gradient norm, and the activation and gradient histograms as
  sparklines; the table fits its width (`fit_columns`: the sparklines narrow, then go, then the
  gauge narrows, then goes; numbers are never cut);
- for the highlighted layer, its activation and gradient histograms over time (one row per
  measurement, oldest first, with its step) as character heat maps; a measurement without
  gradients (the one at step 0, before any update) says so on its row;
- the first layer's weights as small character images (when the run sent them: on image data,
  one tile per unit; otherwise units × inputs).

Use::

    panel = HealthPanel(activation="relu", id="health")   # in compose()
    panel.add_diagnostics(event)                          # for every engine.events.Diagnostics
    panel.reset(activation="tanh")                        # another run

``add_diagnostics`` also takes the event as a dict (``to_dict`` / the store's rows: keys
``step``, ``layers``, ``summary``). It keeps up to ``max_history`` measurements per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from tui_lab.data import fmt
from tui_lab.data.health import (
    GRAD_LOG_RANGE,
    RATIO_BAND,
    act_hist_range,
    heat_rows,
    ratio_gauge,
    ratio_state,
    sparkline,
    weight_tiles,
)

GAUGE_WIDTH = 18
"""The gauge's cells at full width (3 per decade)."""
GAUGE_ENDS = ("1e-6", "1")


def gauge_label(width: int) -> str:
    """The gauge column's header at `width` cells: the gauge's own picture (``·`` outside the
    healthy band, ``░`` inside it, cell for cell) with its ends written over it, a space after
    "1e-6" and before "1" where the band is not."""
    cells = list(ratio_gauge(None, width))
    left, right = GAUGE_ENDS
    if width < len(left) + len(right) + 2:
        return "".join(cells)
    cells[:len(left)] = left
    cells[width - len(right):] = right
    for i in (len(left), width - len(right) - 1):
        if cells[i] == "·":
            cells[i] = " "
    return "".join(cells)


COLUMNS = (
    ("layer", "layer"),
    ("ratio", "update/weight"),
    ("gauge", gauge_label(GAUGE_WIDTH)),
    ("act_mean", "act mean"),
    ("act_std", "act std"),
    ("dead", "dead"),
    ("saturated", "saturated"),
    ("grad_norm", "grad norm"),
    ("act_hist", "activations"),
    ("grad_hist", "log10 |grad|"),
)
NARROW_GAUGE = (gauge_label(12), 12)
"""The gauge's label and width when the table is narrow (2 cells per decade)."""
HIST_WIDTH = 24
"""A sparkline's cells at full width (one per bin of the engine's histograms)."""
NARROW_HIST = 12
"""A sparkline's cells when the table is narrow (two bins per cell)."""
GRAPHICS = ("gauge", "act_hist", "grad_hist")
GIVE_WAY: tuple[tuple[tuple[str, ...], int | None], ...] = (
    (("act_hist", "grad_hist"), NARROW_HIST),
    (("act_hist", "grad_hist"), None),
    (("gauge",), NARROW_GAUGE[1]),
    (("gauge",), None),
)
"""What gives way when the table is too narrow, in this order (a width, or None: the column goes).
The sparklines go first: the highlighted layer's histograms are drawn below the table over time."""
STATE_STYLE = {"ok": "$success", "low": "$warning", "high": "$error", "": "$text-muted"}
WAITING = "Layer health appears with the first diagnostics."
"""What the empty panel says by default (`HealthPanel.show_empty` says why else it is empty)."""


@dataclass
class _LayerHistory:
    """A layer's histograms, one entry per measurement in each list (None: not measured then; the
    measurement at step 0 has no gradients, and an output layer no activation histogram)."""

    act: list[list[float] | None] = field(default_factory=list)
    grad: list[list[float] | None] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)


class HealthPanel(Vertical):
    """Per-layer health of one run (see the module docstring)."""

    DEFAULT_CSS = """
    HealthPanel { height: auto; }
    HealthPanel > #health-summary { height: auto; padding: 0 1; }
    HealthPanel > DataTable { height: auto; max-height: 16; }
    HealthPanel > #health-detail { height: auto; padding: 0 1; }
    HealthPanel > #health-weights { height: auto; padding: 0 1; }
    """

    def __init__(self, activation: str = "relu", *, max_history: int = 40, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.activation = activation
        self.max_history = max_history
        self.step: int | None = None
        self.layer_stats: dict[str, dict[str, Any]] = {}
        self.diag_summary: dict[str, float] = {}
        self.layer_history: dict[str, _LayerHistory] = {}
        self.weight_images: dict[str, Any] | None = None
        self.selected: str | None = None
        self.ratios: dict[str, float] = {}
        """The latest update/weight ratio per layer (not every measurement has one)."""
        self._ready = False
        self._fitted_to = -1
        self.widths: dict[str, int] = {}
        """The table's columns shown and their widths (after `fit_columns`)."""
        self.empty = WAITING
        """What the panel says while it has no measurement."""

    def compose(self) -> ComposeResult:
        yield Static(id="health-summary")
        yield DataTable(id="health-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="health-detail")
        yield Static(id="health-weights")

    def on_mount(self) -> None:
        self._ready = True
        self._redraw()

    def on_resize(self, event: events.Resize) -> None:
        if self._ready and self._available() != self._fitted_to:
            self._redraw()

    def _available(self) -> int:
        """Cells across for the table's columns (0: not laid out yet), less the vertical scrollbar
        when the rows will not all fit."""
        table = self.query_one(DataTable)
        width = table.size.width or self.size.width
        if not width:
            return 0
        max_height = table.styles.max_height
        rows = len(self.layer_stats) + 1
        tall = max_height is not None and max_height.is_cells and rows > max_height.value
        return width - (table.styles.scrollbar_size_vertical if tall else 0)

    # -- feeding -------------------------------------------------------------------------

    def reset(self, activation: str | None = None) -> None:
        """Forget everything (another run); optionally a new activation for the histogram axes."""
        if activation is not None:
            self.activation = activation
        self.step, self.layer_stats, self.diag_summary, self.layer_history = None, {}, {}, {}
        self.weight_images, self.selected, self.ratios = None, None, {}
        self._redraw()

    def show_empty(self, message: str = WAITING) -> None:
        """What to say while no measurement has come (a run that has none to send, one that ended
        without any); the default: that they will come."""
        if message != self.empty:
            self.empty = message
            self._redraw()

    def add_diagnostics(self, event: Any) -> None:
        """One Diagnostics event (or its dict form): becomes the shown state."""
        get = event.get if isinstance(event, dict) else lambda k, d=None: getattr(event, k, d)
        layers: dict[str, dict[str, Any]] = dict(get("layers", {}) or {})
        self.step = get("step")
        self.diag_summary = dict(get("summary", {}) or {})
        self.layer_stats = layers
        for name, stats in layers.items():
            if isinstance(stats.get("update_ratio"), int | float):
                self.ratios[name] = float(stats["update_ratio"])
            h = self.layer_history.setdefault(name, _LayerHistory())
            if "act_hist" in stats or "grad_hist" in stats:
                h.steps.append(int(self.step or 0))
                h.act.append(list(stats["act_hist"]) if "act_hist" in stats else None)
                h.grad.append(list(stats["grad_hist"]) if "grad_hist" in stats else None)
                for seq in (h.act, h.grad, h.steps):
                    del seq[: max(0, len(seq) - self.max_history)]
            if "weight_images" in stats:
                self.weight_images = stats["weight_images"]
        if self.selected not in layers:
            self.selected = next(iter(layers), None)
        self._redraw()

    # -- drawing -------------------------------------------------------------------------

    def _redraw(self) -> None:
        if not self._ready:
            return
        summary = self.query_one("#health-summary", Static)
        table = self.query_one(DataTable)
        table.clear()
        rows = {name: self._cells(name, stats) for name, stats in self.layer_stats.items()}
        self._fitted_to = self._available()
        widths = fit_columns(rows.values(), self._fitted_to, 2 * table.cell_padding)
        if widths != self.widths or not table.columns:
            self.widths = widths
            table.clear(columns=True)
            for key, _ in COLUMNS:
                if key in widths:
                    table.add_column(column_label(key, widths[key]), width=widths[key], key=key)
        table.display = self.step is not None  # no header row over nothing
        if self.step is None:
            summary.update(Content.from_markup("[$text-muted]$m[/]", m=self.empty))
            self.query_one("#health-detail", Static).update("")
            self.query_one("#health-weights", Static).update("")
            return
        s = self.diag_summary
        lo, hi = RATIO_BAND
        summary.update(Content.from_markup(
            "[b]step $st[/]: dead units $d, saturated $sa, weight norm $w · update/weight healthy "
            "between $lo and $hi (about 1e-3)",
            st=str(self.step), d=fmt.pct(s.get("dead_share")), sa=fmt.pct(s.get("saturated_share")),
            w=fmt.num(s.get("weight_norm"), 3), lo=f"{lo:g}", hi=f"{hi:g}",
        ))
        for name, cells in rows.items():
            table.add_row(*(graphic(key, cells[key], widths[key]) for key in widths), key=name)
        names = list(self.layer_stats)
        if self.selected in names and names.index(self.selected) != table.cursor_row:
            table.move_cursor(row=names.index(self.selected))
        self._render_detail()
        self.query_one("#health-weights", Static).update(self._weights_text())

    def _cells(self, name: str, stats: dict[str, Any]) -> dict[str, Any]:
        """A layer's cells at full width (the graphics as data: `graphic` draws them to a width)."""
        ratio = stats.get("update_ratio", self.ratios.get(name))
        state = ratio_state(ratio)
        style = STATE_STYLE[state]
        return {
            "layer": Content(name),
            "ratio": Content.from_markup(f"[{style}]$v[/]", v=f"{ratio:.1e} {state}" if state else "–"),
            "gauge": (ratio, style),
            "act_mean": Content(fmt.num(stats.get("act_mean"), 3)),
            "act_std": Content(fmt.num(stats.get("act_std"), 3)),
            "dead": Content(fmt.pct(stats.get("dead"))),
            "saturated": Content(fmt.pct(stats.get("saturated"))),
            "grad_norm": Content(fmt.num(stats.get("grad_norm"), 3)),
            "act_hist": list(stats.get("act_hist") or []),
            "grad_hist": list(stats.get("grad_hist") or []),
        }

    def _render_detail(self) -> None:
        detail = self.query_one("#health-detail", Static)
        h = self.layer_history.get(self.selected or "")
        if h is None or not h.steps:
            detail.update("")
            return
        detail.update(Content("\n").join(history_lines(self.selected or "", h, self.activation)))

    def _weights_text(self) -> Content:
        tiles = weight_tiles(self.weight_images)
        if not tiles:
            return Content("")
        img = self.weight_images or {}
        kind = "one tile per unit" if img.get("kind") == "units" else "rows: units, columns: inputs"
        head = (f"first-layer weights ({img.get('layer', '')}, {kind}; "
                f"blank = most negative, @ = most positive, |w| ≤ {img.get('scale', 0):.3g})")
        return Content("\n".join([head, *tiles]))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.layer_stats:
            self.selected = str(event.row_key.value)
            self._render_detail()


def history_lines(name: str, h: _LayerHistory, activation: str, max_rows: int = 12) -> list[Content]:
    """A layer's histograms over time: a title, a header, then a row per measurement (at most
    `max_rows`, evenly thinned, the first and the last kept), each with its step, the activation
    and the gradient heat rows side by side; a measurement without gradients says so."""
    a_lo, a_hi = act_hist_range(activation)
    g_lo, g_hi = GRAD_LOG_RANGE
    n = len(h.steps)
    idx = list(range(n))
    if n > max_rows:
        idx = sorted({round(i * (n - 1) / (max_rows - 1)) for i in range(max_rows)})
    width = max((len(a) for a in h.act if a), default=HIST_WIDTH)
    step_w = max(4, *(len(str(h.steps[i])) for i in idx))
    count = f"{n} measurement{'' if n == 1 else 's'}" if len(idx) == n else f"{len(idx)} of {n} measurements"
    span = f"step {h.steps[0]}" if n == 1 else f"steps {h.steps[0]}–{h.steps[-1]}"
    any_grad = any(g for g in h.grad)
    none_sent = not any_grad and any(h.steps)  # measured after updates, yet no gradients came
    grad_head = "no gradient histograms in this run" if none_sent else f"log10 |grad| {g_lo:g}…{g_hi:g}"
    lines = [
        Content(f"{name}: histograms over time ({count}, {span})"),
        Content(f"{'step':>{step_w}}  {'activations ' + f'{a_lo:g}…{a_hi:g}':<{width}} │ {grad_head}"),
    ]
    for i in idx:
        act, grad = h.act[i], h.grad[i]
        left = heat_rows([act])[0] if act else ""
        head = Content(f"{h.steps[i]:>{step_w}}  {left:<{width}} │ ")
        if grad:
            lines.append(head + Content(heat_rows([grad])[0]))
        elif h.steps[i] == 0:
            lines.append(head + Content.from_markup("[$text-muted]no gradients yet: before the first update[/]"))
        elif not none_sent:
            lines.append(head + Content.from_markup("[$text-muted]no gradients measured at this step[/]"))
        else:
            lines.append(head)
    return lines


def natural_width(key: str, rows: list[dict[str, Any]]) -> int:
    """A column's width with nothing cut: its label and its widest cell (a graphic's full width)."""
    label = dict(COLUMNS)[key]
    if key == "gauge":
        return max(cell_len(label), GAUGE_WIDTH)
    if key in GRAPHICS:
        return max([cell_len(label), *(min(len(row[key]), HIST_WIDTH) for row in rows)])
    return max([cell_len(label), *(row[key].cell_length for row in rows)])


def fit_columns(rows: Any, available: int, padding: int = 2) -> dict[str, int]:
    """The columns shown and their widths so that they and their `padding` fit in `available`
    cells (all at their natural widths when `available` is 0: not laid out yet). The graphics give
    way as `GIVE_WAY` says; numbers keep their widths even if that overflows (the table then
    scrolls sideways)."""
    rows = list(rows)
    widths = {key: natural_width(key, rows) for key, _ in COLUMNS}
    if not available:
        return widths

    def excess() -> int:
        return sum(widths.values()) + padding * len(widths) - available

    for group, floor in GIVE_WAY:
        if excess() <= 0:
            break
        for key in group:
            if key in widths:
                if floor is None:
                    del widths[key]
                else:
                    widths[key] = min(widths[key], max(floor, cell_len(column_label(key, floor))))
    return widths


def column_label(key: str, width: int) -> str:
    """A column's label for its width (the narrow gauge's own)."""
    if key == "gauge":
        return gauge_label(width)
    return dict(COLUMNS)[key]


def graphic(key: str, cell: Any, width: int) -> Any:
    """A cell drawn to its column's width: the gauge, a sparkline (bins merged when it is narrower
    than them); other cells as they are."""
    if key == "gauge":
        ratio, style = cell
        return Content.from_markup(f"[{style}]$v[/]", v=ratio_gauge(ratio, width))
    if key in ("act_hist", "grad_hist"):
        return sparkline(merge_bins(cell, width))
    return cell


def merge_bins(counts: list[float], width: int) -> list[float]:
    """Histogram counts in at most `width` bins: neighbours summed (2 → 1 for 24 bins in 12)."""
    if len(counts) <= width or width <= 0:
        return counts
    k = -(-len(counts) // width)
    return [sum(counts[i:i + k]) for i in range(0, len(counts), k)]
