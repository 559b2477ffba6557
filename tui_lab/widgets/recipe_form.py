"""A form generated from a pydantic model's fields: a Select for each ``Literal``, a Switch for
each ``bool``, a checked Input for numbers, lists and text (validated with the field's own
constraints as the person types). Common fields first; the rest under "more fields". A field that
only some settings use (``tui_lab.data.fields.APPLIES``: momentum with the momentum optimizers, the
conv layers with a CNN, ...) is shown only where the base recipe or one of its variants uses it, or
when it holds a value of its own (then with a note that nothing uses it). A field named in `info` has a
line below it that the screen fills (`show_info`: what the data file holds), shown and hidden with it."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Label, Select, Static, Switch

from tui_lab.data.fields import APPLIES, FieldSpec, applies, unused_words
from tui_lab.widgets.field_input import FieldInput


class FieldValidator(Validator):
    """Checks a text box with the field's parser (the pydantic constraints of the engine)."""

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        try:
            self.spec.parse(value)
        except ValueError as exc:
            return self.failure(str(exc))
        return self.success()


class RecipeForm(VerticalScroll):
    """Edits one section (``data``, ``model``, ``train`` or the preset's own fields)."""

    class Changed(Message):
        """A field changed: the section's values now (explicit ones only) and any field errors."""

        def __init__(self, form: RecipeForm, values: dict[str, Any], errors: dict[str, str]) -> None:
            super().__init__()
            self.form = form
            self.values = values
            self.errors = errors

        @property
        def control(self) -> RecipeForm:
            return self.form

    def __init__(self, section: str, specs: tuple[FieldSpec, ...], *, primary: tuple[str, ...] = (),
                 explicit_only: bool = True, empty: dict[str, str] | None = None,
                 info: tuple[str, ...] = (), id: str | None = None) -> None:
        super().__init__(id=id, classes="recipe-form")
        self.section = section
        self.empty = dict(empty or {})
        """What an empty field means, by field name, where "empty for none" would not say (an empty
        `steps` is not no budget): shown in the empty box and in the help line."""
        self.specs = {f.name: f for f in specs}
        self.primary = [n for n in primary if n in self.specs] or list(self.specs)
        self.explicit_only = explicit_only
        self._values: dict[str, Any] = {f.name: f.default for f in specs}
        self._rest_mounted = False
        self._widgets: dict[str, Widget] = {}
        self._rows: dict[str, Widget] = {}
        self._errors: dict[str, Static] = {}
        self._error_text: dict[str, str] = {}
        """A field's error now (empty: none): shown before its note."""
        self._notes: dict[str, str] = {}
        """Why a field shown is not used ("not used: optimizer is adam ..."), by name."""
        self._others: list[dict[str, Any]] = []
        """This section as the variants change it (their overrides only): a field one uses is shown."""
        self._posted: tuple[dict[str, Any], dict[str, str]] | None = None
        self._built = False
        self.info = tuple(info)
        self._info: dict[str, tuple[Content, bool]] = {}
        """The line below a field named in `info`: (text, is a problem), kept until its row is built."""

    # -- building -------------------------------------------------------------------------

    def _widget_id(self, name: str) -> str:
        return f"f-{self.section}-{name}"

    def _make(self, f: FieldSpec) -> Widget:
        """The widget for a field, showing its current value (so its first events change nothing)."""
        wid = self._widget_id(f.name)
        tip = f"{f.key}: {f.doc + ' ' if f.doc else ''}({f.hint()})"
        value = self._values.get(f.name, f.default)
        widget: Widget
        if f.kind == "choice":
            widget = Select([(str(c), c) for c in f.choices], value=value if value is not None else Select.NULL,
                            allow_blank=f.optional or f.required, compact=True, id=wid)
        elif f.kind == "bool":
            widget = Switch(value=bool(value), id=wid)
        else:
            widget = FieldInput(value=f.format(value), placeholder=self.empty.get(f.name, f.hint()), compact=True,
                                id=wid, validators=[FieldValidator(f)], valid_empty=f.optional)
        widget.tooltip = tip
        return widget

    def _row(self, f: FieldSpec) -> Widget:
        widget = self._make(f)
        error = Static("", classes="field-error", id=f"e-{self.section}-{f.name}")
        self._widgets[f.name] = widget
        self._errors[f.name] = error
        row: Widget = Horizontal(Label(f.name, classes="field-label"), widget, error, classes="field-row")
        if f.name in self.info:  # the field and the line below it, shown and hidden together
            text, problem = self._info.get(f.name, (Content(""), False))
            line = Static(text, classes="field-info", id=f"i-{self.section}-{f.name}")
            line.set_class(problem, "-error")
            row = Vertical(row, line, classes="field-block")
        self._rows[f.name] = row
        return row

    def show_info(self, name: str, text: str, *, problem: bool = False) -> None:
        """The line below field `name` (one named in `info`): plain text, never read as markup."""
        content = Content(text)
        self._info[name] = (content, problem)
        lines = self.query(f"#i-{self.section}-{name}")
        if lines:
            line = lines.first(Static)
            line.update(content)
            line.set_class(problem, "-error")

    def compose(self) -> ComposeResult:
        yield Static("", classes="form-help", id=f"help-{self.section}")

    def on_show(self) -> None:
        """The rows are built when the form is first shown (Textual lays out ~20 widgets per
        tenth of a second here; a Builder with every field up front took seconds to open)."""
        if self._built:
            return
        self._built = True
        rows: list[Widget] = [self._row(self.specs[name]) for name in self.primary]
        if self.rest:
            rows.append(Collapsible(title=f"more {self.section} fields ({len(self.rest)})", collapsed=True,
                                    id=f"more-{self.section}"))
        self.mount_all(rows)
        self._show_applicable()

    @property
    def rest(self) -> list[str]:
        return [n for n in self.specs if n not in self.primary]

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        """The other fields are built when first shown (a form of ~50 widgets costs a second)."""
        event.stop()
        if self._rest_mounted:
            return
        self._rest_mounted = True
        contents = event.collapsible.query_one(Collapsible.Contents)
        contents.mount_all([self._row(self.specs[name]) for name in self.rest])
        self._show_applicable()

    # -- values ---------------------------------------------------------------------------

    def _widget(self, name: str) -> Widget | None:
        return self._widgets.get(name)

    def _read(self, f: FieldSpec) -> Any:
        widget = self._widget(f.name)
        if widget is None:
            return self._values.get(f.name, f.default)
        if isinstance(widget, Select):
            return None if widget.value is Select.NULL else widget.value
        if isinstance(widget, Switch):
            return widget.value
        assert isinstance(widget, Input)
        return f.parse(widget.value)

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(values, errors): the fields set (explicit ones: those not at the engine's default)."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, f in self.specs.items():
            try:
                v = self._read(f)
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            self._values[name] = v
            if v is None and (f.optional or f.required):
                if f.required:
                    errors[name] = "a value is required"
                continue
            if not self.explicit_only or f.required or v != f.default:
                values[name] = v
        return values, errors

    def set_values(self, values: dict[str, Any]) -> None:
        """Show these values (defaults for the fields not given), without Changed messages."""
        self._values = {name: values.get(name, f.default) for name, f in self.specs.items()}
        self._show_values(list(self.specs))
        self._posted = self.collect()
        self._show_applicable()

    def set_variants(self, sections: list[dict[str, Any]]) -> None:
        """The variants' overrides of this section (one dict each): a field that only some settings use
        is shown when the base recipe or one of the variants uses it."""
        if sections != self._others:
            self._others = [dict(s) for s in sections]
            self._show_applicable()

    def _show_applicable(self) -> None:
        """Show the fields the recipe uses; hide the others, unless one holds a value of its own (a value
        hidden would still be in the recipe): then it stays, saying that nothing uses it."""
        if not any(f"{self.section}.{name}" in APPLIES for name in self._rows):
            return
        base = {name: self._values.get(name, f.default) for name, f in self.specs.items()}
        sections = [base, *({**base, **other} for other in self._others)]
        for name, row in self._rows.items():
            key = f"{self.section}.{name}"
            if key not in APPLIES:
                continue
            used = applies(key, sections)
            note = "" if used else unused_words(key, base)
            value, default = base.get(name), self.specs[name].default
            typing = self._widgets[name].has_focus  # a row never goes from under the cursor
            row.display = used or (value is not None and value != default) or bool(self._error_text.get(name)) or typing
            if note != self._notes.get(name, ""):
                self._notes[name] = note
                self._show_error(name, self._error_text.get(name, ""))
        more = self.query(f"#more-{self.section}")
        if more:
            hidden = sum(1 for name in self.rest if name in self._rows and not self._rows[name].display)
            shown = len(self.rest) - (hidden if self._rest_mounted else self._unused_rest(sections))
            more.first(Collapsible).title = f"more {self.section} fields ({shown})"

    def _unused_rest(self, sections: list[dict[str, Any]]) -> int:
        """How many of the fields under "more fields" (not built yet) the recipe does not use."""
        return sum(1 for name in self.rest if not applies(f"{self.section}.{name}", sections)
                   and self._values.get(name, self.specs[name].default) == self.specs[name].default)

    def _show_values(self, names: list[str]) -> None:
        with self.prevent(Input.Changed, Select.Changed, Switch.Changed):
            for name in names:
                f = self.specs[name]
                v = self._values.get(name, f.default)
                widget = self._widget(name)
                if isinstance(widget, Select):
                    widget.value = v if v is not None else Select.NULL
                elif isinstance(widget, Switch):
                    widget.value = bool(v)
                elif isinstance(widget, Input):
                    widget.value = f.format(v)
                if widget is not None:
                    self._show_error(name, "")

    def _show_error(self, name: str, text: str) -> None:
        """The field's error (`text`), else its note (`_notes`: not used), beside it."""
        self._error_text[name] = text
        err = self._errors.get(name)
        note = self._notes.get(name, "")
        if err is None or (not text and not note and not err.has_class("-shown")):
            return
        if text:
            err.update(Content.from_markup("[$error]$t[/]", t=text))
        else:
            err.update(Content.from_markup("[$text-muted]$t[/]", t=note) if note else "")
        err.set_class(bool(text or note), "-shown")

    # -- events ---------------------------------------------------------------------------

    def _changed(self) -> None:
        values, errors = self.collect()
        if (values, errors) == self._posted:
            return  # a widget's own event at mount, or a value set back as it was
        self._posted = (values, errors)
        for name in self.specs:
            self._show_error(name, errors.get(name, ""))
        self._show_applicable()
        self.post_message(self.Changed(self, values, errors))

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _on_field_changed(self, event: Message) -> None:
        event.stop()
        self._changed()

    def on_descendant_focus(self, event: Any) -> None:
        widget = event.widget
        wid = widget.id or ""
        prefix = f"f-{self.section}-"
        if wid.startswith(prefix):
            f = self.specs.get(wid[len(prefix):])
            if f is not None:
                hint = f.hint()
                if f.name in self.empty:
                    hint = f"{hint.removesuffix('; empty for none')}; {self.empty[f.name]}"
                text = f"{f.key}: {f.doc} [{hint}]" if f.doc else f"{f.key}: {hint}"
                self.query_one(f"#help-{self.section}", Static).update(
                    Content.from_markup("[$text-muted]$t[/]", t=text))
