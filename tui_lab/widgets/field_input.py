"""The Builder's text boxes: Textual's ``Input`` and ``TextArea``, with their editing keys applied in
the order they were typed.

Textual types a printable key in the widget's own ``_on_key``, but a bound key (``backspace``,
``delete``, the arrows, ``home`` / ``end``, ``ctrl+u``, ``enter``) is not handled there: the key
event bubbles up to the App, which runs the widget's binding when it reaches it, after the keys
already waiting in the App's queue have been handed to the widget. Keys that arrive in one burst
(a fast typist, a paste of keystrokes, tmux ``send-keys``) then apply out of order: ``0.01``,
backspace ×4, ``0.02`` typed as ``0.010.02`` and then lost four characters, leaving ``0.01``
(Textual issue #6605). Here the widget runs its own bindings where it receives the key, so every
key applies in turn; other keys (``ctrl+s``, ``escape``, the screen's and the App's keys) bubble as
before.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input, TextArea


async def run_own_binding(widget: Input | TextArea, event: events.Key) -> bool:
    """Run `widget`'s own (non-priority) binding for this key now; True when one ran. Priority
    bindings were checked by the App before the key was forwarded here, as usual."""
    if event.is_printable:
        return False  # typed by the widget itself
    own = getattr(widget, "_bindings", None)  # Textual's private binding map: without it, Textual's own way
    for binding in own.key_to_bindings.get(event.key, ()) if hasattr(own, "key_to_bindings") else ():
        if not binding.priority and await widget.app.run_action(binding.action, widget):
            event.stop()
            event.prevent_default()  # the widget's own handlers: done; no bubbling to the App's bindings
            if callable(restart := getattr(widget, "_restart_blink", None)):
                restart()
            return True
    return False


class FieldInput(Input):
    """An ``Input`` that applies its editing keys in the order they arrive (see the module)."""

    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)  # else Input's own _on_key runs next (Textual walks the MRO)


class FieldTextArea(TextArea):
    """A ``TextArea`` that applies its editing keys in the order they arrive (see the module)."""

    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)
