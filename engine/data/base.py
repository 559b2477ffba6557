"""The container every dataset loader returns, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from engine.data.preprocess import InputPipeline


class DatasetError(ValueError):
    """A dataset cannot be built: missing files, a bad file, or options that do not fit together."""


_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(eq=False)
class DataSplits:
    """Train / validation / test tensors of one dataset, already preprocessed and on one device.

    ``x`` tensors are float32 of shape ``(N, *input_shape)``; ``y`` is int64 for classification and
    float32 for regression. ``info`` is JSON-able: sizes, seeds, preprocessing, source and notes.
    ``input_transform`` maps raw inputs (as the generator makes them) to the model's inputs, applying
    the same feature scaling and fitted preprocessing as the splits got (e.g. for decision-boundary
    grids of the 2-D toy sets).
    """

    name: str
    task: Literal["classification", "regression"]
    n_classes: int
    input_shape: tuple[int, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_unlabeled: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    input_transform: InputPipeline | None = field(default=None, repr=False)

    def to(self, device: str | torch.device) -> DataSplits:
        """A copy with every tensor on ``device`` (the same object's tensors when already there)."""
        import torch  # here, not at the top: the error above and the dataset facts import without torch

        dev = torch.device(device)
        moved = {name: getattr(self, name).to(dev) for name in _TENSORS}
        unlabeled = None if self.x_unlabeled is None else self.x_unlabeled.to(dev)
        return replace(self, x_unlabeled=unlabeled, **moved)

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def __repr__(self) -> str:
        unl = 0 if self.x_unlabeled is None else len(self.x_unlabeled)
        return (
            f"DataSplits({self.name!r}, {self.task}, classes={self.n_classes}, "
            f"input_shape={self.input_shape}, train={len(self.x_train)}, val={len(self.x_val)}, "
            f"test={len(self.x_test)}, unlabeled={unl}, device={self.device})"
        )
