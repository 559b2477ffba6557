"""Assemble a recipe from menus, add variants by sweeping fields, check it as you type (with the
engine's own messages), save it as a preset TOML and run it. The Train tab previews the learning-
rate schedule of the base recipe (computed in a thread worker: the engine imports torch). With your own
data (``data.name = "file"``) the Data tab says what the file holds below its path; the Model tab sums up
the model of the highlighted variant (its layers under the line), both read in thread workers."""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    Collapsible,
    DataTable,
    Input,
    Label,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
    Tabs,
    TextArea,
)
from textual.worker import Worker, WorkerState

from engine.catalogue.preflight import preflight
from engine.catalogue.presets import LoadedPreset, PresetError, builtin_dir, builtin_ids, load_preset
from tui_lab.data.draft import Draft, format_overrides, parse_overrides, preset_fields
from tui_lab.data.fields import recipe_fields
from tui_lab.data.fmt import clean
from tui_lab.data.recipe_facts import (
    architecture,
    data_facts,
    layer_table,
    pick_spec,
    resolve_path,
    summary_line,
)
from tui_lab.widgets.field_input import FieldInput, FieldTextArea
from tui_lab.widgets.lab_footer import LabFooter
from tui_lab.widgets.mode_bar import ModeBar
from tui_lab.widgets.recipe_form import RecipeForm
from tui_lab.widgets.schedule_preview import SchedulePreview
from tui_lab.widgets.variant_editor import VariantEditor

PRIMARY = {
    "preset": ("title", "technique", "chapter", "step", "benefit", "summary", "view", "seeds"),
    "data": ("name", "path", "targets", "label", "task", "n_samples", "n_classes", "noise", "preprocess",
             "train_fraction", "n_train"),
    "model": ("kind", "hidden", "depth", "width", "activation", "norm", "dropout", "residual", "init"),
    "train": ("optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_steps", "batch_size", "steps",
              "epochs", "loss", "l1", "l2", "clip_norm", "early_stopping", "ema", "mixup", "seed"),
}
DEFAULT_EPOCHS = 20
"""The budget of a recipe with neither steps nor epochs (``engine.training.runbook.budget``; a test checks it)."""
EMPTY = {
    "data": {"path": "a .csv / .tsv, .npz, .npy or a folder of images; relative: beside the saved recipe"},
    "train": {"steps": f"empty: set by epochs, else {DEFAULT_EPOCHS} epochs",
              "epochs": f"empty: set by steps, else {DEFAULT_EPOCHS} epochs"},
}
"""What an empty field means, where "empty for none" would mislead (no steps is not no budget)."""
FIELDS = (Input, Select, Switch, TextArea, DataTable)
"""The widgets a person edits (a form's scrolling container can take the focus too)."""
VALIDATE_DELAY = 0.25
SHORT_HEIGHT = 20
"""Below this height the Train tab leaves the schedule preview out (the fields need the rows)."""
_N_TRAIN: dict[str, int] = {}
"""Training-split sizes by data spec (JSON), for recipes budgeted in epochs."""


def schedule_points(base: dict[str, Any]) -> tuple[list[tuple[int, float]], str, int]:
    """(step, lr) points of the base recipe's schedule over its whole budget, a title, and the budget
    in steps.

    Runs in a thread worker: it imports torch (``engine.recipe.schedules``); a recipe budgeted in epochs
    loads its data once to know the steps per epoch. ValueError when the recipe is not valid."""
    import torch
    from pydantic import ValidationError

    from engine.recipe.config import Recipe, RunSpec
    from engine.recipe.schedules import schedule_curve

    torch.set_num_threads(1)
    try:
        recipe = Recipe.model_validate(base)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    t = recipe.train
    source = ""
    if t.steps is not None:
        total = t.steps
    else:
        from engine.data import load_data
        from engine.training.runbook import budget

        key = recipe.data.model_dump_json()
        if key not in _N_TRAIN:
            _N_TRAIN[key] = len(load_data(recipe.data, seed=t.seed, device="cpu").x_train)
        _, per_epoch, total = budget(RunSpec(recipe=recipe, variant="preview"), _N_TRAIN[key])
        # where the number comes from: epochs × steps per epoch (the engine's default with neither set)
        source = f" = {'' if t.epochs else 'default '}{total // per_epoch} epochs × {per_epoch}"
    warm = f", warmup {t.warmup_steps}" if t.warmup_steps else ""
    return schedule_curve(t, total), f"lr: {t.schedule}{warm}, {total} steps{source}", total


