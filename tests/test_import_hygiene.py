"""The engine is UI-agnostic: importing it never pulls in the app or Textual."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "engine.recipe.config", "engine.runs.events", "engine.catalogue.presets", "engine.catalogue.claims", "engine.training.loop",
    "engine.runs.runner", "engine.runs.store", "engine.data", "engine.models", "engine.diagnostics.curves",
]


def test_engine_imports_nothing_from_the_app():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in ENGINE_MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tui_lab', 'textual', 'textual_plotext', 'plotext', 'rich'))\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported UI modules: {out.stdout}"
