"""Decision boundary of a classifier on 2-D inputs: the predicted class over a grid of the plane.

The grid covers the training points in their *raw* coordinates (as the toy generator made them,
before feature scaling and preprocessing), with a margin; each cell centre goes through
``DataSplits.input_transform`` (the same scaling and fitted preprocessing the splits got) and the
model, in eval mode. The raw training points are recovered by inverting that transform, which is
affine for every preprocessing method (it is measured on a few points, so any affine pipeline
works); where it cannot be inverted the plane is drawn in model-input coordinates instead.

``boundary_event`` is what the loop calls: a ``Boundary`` event for 2-D classification data, or
None for every other run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.data import DataSplits
from engine.events import Boundary

GRID_X = 60
GRID_Y = 30
MARGIN = 0.1
"""Share of the data's extent added on each side of the plane."""
MAX_POINTS = 400
"""Training points sent with each event (an evenly spaced subset of larger sets)."""


@dataclass(frozen=True)
class BoundaryGrid:
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    grid: list[list[int]]
    """``ny`` rows of ``nx`` predicted classes; row 0 is the top of the plane (the largest y)."""
    points: list[tuple[float, float, int]]
    """(x, y, class) of training points, in the plane's coordinates."""
    raw: bool
    """True when the plane is in raw input coordinates, False when in model-input coordinates."""


def applies(data: DataSplits) -> bool:
    """A boundary can be drawn: classification on inputs of shape (2,)."""
    return data.task == "classification" and tuple(data.input_shape) == (2,) and len(data.x_train) > 0


def _affine_inverse(data: DataSplits) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(A, b) with model_input = raw @ A + b, measured through input_transform; None if singular."""
    transform = data.input_transform
    if transform is None or tuple(getattr(transform, "raw_shape", (2,))) != (2,):
        return None
    probe = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    out = transform(probe).double().cpu()
    if out.shape != (3, 2):
        return None
    b = out[0]
    a = torch.stack([out[1] - b, out[2] - b])  # rows: images of the unit vectors
    if abs(float(torch.linalg.det(a))) < 1e-12:
        return None
    return a, b


def raw_training_points(data: DataSplits) -> tuple[torch.Tensor, bool]:
    """The training inputs in raw coordinates (float64, CPU) and whether that succeeded."""
    x = data.x_train.detach().double().cpu().reshape(-1, 2)
    inverse = _affine_inverse(data)
    if inverse is None:
        return x, False
    a, b = inverse
    return torch.linalg.solve(a.T, (x - b).T).T, True


def _subset(n: int, limit: int) -> torch.Tensor:
    if n <= limit:
        return torch.arange(n)
    return torch.linspace(0, n - 1, limit).round().long()


@torch.no_grad()
def decision_grid(
    model: nn.Module, data: DataSplits, nx: int = GRID_X, ny: int = GRID_Y, max_points: int = MAX_POINTS
) -> BoundaryGrid:
    """The predicted class over an ``nx`` × ``ny`` grid of the plane, and the training points."""
    if not applies(data):
        raise ValueError(f"a decision boundary needs 2-D classification inputs, not {data.input_shape}")
    raw, is_raw = raw_training_points(data)
    lo, hi = raw.amin(0), raw.amax(0)
    span = (hi - lo).clamp_min(1e-6)
    lo, hi = lo - MARGIN * span, hi + MARGIN * span
    xs = lo[0] + (torch.arange(nx, dtype=torch.float64) + 0.5) * (hi[0] - lo[0]) / nx
    ys = hi[1] - (torch.arange(ny, dtype=torch.float64) + 0.5) * (hi[1] - lo[1]) / ny  # top row first
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    plane = torch.stack([gx.flatten(), gy.flatten()], dim=1)
    inputs = data.input_transform(plane.float()) if is_raw and data.input_transform is not None else plane.float()
    was_training = model.training
    model.eval()
    try:
        pred = model(inputs.to(data.device)).argmax(dim=1).reshape(ny, nx)
    finally:
        model.train(was_training)
    keep = _subset(len(raw), max_points)
    labels = data.y_train.detach().cpu()[keep].tolist()
    pts = raw[keep].tolist()
    return BoundaryGrid(
        x_range=(float(lo[0]), float(hi[0])),
        y_range=(float(lo[1]), float(hi[1])),
        grid=pred.cpu().tolist(),
        points=[(float(p[0]), float(p[1]), int(c)) for p, c in zip(pts, labels, strict=True)],
        raw=is_raw,
    )


def boundary_event(run_id: str, step: int, model: nn.Module, data: DataSplits) -> Boundary | None:
    """A Boundary event for 2-D classification data (None for any other run)."""
    if not applies(data):
        return None
    g = decision_grid(model, data)
    return Boundary(
        run_id=run_id,
        step=step,
        x_range=list(g.x_range),
        y_range=list(g.y_range),
        grid=g.grid,
        points=[list(p) for p in g.points],
        n_classes=data.n_classes,
        raw=g.raw,
    )