NEW_ID = Draft.new().meta["technique"]
"""The id a new recipe starts from (``my-recipe``)."""


def fresh_id(folder: Path, base: str) -> str:
    """`base`, or `base-2`, `base-3`, …: the first id with no file in `folder`."""
    n = 1
    while (folder / f"{base if n == 1 else f'{base}-{n}'}.toml").exists():
        n += 1
    return base if n == 1 else f"{base}-{n}"


def own_id(folder: Path, preset_id: str) -> str:
    """A free id for the user's copy of catalogue preset `preset_id`: ``my-<id>`` (``my-<id>-2``, …),
    neither a catalogue id nor a file in `folder`."""
    taken = set(builtin_ids())
    base = f"my-{preset_id}"
    n = 1
    while (candidate := base if n == 1 else f"{base}-{n}") in taken or (folder / f"{candidate}.toml").exists():
        n += 1
    return candidate


def editable_path(loaded: LoadedPreset) -> Path | None:
    """Where saving a loaded preset goes: its own file, unless it is a built-in one (then the
    user's presets folder, under an id of its own: ``BuilderScreen.shadowed_id``)."""
    path = loaded.path.resolve()
    if path.parent == builtin_dir().resolve() or not path.is_file():
        return None
    return path


class BuilderScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+r", "run(True)", "Run quick"),
        Binding("ctrl+t", "run(False)", "Run full"),
        Binding("ctrl+o", "open", "Open file"),
        Binding("ctrl+n", "new", "New"),
        Binding("ctrl+l", "layers", "Layers", tooltip="the model's layers (Model tab)"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("down", "enter_fields", "Into the fields", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.draft = Draft.new()
        self.path: Path | None = None
        self.loaded: LoadedPreset | None = None
        self.problem = ""
        self.cannot_run: dict[bool, list[str]] = {False: [], True: []}
        """What would stop the runs of the full (False) and quick (True) form (``engine.catalogue.preflight``):
        the recipe is valid and can be saved, but it does not run here."""
        self.field_errors: dict[str, str] = {}
        self._clean: dict | None = None
        """The recipe as loaded or last saved (None before the first load)."""
        self._changed_on_load = False
        """The recipe was handed over changed from its file (the LR finder's "apply"): unsaved until
        saved, even before an edit here."""
        self._timer = None
        self._schedule_key = ""
        """The base recipe the schedule preview was drawn from (JSON)."""
        self._schedule_worker: Worker | None = None
        self._facts_key = ""
        """The data section and folder the Data tab's facts line was read from (JSON)."""
        self._facts_worker: Worker | None = None
        self._summary_key = ""
        """The variant, data and model the Model tab's summary was built from (JSON)."""
        self._summary_worker: Worker | None = None
        self._note: tuple[Draft, str, str] | None = None
        """(draft, message, title): say this once that draft is loaded (see `announce_on_load`)."""

    def compose(self) -> ComposeResult:
        yield ModeBar("builder")
        fields = recipe_fields()
        with TabbedContent(id="builder-tabs"):
            with TabPane("Preset", id="tab-preset"):
                with Vertical(classes="preset-pane"):
                    yield RecipeForm("preset", tuple(preset_fields().values()), primary=PRIMARY["preset"],
                                     explicit_only=False, id="form-preset")
                    with Horizontal(classes="field-row"):
                        yield Label("quick form", classes="field-label")
                        yield FieldInput(compact=True, id="quick-overrides", placeholder="train.steps = 200")
                    with Horizontal(classes="field-row"):
                        yield Label("save as", classes="field-label")
                        yield FieldInput(compact=True, id="save-path")
                    yield Static("explanation (Markdown)", classes="form-help")
                    yield FieldTextArea(id="explain", soft_wrap=True)
                    yield Static("", id="claims-note", classes="form-help")
            for section, title in (("data", "Data"), ("model", "Model"), ("train", "Train")):
                with TabPane(title, id=f"tab-{section}"):
                    yield RecipeForm(section, fields[section], primary=PRIMARY[section], empty=EMPTY.get(section),
                                     info=("path",) if section == "data" else (), id=f"form-{section}")
                    if section == "model":
                        with Collapsible(title="model: …", collapsed=True, id="model-summary"):
                            with VerticalScroll(id="model-layers-scroll"):
                                yield Static("", id="model-layers")
                    if section == "train":
                        yield SchedulePreview(id="schedule-preview")
            with TabPane("Variants", id="tab-variants"):
                yield VariantEditor(id="variants-editor")
            with TabPane("TOML", id="tab-toml"):
                yield TextArea(id="toml-view", read_only=True)
        yield Static("", id="builder-status")
        yield LabFooter(keep=("save", "run(True)", "run(False)", "toggle_help", "remove", "open", "new"))

    def on_mount(self) -> None:
        self.app.builder_screen = self  # the app asks it before replacing its recipe
        self.set_class(self.size.height < SHORT_HEIGHT, "-short")
        self._take_pending()
        if self.loaded is None and not self.problem:
            self.load_draft(self.draft, None, focus=False)

    def on_screen_resume(self) -> None:
        self._take_pending()

    def _take_pending(self) -> None:
        pending = getattr(self.app, "pending_draft", None)
        if pending is not None:
            self.app.pending_draft = None
            self.load_draft(*pending)
            note, self._note = self._note, None
            if note is not None and note[0] is pending[0]:
                self.notify(note[1], title=note[2], timeout=8, markup=False)
        variant = getattr(self.app, "pending_variant", None)
        if variant is not None:  # show this variant (the LR finder's "apply" changed it)
            self.app.pending_variant = None
            self._changed_on_load = pending is not None
            self.query_one("#builder-tabs", TabbedContent).active = "tab-variants"
            names = [v.name for v in self.draft.variants]
            if variant in names:
                table = self.query_one("#variant-list", DataTable)
                self.call_after_refresh(table.move_cursor, row=names.index(variant))
                self.call_after_refresh(table.focus)

    # -- draft <-> widgets ----------------------------------------------------------------

    def load_draft(self, draft: Draft, path: Path | None = None, *, focus: bool = True) -> None:
        """Show a draft in every tab (no change events), then check it; `focus`: then give the tab bar
        the focus (see `focus_tabs`). A new recipe gets an id no saved recipe has (`fresh_id`)."""
        if path is None and draft.meta.get("technique") == NEW_ID:
            self._name_new(draft)
        self.draft = draft
        self.path = path
        meta = dict(draft.meta)
        self.query_one("#form-preset", RecipeForm).set_values(meta)
        for section in ("data", "model", "train"):
            self.query_one(f"#form-{section}", RecipeForm).set_values(draft.base.get(section, {}))
        with self.prevent(Input.Changed, TextArea.Changed):
            self.query_one("#quick-overrides", Input).value = format_overrides(draft.quick)
            save = self.query_one("#save-path", Input)
            save.value = str(path) if path is not None else ""
            save.placeholder = str(self.default_path())
            self.query_one("#explain", TextArea).text = draft.explain
        self.query_one(VariantEditor).set_variants(draft.variants)
        self._share_variants()
        self.field_errors = {}
        self._claims_note()
        self.validate()
        self._clean = draft.to_dict()
        self._changed_on_load = False
        if focus:
            self.call_after_refresh(self.focus_tabs)

    def focus_tabs(self) -> None:
        """A recipe just opened: the focus on the tab bar (its active tab shows it), whatever field of
        the last recipe had it: ←/→ switch tabs, ↓ goes into the fields, digits still switch screens."""
        if self.is_current:
            self.query_one("#builder-tabs", TabbedContent).query_one(Tabs).focus()

    def focus_first_field(self, tries: int = 10) -> None:
        """Focus the first field of the tab shown. A form builds its rows when first shown: until they
        are there, try again after the next refresh."""
        tabs = self.query_one("#builder-tabs", TabbedContent)
        pane = tabs.get_pane(tabs.active)
        for widget in self.focus_chain:
            if isinstance(widget, FIELDS) and pane in widget.ancestors:
                widget.focus()
                return
        if tries > 0:
            self.call_after_refresh(self.focus_first_field, tries - 1)

    def has_unsaved_changes(self) -> bool:
        """Whether the recipe differs from what was loaded or last saved, or a field holds text that
        does not parse (typed, so not to be lost either)."""
        if self._clean is None:
            return False
        return self._changed_on_load or bool(self.field_errors) or self.draft.to_dict() != self._clean

    def announce_on_load(self, draft: Draft, message: str, *, title: str) -> None:
        """Say `message` when `draft` (handed over as the app's pending draft, see
        ``DllabApp.open_in_builder``) is loaded: at once when nothing was to be lost, after the
        person's "yes" when the Builder asked first, never when they kept their changes."""
        self._note = (draft, message, title)

    def _claims_note(self) -> None:
        n = len(self.draft.claims)
        text = (f"{n} claim{'s' if n != 1 else ''} kept from the file (edit the TOML to change them)"
                if n else "No claims: a recipe made here is compared by eye and by the curve diagnosis.")
        self.query_one("#claims-note", Static).update(Content.from_markup("[$text-muted]$t[/]", t=text))

    def _name_new(self, draft: Draft) -> None:
        """A new recipe saved to my-recipe.toml replaced the one saved there before: it takes the
        first id free in the saved-recipes folder (my-recipe, my-recipe-2, …), its title with it."""
        technique = fresh_id(self.app.presets_dir, NEW_ID)
        if technique != NEW_ID:
            n = technique.rsplit("-", 1)[1]
            title = draft.meta.get("title")
            draft.meta = {**draft.meta, "technique": technique, "title": f"{title} {n}" if title else title}

    def default_path(self) -> Path:
        technique = str(self.draft.meta.get("technique") or "my-recipe")
        return self.app.presets_dir / f"{technique}.toml"

    def save_path(self) -> Path:
        text = self.query_one("#save-path", Input).value.strip()
        return Path(text).expanduser() if text else self.default_path()

    # -- changes --------------------------------------------------------------------------

    def on_recipe_form_changed(self, event: RecipeForm.Changed) -> None:
        section = event.form.section
        values, errors = event.form.collect()  # now, not when posted: a stale message must not undo a load
        for key in [k for k in self.field_errors if k.startswith(section + ".")]:
            del self.field_errors[key]
        for name, msg in errors.items():
            self.field_errors[f"{section}.{name}"] = msg
        if section == "preset":
            self.draft.meta = dict(values)
            self.query_one("#save-path", Input).placeholder = str(self.default_path())
        else:
            self.draft.base[section] = dict(values)
        self._schedule()

    def _share_variants(self) -> None:
        """Each section's form learns what the variants and the quick form change in it: a field that
        only some settings use is shown when one of them uses it (a base of sgd with a momentum variant:
        the base's momentum is that variant's)."""
        quick = self.draft.quick
        for section in ("data", "model", "train"):
            layers = [quick.get(section) or {}]
            for v in self.draft.variants:
                own = v.overrides.get(section) or {}
                layers += [own, {**(quick.get(section) or {}), **own, **(v.quick.get(section) or {})}]
            others = [layer for i, layer in enumerate(layers) if layer and layer not in layers[:i]]
            self.query_one(f"#form-{section}", RecipeForm).set_variants(others)

    def on_variant_editor_changed(self, event: VariantEditor.Changed) -> None:
        self.draft.variants = list(event.variants)
        self._share_variants()
        if event.edited and self.validate() is None:  # "variant … updated" must not read as all well
            event.editor.hint(f"variant {event.edited!r} changed, but the recipe is not valid now: "
                              "the line below says why", error=True)
            return
        self._schedule()

    def on_variant_editor_edit_checked(self, event: VariantEditor.EditChecked) -> None:
        """The overrides box holds text that does not parse (or no longer does): the recipe is not
        what the box says, so it is not valid (no run, no save) until the text is fixed or cleared."""
        for key in [k for k in self.field_errors if k.startswith("variant ")]:
            del self.field_errors[key]
        if event.problem:
            self.field_errors[f"variant {event.variant!r}"] = (
                f"{event.problem} — fix and press enter, or clear it")
        self._schedule()

    @on(Input.Changed, "#quick-overrides")
    def _quick_changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            self.draft.quick = parse_overrides(event.value)
            self.field_errors.pop("quick", None)
            self._share_variants()
        except ValueError as exc:
            self.field_errors["quick"] = str(exc)
        self._schedule()

    @on(TextArea.Changed, "#explain")
    def _explain_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.draft.explain = event.text_area.text
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY, self.validate)

    def validate(self) -> LoadedPreset | None:
        """Check the draft as the engine would load it; the status line says what is wrong."""
        self._timer = None
        status = self.query_one("#builder-status", Static)
        self.loaded = None
        if self.field_errors:
            key, msg = next(iter(self.field_errors.items()))
            more = f" (and {len(self.field_errors) - 1} more)" if len(self.field_errors) > 1 else ""
            self.problem = f"{key}: {msg}{more}"
        else:
            path = self.save_path()
            try:
                self.loaded = self.draft.validate(path)
                self.problem = ""
            except PresetError as exc:  # the command line's message, about this recipe, not a file
                self.problem = re.sub(rf"^{re.escape(str(path))}:", "this recipe:", str(exc), flags=re.M)
        self.cannot_run = self._preflight(self.loaded)
        stopped = self.cannot_run[False] or self.cannot_run[True]
        if self.loaded is not None and stopped:
            more = f" (and {len(stopped) - 1} more)" if len(stopped) > 1 else ""
            status.update(Content.from_markup("[b $error]✘ cannot run:[/] $p$m", p=stopped[0], m=more))
            status.add_class("-error")
        elif self.loaded is not None:
            p = self.loaded.preset
            runs = len(p.variants) * len(p.seeds)
            quick = len(p.variants) * len(p.default_seeds(True))
            status.update(Content.from_markup(
                "[b $success]✔ valid[/] $v variant$s × $n seed$ns = $r run$rs [$text-muted]($q in the quick form)[/]",
                v=str(len(p.variants)), s="s" if len(p.variants) != 1 else "", n=str(len(p.seeds)),
                ns="s" if len(p.seeds) != 1 else "", r=str(runs), rs="s" if runs != 1 else "", q=str(quick),
            ))
            status.remove_class("-error")
        else:
            status.update(Content.from_markup("[b $error]✘[/] $p", p=self.problem))
            status.add_class("-error")
        self._show_toml()
        self.preview_schedule()
        self.read_data_facts()
        self.summarize_model()
        return self.loaded

    def _preflight(self, loaded: LoadedPreset | None) -> dict[bool, list[str]]:
        """The problems that would stop the runs of each form, found before any starts; a problem of
        the quick form only says so."""
        found: dict[bool, list[str]] = {False: [], True: []}
        if loaded is None:
            return found
        device = getattr(self.app, "device", "auto")
        for quick in (False, True):
            try:
                problems = preflight(loaded.expand(quick=quick), device=device)
            except PresetError as exc:
                problems = [str(exc)]
            found[quick] = [p if p in found[False] else f"{p} (quick form)" for p in problems] if quick else problems
        return found

    # -- the schedule preview ---------------------------------------------------------------

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT_HEIGHT, "-short")

    @on(TabbedContent.TabActivated, "#builder-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.preview_schedule()
        self.read_data_facts()
        self.summarize_model()

    @on(DataTable.RowHighlighted, "#variant-list")
    def _variant_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.summarize_model()  # of the highlighted variant (read when the Model tab shows)

    def _active_tab(self) -> str:
        tabs = self.query("#builder-tabs")
        return tabs.first(TabbedContent).active if tabs else ""

    # -- your own data's facts, the model's summary ----------------------------------------------

    def read_data_facts(self) -> None:
        """Below the Data tab's path: what the file holds, or why it cannot be read (read in a thread
        worker, after the check's debounce, only while the tab shows and the data is a file)."""
        data = dict(self.draft.base.get("data", {}))
        form = self.query_one("#form-data", RecipeForm)
        if data.get("name") != "file":  # a path left there says nothing uses it; the facts go
            if self._facts_key:
                self._facts_key = ""
                self._facts_worker = None
                form.show_info("path", "")
            return
        if self._active_tab() != "tab-data":
            return
        folder = self.save_path().parent
        form.empty["path"] = f"{EMPTY['data']['path'].partition(';')[0]}; a relative path is read from {folder}"
        try:  # a file saved again is read again
            stamp = Path(resolve_path(str(data.get("path") or ""), folder)).stat().st_mtime_ns
        except (OSError, ValueError):
            stamp = 0
        try:
            key = json.dumps([data, str(folder), stamp], sort_keys=True, default=str)
        except TypeError:
            key = repr((data, folder, stamp))
        if key == self._facts_key:
            return
        self._facts_key = key
        if not data.get("path"):
            self._facts_worker = None  # a read still going says nothing now
            form.show_info("path", "type the path of your data file (or folder of images)")
            return
        form.show_info("path", "reading the file …")
        self._facts_worker = self.run_worker(partial(data_facts, data, folder), name="data-facts",
                                             group="data-facts", thread=True, exclusive=True, exit_on_error=False)

    def _variant_shown(self) -> str | None:
        """The variant highlighted in the Variants tab (None: none is)."""
        table = self.query("#variant-list")
        row = table.first(DataTable).cursor_row if table else -1
        return self.draft.variants[row].name if 0 <= row < len(self.draft.variants) else None

    def summarize_model(self) -> None:
        """The Model tab's summary line (and its layer table) for the highlighted variant, built in a
        thread worker when what it depends on changed, only while the tab shows."""
        if self._active_tab() != "tab-model":
            return
        box = self.query_one("#model-summary", Collapsible)
        if self.loaded is None:
            key = "invalid"
            if key != self._summary_key:
                self._summary_key = key
                self._summary_worker = None
                box.title = Content("model: shown once the recipe is valid")
                self.query_one("#model-layers", Static).update("")
            return
        try:
            spec = pick_spec(self.loaded, self._variant_shown())
        except (PresetError, ValueError) as exc:
            self._summary_key = ""
            self._summary_worker = None
            box.title = Content(clean(f"model: not shown ({exc})"))
            return
        key = json.dumps([spec.variant, spec.recipe.data.model_dump(mode="json"),
                          spec.recipe.model.model_dump(mode="json")], sort_keys=True, default=str)
        if key == self._summary_key:
            return
        self._summary_key = key
        box.title = Content("model: …")
        self._summary_worker = self.run_worker(partial(self._summary, spec, len(self.draft.variants) > 1),
                                               name="model-summary", group="model-summary", thread=True,
                                               exclusive=True, exit_on_error=False)

    @staticmethod
    def _summary(spec: Any, name_it: bool) -> tuple[str, str]:
        from engine.data.base import DatasetError

        try:
            arch = architecture(spec)
        except DatasetError:  # the status line (and the Data tab) say why, in full
            return "model: not shown until its data can be read", ""
        line = summary_line(arch)
        return (f"{line} · variant {clean(spec.variant)}" if name_it else line), layer_table(arch)

    def preview_schedule(self) -> None:
        """Recompute the Train tab's schedule plot when the base recipe changed (only while the tab
        shows: the computation imports torch, in a thread worker)."""
        tabs = self.query("#builder-tabs")
        if not tabs or tabs.first(TabbedContent).active != "tab-train":
            return
        base = {s: dict(self.draft.base.get(s, {})) for s in ("data", "model", "train")}
        try:
            key = json.dumps(base, sort_keys=True, default=str)
        except TypeError:
            key = repr(base)
        if key == self._schedule_key:
            return
        self._schedule_key = key
        self._schedule_worker = self.run_worker(partial(schedule_points, base), name="schedule-preview",
                                                group="schedule-preview", thread=True, exclusive=True,
                                                exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._facts_worker and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            facts = event.worker.result
            if event.state == WorkerState.ERROR:
                self.query_one("#form-data", RecipeForm).show_info("path", clean(event.worker.error), problem=True)
            else:
                self.query_one("#form-data", RecipeForm).show_info("path", facts.text, problem=not facts.ok)
            return
        if event.worker is self._summary_worker and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            box = self.query_one("#model-summary", Collapsible)
            if event.state == WorkerState.ERROR:
                box.title = Content(f"model: not shown ({clean(event.worker.error)})")
                self.query_one("#model-layers", Static).update("")
            else:
                line, table = event.worker.result
                box.title = Content(line)
                self.query_one("#model-layers", Static).update(Content(table))
            return
        if event.worker is not self._schedule_worker:
            return
        preview = self.query_one(SchedulePreview)
        if event.state == WorkerState.SUCCESS:
            points, title, total = event.worker.result
            preview.show(points, title, total=total)
        elif event.state == WorkerState.ERROR:
            preview.show([], message=f"no schedule: {event.worker.error}")

    def _show_toml(self) -> None:
        try:
            text = self.draft.toml()
        except Exception as exc:  # noqa: BLE001 - a value TOML cannot hold: say so in the view
            text = f"# cannot write this draft as TOML: {exc}"
        view = self.query_one("#toml-view", TextArea)
        if view.text != text:
            view.text = text

    # -- actions --------------------------------------------------------------------------

    def action_enter_fields(self) -> None:
        """↓ on the tab bar (the fields take ↓ themselves): into the first field of the tab."""
        if isinstance(self.focused, Tabs):
            self.focus_first_field()

    def action_layers(self) -> None:
        """The Model tab with its layer table opened (again: closed)."""
        tabs = self.query_one("#builder-tabs", TabbedContent)
        box = self.query_one("#model-summary", Collapsible)
        if tabs.active != "tab-model":
            tabs.active = "tab-model"
            box.collapsed = False
        else:
            box.collapsed = not box.collapsed

    def action_leave_field(self) -> None:
        self.query_one("#builder-tabs", TabbedContent).query_one("Tabs").focus()

    def action_save(self) -> None:
        self.save()

    def _take_typed_edit(self) -> None:
        """A variant edit typed in the Variants tab but not entered counts (run and save take it)."""
        editor = self.query_one(VariantEditor)
        if editor.apply_edit(only_if_changed=True):
            self.draft.variants = list(editor.variants)  # now, not when the Changed message arrives
            self.notify("the variant edit you typed was applied first", markup=False)

    def save(self, then: Callable[[], Any] | None = None, *, instead_of: str = "") -> bool:
        """Save the recipe (ctrl+s; quitting's "Save and quit"); False, with a message, when it is not
        valid or cannot be written. A file there that this recipe was not opened from or saved to is
        not replaced without asking: then it asks (on the Builder) and returns False; `then` is
        called once the recipe is saved after the person's "yes". A recipe is not saved under a catalogue
        preset's id (`shadowed_id`): it asks to save it under one of its own (`instead_of`: that id)."""
        self._take_typed_edit()
        if self.validate() is None:
            self.notify(self.problem, title="Not saved: the recipe is not valid", severity="error", timeout=8,
                        markup=False)
            return False
        path = self.save_path()
        if (shadowed := self.shadowed_id(path)) is not None:
            self._ask_to_rename(path, shadowed, then)
            return False
        if path.exists() and (self.path is None or path.resolve() != self.path.resolve()):
            self._ask_to_replace(path, then)
            return False
        return self._write(path, instead_of=instead_of)

    def shadowed_id(self, path: Path) -> str | None:
        """The catalogue id a save to `path` would take, else None: a recipe in the saved-recipes folder
        under a catalogue preset's id is never the one that id opens or runs (``load_preset``: the
        catalogue's wins; `dllab run ID`, the Builder's open), so the edits would go unused."""
        try:
            in_folder = path.parent.resolve() == self.app.presets_dir.resolve()
        except OSError:
            return None
        return path.stem if in_folder and path.stem in builtin_ids() else None

    def _ask_to_rename(self, path: Path, shadowed: str, then: Callable[[], Any] | None) -> None:
        """Saving under a catalogue preset's id: say why it would go unused and offer a free id of the
        user's own (``my-<id>``: the technique id and the file's name), the title kept."""
        from tui_lab.screens.confirm import ConfirmScreen

        free = own_id(self.app.presets_dir, shadowed)

        async def answered(yes: bool | str | None) -> None:
            if not yes:
                self.notify(f"{shadowed} is a catalogue preset's id: change the technique id or \"save as\" "
                            "to save your recipe under a name of its own.", title="Not saved", markup=False)
                return
            self.draft.meta = {**self.draft.meta, "technique": free}
            self.query_one("#form-preset", RecipeForm).set_values(self.draft.meta)
            save = self.query_one("#save-path", Input)
            with self.prevent(Input.Changed):
                if save.value.strip() and Path(save.value.strip()).expanduser().stem == shadowed:
                    save.value = ""  # "save as" named the catalogue's id: the free id's file now
                save.placeholder = str(self.default_path())
            if self.save(then, instead_of=shadowed) and then is not None:
                result = then()
                if inspect.isawaitable(result):
                    await result

        if self.app.current_mode != "builder":  # quitting's "Save and quit" from another screen
            self.app.switch_mode("builder")
        self.app.push_screen(ConfirmScreen(
            f"{shadowed} is the id of a catalogue preset: saved as {path.name}, this recipe would never be what "
            f"`dllab run {shadowed}` or the Builder's open gives (the catalogue's comes first), so your changes "
            f"would go unused. Save it as {free} instead? The catalogue's preset stays as it is.",
            yes=f"Save as {free}", no="Cancel"), answered)

    def _ask_to_replace(self, path: Path, then: Callable[[], Any] | None) -> None:
        from tui_lab.screens.confirm import ConfirmScreen

        async def answered(yes: bool | str | None) -> None:
            if not yes:
                self.notify("Change the technique id or \"save as\" to save it beside that file.",
                            title=f"Not saved: {path.name} kept", markup=False)
            elif self._write(path) and then is not None:
                result = then()
                if inspect.isawaitable(result):
                    await result

        if self.app.current_mode != "builder":  # quitting's "Save and quit" from another screen
            self.app.switch_mode("builder")
        self.app.push_screen(ConfirmScreen(
            f"{path} already exists, and it is not the file this recipe was opened from or saved to. "
            "Replace it with this recipe?", yes="Replace it", no="Keep it"), answered)

    def _write(self, path: Path, *, instead_of: str = "") -> bool:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.draft.toml(), encoding="utf-8")
        except OSError as exc:
            self.notify(str(exc), title="Could not save", severity="error", markup=False)
            return False
        self.path = path
        self._clean = self.draft.to_dict()
        self._changed_on_load = False
        with self.prevent(Input.Changed):
            self.query_one("#save-path", Input).value = str(path)
        self.app.saved_changed = True
        if instead_of:
            self.notify(f"saved to {path}: `dllab run {path.stem}` and the Library's saved recipes run it; "
                        f"{instead_of} is still the catalogue's", title=f"Recipe saved as {path.stem}", timeout=8,
                        markup=False)
        else:
            self.notify(f"saved to {path}", title="Recipe saved", markup=False)
        return True

    def action_run(self, quick: bool) -> None:
        self._take_typed_edit()
        loaded = self.validate()
        if loaded is None:
            self.notify(self.problem, title="Cannot run: the recipe is not valid", severity="error", timeout=8,
                        markup=False)
            return
        if self.cannot_run[quick]:
            self.notify("\n".join(self.cannot_run[quick]), title="Cannot run", severity="error", timeout=10,
                        markup=False)
            return
        self.app.start_preset(loaded, quick=quick)

    def action_open(self) -> None:
        from tui_lab.screens.prompt import PromptScreen

        def opened(answer: str | None) -> None:
            if answer:
                self.open_file(Path(answer).expanduser())

        # the saved recipes' folder with its slash: typing a name after it makes the path
        start = str(self.path) if self.path else f"{self.app.presets_dir}{os.sep}"
        self.app.push_screen(PromptScreen("Open a preset: a path to a .toml file, a catalogue id or a saved "
                                          "recipe's id:", start), opened)

    def open_file(self, path: Path) -> bool:
        """Open a preset file (or catalogue id) here, asking first when the recipe has unsaved changes
        (the app's `open_in_builder`, as the Library's `b`). False when it does not load."""
        try:
            loaded = load_preset(path)
        except PresetError as exc:
            self.notify(str(exc), title="Cannot open", severity="error", timeout=8, markup=False)
            return False
        draft = Draft.from_preset(loaded.preset)
        self.announce_on_load(draft, f"opened {loaded.path}", title="Recipe opened")
        self.app.open_in_builder(loaded, draft)
        return True

    def action_new(self) -> None:
        """A new recipe, asking first when this one has unsaved changes (as the Library's `n`)."""
        self.app.open_in_builder(None)
