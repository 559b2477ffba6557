"""`dllab bench`: it runs and prints well-formed rows (no timing is asserted: timings are the
benchmark's output, never a unit test's pass condition)."""

from __future__ import annotations

import json
import math

import pytest

from tui_lab.cli import main

STATUSES = {"measured", "not measured", "not available"}
SECTION_IDS = ("presets/", "engine/dataloader.", "engine/slicing.", "batched/sequential.", "batched8/single.", "fast/plain.",
               "vmap/baddbmm.", "conv/sequential.", "surfaces/sequential.", "app/headless")


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
