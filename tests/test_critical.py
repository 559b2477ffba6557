"""Critical points: Hessians against known ones, labels, the notes' 1-1-1 net, the `dllab critical` command."""

from __future__ import annotations

import json

import pytest
import torch

from engine.diagnostics.critical import (
    TINY_NETS,
    classify,
    describe_point,
    find_critical_points,
    hessian,
    hessian_eigs,
    negative_curvature_step,
)

F64 = torch.float64


@pytest.mark.parametrize("method", ["func", "autograd"])
def test_the_hessian_of_a_quadratic_is_its_matrix(method):
    g = torch.Generator().manual_seed(0)
    m = torch.randn(4, 4, generator=g, dtype=F64)
    a = m @ m.T - 2 * torch.eye(4, dtype=F64)  # symmetric, indefinite
    b = torch.randn(4, generator=g, dtype=F64)

    def loss(w):
        return 0.5 * w @ a @ w + b @ w

    w = torch.randn(4, generator=g, dtype=F64)
    torch.testing.assert_close(hessian(loss, w, method), a, rtol=1e-12, atol=1e-12)
    ev, _ = hessian_eigs(loss, w, method)
    torch.testing.assert_close(ev, torch.linalg.eigvalsh(a), rtol=1e-10, atol=1e-10)


def test_labels_from_eigenvalues():
    assert classify([1.0, 2.0])[0] == "minimum"
    assert classify([-1.0, -3.0])[0] == "maximum"
    assert classify([-2.0, 2.0])[0] == "saddle"
    assert classify([-2.0, 0.0, 2.0])[0] == "saddle"  # a negative and a positive direction decide
    kind, detail = classify([0.0, 4.0])
    assert kind == "degenerate" and "minimum-like" in detail
    assert classify([0.0, 0.0])[0] == "degenerate"
    assert classify([1e-9, 4.0])[0] == "degenerate"  # ≈ 0 relative to the largest


def test_the_notes_tiny_net_at_its_saddle_and_minima():
    net = TINY_NETS["chain2"]
    saddle = describe_point(net.loss, torch.zeros(2, dtype=F64))
    assert saddle.kind == "saddle" and saddle.grad_norm == 0.0 and saddle.loss == 1.0
    assert saddle.eigenvalues == pytest.approx((-2.0, 2.0))
    assert saddle.escape_direction == pytest.approx((2**-0.5, 2**-0.5))
    for point in ((1.0, 1.0), (2.0, 0.5), (-1.0, -1.0)):
        cp = describe_point(net.loss, torch.tensor(point, dtype=F64))
        x, y = point
        assert cp.kind == "degenerate" and cp.loss == 0.0
        assert cp.eigenvalues == pytest.approx((0.0, 2 * (x * x + y * y)), abs=1e-12)


def test_a_step_along_the_negative_eigenvector_lowers_the_loss_from_1_to_a_quarter():
    net = TINY_NETS["chain2"]
    new, before, after, u = negative_curvature_step(net.loss, torch.zeros(2, dtype=F64), 1.0)
    assert before == 1.0 and after == pytest.approx(0.25)
    torch.testing.assert_close(new, torch.full((2,), 2**-0.5, dtype=F64))
    with pytest.raises(ValueError, match="no negative curvature"):
        negative_curvature_step(net.loss, torch.ones(2, dtype=F64))


def test_the_search_finds_the_saddle_and_points_on_the_curve_of_minima():
    net = TINY_NETS["chain2"]
    points = find_critical_points(net.loss, 2, n_starts=12, seed=0)
    saddles = [p for p in points if p.kind == "saddle"]
    assert len(saddles) == 1 and saddles[0].point == pytest.approx((0.0, 0.0), abs=1e-9)
    minima = [p for p in points if p.kind == "degenerate"]
    assert minima and all(abs(p.point[0] * p.point[1] - 1) < 1e-9 and p.loss < 1e-18 for p in minima)
    assert all(p.grad_norm <= 1e-8 for p in points)
    assert sum(p.count for p in points) <= 12


@pytest.mark.parametrize("name", sorted(TINY_NETS))
def test_known_points_of_each_tiny_net_get_their_label(name):
    net = TINY_NETS[name]
    for point, expected in net.known:
        cp = describe_point(net.loss, torch.tensor(point, dtype=F64))
        assert cp.grad_norm < 1e-12 and cp.kind == expected


