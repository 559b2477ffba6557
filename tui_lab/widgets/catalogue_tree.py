"""The catalogue as a tree: chapters, then their techniques; filtered by a search text."""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from engine.catalogue.presets import CHAPTERS, LoadedPreset
from tui_lab.data.fmt import clean

SAVED = "saved recipes"
YOURS = " (yours)"
"""The mark of a saved recipe where its name would pass for a catalogue preset's (the Builder saves an
edited catalogue preset under an id of its own, ``my-<id>``, with the same title; a file copied into the
folder may even have the catalogue's id): both stay listed, the user's copy marked. It does not replace
the catalogue's: `dllab run ID` and the Builder's "open" mean the catalogue's (the Builder refuses to
save a recipe under a catalogue id for that reason, `BuilderScreen.shadowed_id`)."""


def looks_like(saved: LoadedPreset, catalogue: list[LoadedPreset]) -> bool:
    """Whether a saved recipe has the id or the title of a catalogue preset."""
    return any(saved.id == p.id or saved.preset.title == p.preset.title for p in catalogue)


def names(loaded: LoadedPreset, query: str) -> bool:
    """Every word of the query appears in the preset's id or title (it names the technique, where
    `matches` may only mention it: "early" is in "nearly")."""
    haystack = f"{loaded.id} {loaded.preset.title}".lower()
    return bool(query.split()) and all(word in haystack for word in query.lower().split())


def matches(loaded: LoadedPreset, query: str) -> bool:
    """Every word of the query appears in the preset's id, title, chapter, frame or summary."""
    p = loaded.preset
    haystack = " ".join([loaded.id, p.title, p.chapter, p.step, p.benefit, p.summary, p.technique,
                         " ".join(v.name for v in p.variants)]).lower()
    return all(word in haystack for word in query.lower().split())


KEPT = re.compile(r"(" + re.escape(YOURS) + r"| \(\d+\))$")
"""The end of a label that stays whole when the label is cut: a saved recipe's mark, a chapter's count."""


def fit_label(label: Text, width: int) -> Text:
    """`label` in at most `width` cells: a longer one is cut and ends with "…". A trailing
    `YOURS` mark or chapter count ("(6)") is kept whole and the words before it are cut (when
    there is room for a few of them)."""
    if label.cell_len <= width:
        return label
    kept = KEPT.search(label.plain)
    if kept is not None and width - len(kept.group(1)) >= 4:
        head, mark = label[:kept.start()], label[kept.start():]
        head.truncate(width - mark.cell_len, overflow="ellipsis")
        return Text.assemble(head, mark)
    label = label.copy()
    label.truncate(width, overflow="ellipsis")
    return label


class CatalogueTree(Tree[LoadedPreset | None]):
    """Chapters as branches, presets as leaves. Enter runs the highlighted preset (quick)."""

    BINDINGS = [
        Binding("enter", "run_quick", "Run quick", priority=False),
        Binding("f", "run_full", "Run full"),
    ]

    class PresetHighlighted(Message):
        def __init__(self, tree: CatalogueTree, loaded: LoadedPreset | None) -> None:
            super().__init__()
            self.tree = tree
            self.loaded = loaded

        @property
        def control(self) -> CatalogueTree:
            return self.tree

    class RunRequested(Message):
        def __init__(self, tree: CatalogueTree, loaded: LoadedPreset, quick: bool) -> None:
            super().__init__()
            self.tree = tree
            self.loaded = loaded
            self.quick = quick

        @property
        def control(self) -> CatalogueTree:
            return self.tree

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("catalogue", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.presets: list[LoadedPreset] = []
        self.saved: list[LoadedPreset] = []

    def set_presets(self, presets: list[LoadedPreset], saved: list[LoadedPreset], query: str = "") -> None:
        self.presets, self.saved = presets, saved
        self.filter(query)

    def filter(self, query: str) -> int:
        """Show the presets matching ``query``; returns how many."""
        current = self.current
        self.clear()
        groups: dict[str, list[LoadedPreset]] = {c: [] for c in CHAPTERS}
        for p in self.presets:
            if matches(p, query):
                groups.setdefault(p.preset.chapter, []).append(p)
        groups[SAVED] = [p for p in self.saved if matches(p, query)]
        count = 0
        first: TreeNode | None = None
        keep: TreeNode | None = None
        named: TreeNode | None = None  # the first whose id or title has the query: highlighted before
        # one that only mentions it (its summary, a variant), unless the highlighted one is named too
        for chapter, items in groups.items():
            if not items:
                continue
            branch = self.root.add(f"{chapter} ({len(items)})", data=None, expand=True)
            for p in items:
                leaf = branch.add_leaf(self._label(p, saved=chapter == SAVED), data=p)
                first = first or leaf
                if current is not None and p.path == current.path:
                    keep = leaf
                if named is None and names(p, query):
                    named = leaf
                count += 1
        if keep is not None and named is not None and not names(keep.data, query):
            keep = None
        target = keep or named or first
        if target is not None:
            self.call_after_refresh(self._highlight, target)
        else:
            self.post_message(self.PresetHighlighted(self, None))
        return count

    def _label(self, p: LoadedPreset, *, saved: bool) -> Text:
        """The title as plain Text (a str label is read as markup; titles are the user's too), a
        saved recipe that looks like a catalogue preset marked."""
        label = Text(clean(p.preset.title))
        if saved and looks_like(p, self.presets):
            label.append(YOURS, style="dim")
        return label

    def render_label(self, node: TreeNode[LoadedPreset | None], base_style: Style, style: Style) -> Text:
        """The label cut to the cells left of the panel's edge, ending with "…" (Textual's Tree
        clips a long line and scrolls sideways); a saved recipe's "(yours)" and a chapter's count
        stay whole (`fit_label`)."""
        label = super().render_label(node, base_style, style)
        room = self.scrollable_content_region.width - self._indent(node)
        return fit_label(label, room) if room > 0 else label

    def _indent(self, node: TreeNode[LoadedPreset | None]) -> int:
        """The cells of the guides before a node's label (as Tree's `_TreeLine` counts them)."""
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        if not self.show_root:
            depth -= 1  # the hidden root's children stand at the left edge
        return max(0, depth) * self.guide_depth

    def watch_show_vertical_scrollbar(self) -> None:
        """The scrollbar coming or going changes the room for the labels: measure them again."""
        self._invalidate()

    def is_saved(self, loaded: LoadedPreset) -> bool:
        """Whether `loaded` is one of the saved recipes (not the catalogue's preset of that id)."""
        return any(p.path == loaded.path for p in self.saved)

    def _highlight(self, node: TreeNode) -> None:
        self.move_cursor(node)
        self.post_message(self.PresetHighlighted(self, node.data))  # also when the line did not move

    @property
    def current(self) -> LoadedPreset | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        self.post_message(self.PresetHighlighted(self, event.node.data))

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()  # a click highlights; running is a deliberate key

    def _request(self, quick: bool) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.data is None:
            node.toggle()
            return
        self.post_message(self.RunRequested(self, node.data, quick))

    def action_run_quick(self) -> None:
        self._request(True)

    def action_run_full(self) -> None:
        self._request(False)
