"""The engine is UI-agnostic, and the architecture's contracts hold (import-linter, pyproject.toml).

The contracts read every import statement, inside functions too; the subprocess test below also
imports every engine module, to catch what a static reading cannot (imports by name at import time).
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent
UI = ("tui_lab", "textual", "textual_plotext", "plotext", "rich", "bench")


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))


def test_every_engine_module_is_listed() -> None:
    modules = engine_modules()
    assert len(modules) > 60 and "engine.runs.executor" in modules and "engine.training.runbook" in modules


def test_engine_imports_nothing_from_the_app() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {engine_modules()!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {UI!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"engine imported UI modules: {out.stdout}"


def test_the_import_contracts_hold() -> None:
    """`lint-imports` (CI runs it too): the layers of the engine, the app above it, widgets below
    the command line, bench above both, no import loops."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    out = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
