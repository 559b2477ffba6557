"""Members of a group that differ in one setting (a loss, an activation): their rows taken apart by
that setting, each part computed by its own function, and put back in member order."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor


def group_rows(keys: Sequence[Hashable]) -> list[list[int]]:
    """The rows of each distinct key, keys in the order they first come."""
    groups: dict[Hashable, list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    return list(groups.values())


class RowSplit:
    """Rows of a member axis taken apart by group and put back together in member order."""

    def __init__(self, groups: Sequence[Sequence[int]], device: torch.device | str) -> None:
        self.groups = [list(g) for g in groups]
        """Each group's rows (Python ints)."""
        self.rows = [torch.tensor(g, dtype=torch.long, device=device) for g in self.groups]
        self.inverse = torch.argsort(torch.cat(self.rows))

    def take(self, x: Tensor, k: int) -> Tensor:
        """Group `k`'s rows of `x` (its leading axis is the member axis)."""
        return x.index_select(0, self.rows[k])

    def join(self, parts: Sequence[Tensor]) -> Tensor:
        """The groups' results (in group order) back in member order."""
        return torch.cat(list(parts)).index_select(0, self.inverse)
