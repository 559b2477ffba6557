"""`dllab bench`: it runs and prints well-formed rows (no timing is asserted: timings are the
benchmark's output, never a unit test's pass condition)."""

from __future__ import annotations

import json
import math

import pytest

from tui_lab.cli import main

STATUSES = {"measured", "not measured", "not available"}
SECTION_IDS = ("presets/", "engine/dataloader.", "engine/slicing.", "batched/sequential.", "batched8/single.", "fast/plain.",
               "vmap/baddbmm.", "conv/sequential.", "surfaces/sequential.", "app/headless", "service/")


def _bench(capsys, *args: str) -> dict:
    code = main(["bench", "--quick", "--json", *args])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


def _check_rows(report: dict) -> None:
    assert {"device", "torch", "threads", "cores"} <= set(report["machine"])
    assert report["rows"], "no rows"
    for row in report["rows"]:
        assert row["status"] in STATUSES, row
        assert row["id"].startswith(SECTION_IDS), row["id"]
        assert row["comparison"] and row["case"]
        if row["status"] == "measured":
            assert row["ratio"] > 0 and math.isfinite(row["ratio"]), row
            assert row["left_s"] > 0 and row["right_s"] > 0 and row["repeats"] >= 1
            assert row["meets"] is None if row["target"] is None else isinstance(row["meets"], bool)
        else:
            assert row["ratio"] is None and row["note"], row


def test_bench_quick_json_small_sections(capsys) -> None:
    report = _bench(capsys, "--only", "vmap", "--only", "surfaces", "--only", "app", "--repeats", "1")
    _check_rows(report)
    ids = [r["id"] for r in report["rows"]]
    assert ids[:2] == ["vmap/baddbmm.8", "vmap/baddbmm.32"] and ids[-1] == "app/headless"


@pytest.mark.slow  # every section, small sizes: ~20 s of CPU
def test_bench_quick_json(capsys) -> None:
    report = _bench(capsys)
    _check_rows(report)
    ids = {r["id"] for r in report["rows"]}
    assert {"engine/dataloader.mnist1d", "engine/slicing.mnist-size", "batched/sequential.sweep32",
            "batched8/single.optimizers", "presets/solo.activations", "conv/sequential.mnist1d.8"} <= ids


@pytest.mark.parametrize("option", [["--repeats", "0"], ["--threads", "-1"]])
def test_bench_rejects_bad_options(option, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "--quick", *option])
    assert info.value.code == 2
    assert f"argument {option[0]}" in capsys.readouterr().err


def test_bench_is_a_dllab_commands_plugin(capsys) -> None:
    from importlib.metadata import entry_points

    assert [ep.value for ep in entry_points(group="dllab.commands") if ep.name == "bench"] == ["bench.command:register"]
    with pytest.raises(SystemExit) as info:
        main(["bench", "--help"])
    assert info.value.code == 0 and "--quick" in capsys.readouterr().out


def _names_of_bench(source: str) -> list[int]:
    """The lines of `source` that import bench, or name one of its modules as a string."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            modules = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules = [node.value] if node.value.startswith("bench.") else []
        else:
            continue
        if any(m == "bench" or m.startswith("bench.") for m in modules):
            lines.append(node.lineno)
    return lines


def test_the_app_and_the_engine_never_import_bench() -> None:
    """bench sits above tui_lab and engine: neither imports it, nor names one of its modules for
    importlib (`dllab bench` comes in through the `dllab.commands` entry point)."""
    from pathlib import Path

    assert _names_of_bench("import bench.cases\nfrom bench import cases\nimportlib.import_module('bench.cases')") \
        == [1, 2, 3]
    root = Path(__file__).resolve().parent.parent
    found = [f"{path.relative_to(root)}:{line}"
             for path in sorted([*root.joinpath("tui_lab").rglob("*.py"), *root.joinpath("engine").rglob("*.py")])
             for line in _names_of_bench(path.read_text(encoding="utf-8"))]
    assert not found, f"the app or the engine imports bench: {found}"
