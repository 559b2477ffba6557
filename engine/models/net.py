"""The network container shared by every model kind: hidden blocks in order, then a head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from engine.models.layers import Dropout


class Block(nn.Module):
    """One hidden layer: ``linear → norm → act → drop``, optionally residual.

    ``linear`` is the weight layer (Linear / DropConnectLinear / Conv1d / Conv2d), ``act`` the
    activation (its output is the block's post-activation output, hooked by diagnostics).
    A residual block returns ``h + drop(act(norm(linear(h))))`` (a post-activation residual:
    the branch ends with the activation, the skip is the identity and needs equal shapes).
    """

    def __init__(
        self,
        linear: nn.Module,
        norm: nn.Module,
        act: nn.Module,
        drop: nn.Module,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.linear = linear
        self.norm = norm
        self.act = act
        self.drop = drop
        self.residual = residual

    def branch(self, h: Tensor) -> Tensor:
        """The block's transformation without the skip connection.

        Identity norm / dropout layers are kept (every variant has the same state_dict keys) but
        not called: a module call costs microseconds, which shows on small models. The layers are
        read at call time, so a layer swapped in later (the gradient check does) takes effect.
        """
        h = self.linear(h)
        if not isinstance(self.norm, nn.Identity):
            h = self.norm(h)
        h = self.act(h)
        if not isinstance(self.drop, nn.Identity):
            h = self.drop(h)
        return h

    def forward(self, h: Tensor) -> Tensor:
        out = self.branch(h)
        return h + out if self.residual else out

    def extra_repr(self) -> str:
        return "residual=True" if self.residual else ""


class Net(nn.Module):
    """Hidden ``blocks`` (conv blocks first, then dense ones) and a linear ``head`` of logits.

    ``forward`` takes ``(N, *input_shape)``. Conv bodies add a channel axis to 1-channel inputs
    (``(L,)`` → ``(1, L)``, ``(H, W)`` → ``(1, H, W)``) and flatten after the last conv block;
    dense bodies flatten the input first. Returns ``(N, n_outputs)``.
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        head: nn.Module,
        input_shape: tuple[int, ...],
        n_outputs: int,
        *,
        n_conv: int = 0,
        add_channel: bool = False,
        input_dropout: float = 0.0,
        kind: str = "mlp",
    ) -> None:
        super().__init__()
        self.input_dropout: nn.Module = Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.input_shape = tuple(input_shape)
        self.n_outputs = n_outputs
        self.n_conv = n_conv
        self.add_channel = add_channel
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(self.input_dropout, nn.Identity):
            x = self.input_dropout(x)
        if self.n_conv == 0:
            x = x.flatten(1)
        elif self.add_channel:
            x = x.unsqueeze(1)
        for i, block in enumerate(self.blocks):
            if i == self.n_conv and i > 0:
                x = x.flatten(1)
            # Block.forward, not block(x): nothing hooks a Block (diagnostics hook its `act`), and
            # a module call's dispatch costs a few µs, 5-10% of a small MLP's forward pass
            x = block.forward(x)
        if self.n_conv > 0 and self.n_conv == len(self.blocks):
            x = x.flatten(1)
        return self.head(x)

    def layer_names(self) -> list[str]:
        """``["block1", …, "blockK", "head"]``: one name per hidden block, then the head."""
        return [f"block{i + 1}" for i in range(len(self.blocks))] + ["head"]

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """``(name, weight layer)`` pairs in the order of ``layer_names()``."""
        layers: list[tuple[str, nn.Module]] = [
            (name, block.linear) for name, block in zip(self.layer_names(), self.blocks, strict=False)
        ]
        return layers + [("head", self.head)]


_MODE_FREE: frozenset[type] = frozenset()


def _mode_free_types() -> frozenset[type]:
    global _MODE_FREE
    if not _MODE_FREE:
        from engine.models.layers import Maxout

        _MODE_FREE = frozenset({
            Net, Block, nn.ModuleList, nn.Sequential, nn.Identity, nn.Flatten, nn.Linear, nn.Conv1d, nn.Conv2d,
            nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
            nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus, nn.LayerNorm,
            nn.GroupNorm, Maxout,
        })
    return _MODE_FREE


def mode_matters(model: nn.Module) -> bool:
    """Whether any module of `model` computes differently in training and eval mode (dropout,
    DropConnect, BatchNorm, anything not known to be mode-free). When none does, evaluation can
    skip ``model.eval()`` / ``model.train()``: each walks every module (tens of µs per call on a
    small MLP, a few % of a run that evaluates often). Exact types: a subclass may read
    ``self.training`` (``DropConnectLinear`` is a Linear that does)."""
    free = _mode_free_types()
    return any(type(m) not in free for m in model.modules())


def count_params(model: nn.Module) -> int:
    """Number of scalar parameters (each shared tensor counted once; buffers not counted)."""
    return sum(p.numel() for p in model.parameters())