def test_the_command_prints_json_and_succeeds(capsys):
    from tui_lab.cli import main

    assert main(["critical", "chain2", "--starts", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["escape"]["loss_after"] == pytest.approx(0.25)
    assert any(p["kind"] == "saddle" for p in out["points"])


def test_the_command_table(capsys):
    from tui_lab.cli import main

    assert main(["critical", "--starts", "4"]) == 0
    text = capsys.readouterr().out
    assert "saddle" in text and "reference points" in text and "1 → 0.25" in text
    assert main(["critical", "nope"]) == 2


# --- starts are counted, reference points are not starts, dropped starts are said ---------------

def test_a_reference_point_no_start_reached_counts_zero_starts():
    from engine.diagnostics.critical import search_critical_points

    net = TINY_NETS["tanh_121"]
    search = search_critical_points(net.loss, net.dim, n_starts=5, seed=0,
                                    reference_points=[list(p) for p, _ in net.known])
    saddle = next(p for p in search.points if p.point == pytest.approx((0.0,) * 4, abs=1e-9))
    assert saddle.kind == "saddle" and saddle.reference and saddle.count == 0  # no start of these 5 ends there
    assert search.n_starts == 5 and search.dropped == {}
    assert sum(p.count for p in search.points) == 5  # only real starts are counted
    assert search.n_reference_only == 1 and search.n_found == len(search.points) - 1
    assert search.summary() == "5 starts, none dropped"


def test_a_reference_point_a_start_reached_keeps_its_start_count():
    from engine.diagnostics.critical import search_critical_points

    net = TINY_NETS["chain2"]
    search = search_critical_points(net.loss, 2, n_starts=1, seed=0, extra_starts=[[1e-3, -1e-3]],
                                    reference_points=[[0.0, 0.0], [1.0, 1.0]])
    assert search.n_starts == 2  # an extra start is a start; a reference point is not
    saddle = next(p for p in search.points if p.kind == "saddle")
    assert saddle.reference and saddle.count == 1
    assert sum(p.count for p in search.points) == 2 - search.n_dropped


def test_dropped_starts_are_counted_by_reason():
    from engine.diagnostics.critical import search_critical_points

    net = TINY_NETS["tanh_121"]
    search = search_critical_points(net.loss, net.dim, n_starts=48, box=float("nan"), reference_points=[[0.0] * 4])
    assert search.dropped == {"non-finite": 48} and search.n_found == 0
    assert search.summary() == "48 starts, 48 dropped (all of them): non-finite"
    assert [(p.kind, p.count, p.reference) for p in search.points] == [("saddle", 0, True)]

    def bowl_with_a_hole(w):  # NaN where w0 > 1; elsewhere one minimum, at the origin
        return torch.where(w[0] > 1, torch.tensor(float("nan"), dtype=w.dtype), (w * w).sum())

    search = search_critical_points(bowl_with_a_hole, 2, n_starts=40, seed=3)
    starts = (torch.rand(40, 2, generator=torch.Generator().manual_seed(3), dtype=F64) * 2 - 1) * 2.0
    holes = int((starts[:, 0] > 1).sum())
    assert 0 < holes < 40 and search.dropped == {"non-finite": holes}
    assert [p.count for p in search.points] == [40 - holes]
    assert search.summary() == f"40 starts, {holes} dropped: non-finite"

    search = search_critical_points(lambda w: w[0] ** 3 / 3 + w[0] + w[1] ** 2, 2, n_starts=3)  # ‖∇L‖ ≥ 1 everywhere
    assert search.points == [] and search.dropped == {"not converged": 3}
    assert search.summary().startswith("3 starts, 3 dropped (all of them): not converged (‖∇L‖ > ")


def test_the_command_marks_reference_points_and_counts_only_starts(capsys):
    from tui_lab.cli import main

    assert main(["critical", "tanh_121", "--starts", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["starts"] == 5 and out["dropped"] == {}
    assert sum(p["count"] for p in out["points"]) == 5
    ref = [p for p in out["points"] if p["reference"]]
    assert len(ref) == 1 and ref[0]["kind"] == "saddle" and ref[0]["count"] == 0

    assert main(["critical", "tanh_121", "--starts", "5"]) == 0
    text = capsys.readouterr().out
    assert "5 starts, none dropped" in text and "reference point(s) no start reached" in text
    assert "0 ref" in text and "ref: a reference point" in text
