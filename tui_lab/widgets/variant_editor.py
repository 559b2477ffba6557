"""The variants of a recipe: add them by sweeping one field over values (or crossing a sweep with
the variants already there), rename them, edit their overrides as ``section.field = value`` text."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from tui_lab.data.draft import (
    VariantDraft,
    format_overrides,
    parse_overrides,
    parse_sweep,
    sweep_variants,
    unique_names,
)
from tui_lab.data.fields import field_by_key, recipe_fields
from tui_lab.data.fmt import clean
from tui_lab.widgets.field_input import FieldInput

INTRO = "Pick a field and the values to compare; each value becomes a variant."


class VariantEditor(Vertical):
    BINDINGS = [
        Binding("delete", "remove", "Remove variant"),
    ]

    class Changed(Message):
        """The variants changed; `edited`: the name of the variant an edit (name, overrides) changed."""

        def __init__(self, editor: VariantEditor, variants: list[VariantDraft], edited: str = "") -> None:
            super().__init__()
            self.editor = editor
            self.variants = variants
            self.edited = edited

        @property
        def control(self) -> VariantEditor:
            return self.editor

    class EditChecked(Message):
        """The overrides box now holds text that does not parse (`problem`, for the highlighted
        `variant`), or no longer does (`problem` empty). Sent when that changes."""

        def __init__(self, editor: VariantEditor, variant: str, problem: str) -> None:
            super().__init__()
            self.editor = editor
            self.variant = variant
            self.problem = problem

        @property
        def control(self) -> VariantEditor:
            return self.editor

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.variants: list[VariantDraft] = []
        self.edit_problem = ""
        """Why the overrides box's text does not parse ("" when it does)."""

    def compose(self) -> ComposeResult:
        keys = [f.key for fields in recipe_fields().values() for f in fields if f.name != "name"]
        with Horizontal(classes="field-row"):
            yield Label("sweep", classes="field-label")
            yield Select([(k, k) for k in keys], prompt="field to compare", compact=True, id="sweep-field")
        with Horizontal(classes="field-row"):
            yield Label("values", classes="field-label")
            yield FieldInput(placeholder="values to compare, comma-separated", compact=True, id="sweep-values")
        with Horizontal(classes="button-row"):
            yield Button("Add variants", id="sweep-add", compact=True)
            yield Button("× Cross with existing", id="sweep-cross", compact=True)
            yield Button("New", id="variant-new", compact=True)
            yield Button("Remove", id="variant-remove", compact=True)
        yield Static("", id="sweep-hint", classes="form-help")
        yield DataTable(id="variant-list", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="field-row"):
            yield Label("name", classes="field-label")
            yield FieldInput(compact=True, id="variant-name", placeholder="variant name (enter applies)")
        with Horizontal(classes="field-row"):
            yield Label("overrides", classes="field-label")
            yield FieldInput(compact=True, id="variant-overrides",
                             placeholder='train.optimizer = "adam"; train.lr = 0.01')

    def on_mount(self) -> None:
        table = self.query_one("#variant-list", DataTable)
        table.add_column("variant", key="name")
        table.add_column("overrides", key="overrides")
        self.hint(INTRO)

    # -- state ----------------------------------------------------------------------------

    def set_variants(self, variants: list[VariantDraft], *, notify: bool = False, edited: str = "") -> None:
        self.variants = [VariantDraft(v.name, dict(v.overrides), v.description, dict(v.quick)) for v in variants]
        table = self.query_one("#variant-list", DataTable)
        row = table.cursor_row
        table.clear()
        for i, v in enumerate(self.variants):
            table.add_row(Text(clean(v.name)), Text(clean(format_overrides(v.overrides)) or "(the base recipe)"),
                          key=str(i))
        if self.variants:
            table.move_cursor(row=min(max(row, 0), len(self.variants) - 1))
            self._fill_edit(table.cursor_row)
        else:  # no variant to edit: nothing in the boxes
            with self.prevent(Input.Changed):
                self.query_one("#variant-name", Input).value = ""
                self.query_one("#variant-overrides", Input).value = ""
            self._check_edit()
        if notify:
            self.post_message(self.Changed(self, list(self.variants), edited))
        else:  # a recipe loaded (New, Open): the last one's sweep and its hint no longer apply
            with self.prevent(Select.Changed, Input.Changed):
                self.query_one("#sweep-field", Select).clear()
                self.query_one("#sweep-values", Input).value = ""
            self.hint(INTRO)

    def hint(self, text: str, error: bool = False) -> None:
        """The line under the buttons (the Builder says there when an edit left the recipe not valid)."""
        style = "$error" if error else "$text-muted"
        self.query_one("#sweep-hint", Static).update(Content.from_markup(f"[{style}]$t[/]", t=text))

    def _fill_edit(self, index: int) -> None:
        if 0 <= index < len(self.variants):
            v = self.variants[index]
            with self.prevent(Input.Changed):
                self.query_one("#variant-name", Input).value = v.name
                self.query_one("#variant-overrides", Input).value = format_overrides(v.overrides)
            self._check_edit()

    def _check_edit(self) -> None:
        """Whether the overrides box parses; tell the Builder when that changed (text that does not
        parse must not pass for the variant the table shows)."""
        try:
            parse_overrides(self.query_one("#variant-overrides", Input).value)
            problem = ""
        except ValueError as exc:
            problem = str(exc)
        if problem != self.edit_problem:
            self.edit_problem = problem
            i = self.query_one("#variant-list", DataTable).cursor_row
            name = self.variants[i].name if 0 <= i < len(self.variants) else ""
            self.post_message(self.EditChecked(self, name, problem))

    @on(Input.Changed, "#variant-overrides")
    def _overrides_typed(self, event: Input.Changed) -> None:
        event.stop()
        self._check_edit()

    # -- actions --------------------------------------------------------------------------

    def sweep(self, key: str, values_text: str, cross: bool = False) -> bool:
        """Add (or cross in) one variant per value of ``key``; False with a hint on bad input."""
        only_base = len(self.variants) == 1 and not self.variants[0].overrides
        try:
            values = parse_sweep(key, values_text)
            if cross and self.variants and not only_base:
                new = sweep_variants(key, values, self.variants, cross=True)
            else:
                new = ([] if only_base else self.variants) + sweep_variants(key, values)
        except (ValueError, KeyError) as exc:
            self.hint(str(exc), error=True)
            return False
        self.set_variants(unique_names(new), notify=True)
        self._count_hint()
        return True

    def _count_hint(self) -> None:
        n = len(self.variants)
        self.hint(f"{n} variant{'s' if n != 1 else ''}.")

    @on(Select.Changed, "#sweep-field")
    def _field_picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL:
            return
        f = field_by_key(str(event.value))
        self.hint(f"{f.key}: {f.hint()}" + (f" (default {f.format(f.default)})" if f.default is not None else ""))

    @on(Button.Pressed, "#sweep-add")
    @on(Button.Pressed, "#sweep-cross")
    @on(Input.Submitted, "#sweep-values")
    def _add(self, event: Message) -> None:
        event.stop()
        field = self.query_one("#sweep-field", Select).value
        if field is Select.NULL:
            self.hint("pick the field to compare first", error=True)
            return
        cross = isinstance(event, Button.Pressed) and event.button.id == "sweep-cross"
        self.sweep(str(field), self.query_one("#sweep-values", Input).value, cross=cross)

    @on(Button.Pressed, "#variant-new")
    def _new(self, event: Button.Pressed) -> None:
        event.stop()
        self.set_variants(unique_names([*self.variants, VariantDraft(f"variant {len(self.variants) + 1}")]),
                          notify=True)
        self.query_one("#variant-list", DataTable).move_cursor(row=len(self.variants) - 1)

    @on(Button.Pressed, "#variant-remove")
    def _remove_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_remove()

    def action_remove(self) -> None:
        table = self.query_one("#variant-list", DataTable)
        i = table.cursor_row
        if 0 <= i < len(self.variants):
            del self.variants[i]
            self.set_variants(self.variants, notify=True)
            self._count_hint()

    @on(DataTable.RowHighlighted, "#variant-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._fill_edit(event.cursor_row)

    @on(Input.Submitted, "#variant-name")
    @on(Input.Submitted, "#variant-overrides")
    def _apply_edit(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply_edit()

    def apply_edit(self, *, only_if_changed: bool = False) -> bool:
        """Put the name and overrides boxes into the highlighted variant (enter; and the Builder's run
        and save, so that an edit typed but not yet entered is not lost: `only_if_changed`). False,
        with a hint, when the boxes do not make a valid edit (or, with `only_if_changed`, make none)."""
        i = self.query_one("#variant-list", DataTable).cursor_row
        if not 0 <= i < len(self.variants):
            return False
        name = self.query_one("#variant-name", Input).value.strip()
        if not name:
            self.hint("a variant needs a name", error=True)
            return False
        try:
            overrides = parse_overrides(self.query_one("#variant-overrides", Input).value)
        except ValueError as exc:
            self.hint(str(exc), error=True)
            return False
        v = self.variants[i]
        typed = self.query_one("#variant-overrides", Input).value.strip()
        if only_if_changed and ((v.name, v.overrides) == (name[:40], overrides) or not typed):
            return False  # nothing new, or a box cleared (the variant keeps what the table shows)
        v.name = name[:40]
        v.overrides = overrides
        self.set_variants(self.variants, notify=True, edited=v.name)
        self.hint(f"variant {v.name!r} updated")  # the Builder says otherwise if the recipe is not valid now
        return True
