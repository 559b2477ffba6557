"""The decision-boundary grid of 2-D classifiers, and its event."""

from __future__ import annotations

import json

import pytest
import torch

from engine.data import load_data
from engine.diagnostics.boundary import boundary_event, decision_grid, raw_training_points
from engine.events import Boundary, from_dict, to_dict
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.runs.store import RunStore
from engine.training.loop import train


def _model(data, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelSpec(hidden=[8]), data.input_shape, data.n_classes)


@pytest.mark.parametrize("preprocess", ["none", "standardize", "minmax", "pca_whiten", "zca_whiten"])
def test_raw_points_are_recovered_through_any_affine_preprocessing(preprocess: str) -> None:
    raw = load_data(DataSpec(name="spiral", n_samples=200), seed=3)
    data = load_data(DataSpec(name="spiral", n_samples=200, preprocess=preprocess, scale_features=5.0), seed=3)
    reference = raw.x_train.double()  # as generated: before feature scaling and preprocessing
    points, is_raw = raw_training_points(data)
    assert is_raw
    assert torch.allclose(points, reference, atol=1e-4)


def test_grid_covers_the_data_and_matches_the_model_cell_by_cell() -> None:
    data = load_data(DataSpec(name="moons", n_samples=300, preprocess="standardize"), seed=0)
    model = _model(data)
    g = decision_grid(model, data, nx=12, ny=5)
    assert len(g.grid) == 5 and all(len(row) == 12 for row in g.grid)
    raw, _ = raw_training_points(data)
    assert g.x_range[0] < float(raw[:, 0].min()) and g.x_range[1] > float(raw[:, 0].max())
    assert g.y_range[0] < float(raw[:, 1].min()) and g.y_range[1] > float(raw[:, 1].max())
    # the top-left cell centre, pushed through the same preprocessing, gives the same class
    dx = (g.x_range[1] - g.x_range[0]) / 12
    dy = (g.y_range[1] - g.y_range[0]) / 5
    for row, col in [(0, 0), (4, 11), (2, 6)]:
        centre = torch.tensor([[g.x_range[0] + (col + 0.5) * dx, g.y_range[1] - (row + 0.5) * dy]])
        with torch.no_grad():
            expected = int(model.eval()(data.input_transform(centre)).argmax(1))
        assert g.grid[row][col] == expected
    assert len(g.points) == len(data.x_train)
    assert {c for _, _, c in g.points} == {0, 1}
    assert all(c == int(y) for (_, _, c), y in zip(g.points, data.y_train.tolist(), strict=True))


def test_points_are_capped_and_model_mode_is_kept() -> None:
    data = load_data(DataSpec(name="blobs", n_samples=2000), seed=1)
    model = _model(data).train()
    g = decision_grid(model, data, max_points=50)
    assert len(g.points) == 50 and model.training


def test_boundary_event_only_for_2d_classification() -> None:
    reg = load_data(DataSpec(name="regression_outliers", n_samples=100), seed=0)
    torch.manual_seed(0)
    assert boundary_event("r", 0, build_model(ModelSpec(hidden=[4]), reg.input_shape, 1), reg) is None
    digits = load_data(DataSpec(name="digits"), seed=0)
    assert boundary_event("r", 0, _model(digits), digits) is None
    spiral = load_data(DataSpec(name="spiral", n_samples=150), seed=0)
    event = boundary_event("r", 7, _model(spiral), spiral)
    assert isinstance(event, Boundary) and event.step == 7 and event.n_classes == 3
    assert len(event.grid) == 30 and len(event.grid[0]) == 60


def test_boundary_event_round_trips_through_json_and_the_store(tmp_path) -> None:
    spiral = load_data(DataSpec(name="spiral", n_samples=150), seed=0)
    event = boundary_event("r", 1, _model(spiral), spiral)
    assert event is not None
    back = from_dict(json.loads(json.dumps(to_dict(event))))
    assert back == event
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.record(event)
        assert store.series("r").boundaries == [event]


def test_loop_emits_boundaries_for_spiral_runs_and_none_for_others() -> None:
    spec = RunSpec(
        recipe=Recipe(
            data=DataSpec(name="spiral", n_samples=200),
            model=ModelSpec(hidden=[8]),
            train=TrainSpec(steps=20, eval_every=10, diagnostics_every=10),
        ),
        variant="v",
    )
    events: list = []
    train(spec, events.append)
    planes = [e for e in events if isinstance(e, Boundary)]
    assert [p.step for p in planes] == [0, 10, 20]  # with the diagnostics; once at the end
    default = spec.model_copy(update={"recipe": spec.recipe.model_copy(update={"train": TrainSpec(steps=20,
                                                                                                  eval_every=10)})})
    events = []
    train(default, events.append)
    assert [e.step for e in events if isinstance(e, Boundary)] == [0, 20]  # diagnostics 50+ steps apart
    other = spec.model_copy(update={"recipe": spec.recipe.model_copy(update={"data": DataSpec(name="digits")})})
    events = []
    train(other, events.append)
    assert not any(isinstance(e, Boundary) for e in events)
