"""Networks built from a ModelSpec: shapes, layers, initialization and determinism."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from engine.models import DropConnectLinear, Maxout, Net, build_model, count_params, initialize
from engine.recipe.config import ModelSpec

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "maxout"]
NORMS = ["none", "batch", "layer"]


def built(seed: int = 0, input_shape: tuple[int, ...] = (10,), n_outputs: int = 3, **fields) -> Net:
    torch.manual_seed(seed)
    return build_model(ModelSpec(**fields), input_shape, n_outputs)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def hidden_outputs(model: Net, x: torch.Tensor) -> list[torch.Tensor]:
    """Post-activation outputs of each block (hooked on ``block.act``)."""
    outs: list[torch.Tensor] = []
    handles = [b.act.register_forward_hook(lambda _m, _i, o: outs.append(o)) for b in model.blocks]
    model(x)
    for h in handles:
        h.remove()
    return outs


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("input_shape", [(2,), (40,), (1, 8, 8)])
def test_mlp_shapes(activation: str, norm: str, input_shape: tuple[int, ...]) -> None:
    model = built(input_shape=input_shape, n_outputs=5, hidden=[7, 6], activation=activation, norm=norm)
    x = torch.randn(4, *input_shape)
    assert model(x).shape == (4, 5)
    model.eval()
    assert model(x).shape == (4, 5)
    assert model.layer_names() == ["block1", "block2", "head"]
    assert [b.linear.in_features for b in model.blocks] == [math.prod(input_shape), 7]
    pieces = 2 if activation == "maxout" else 1
    assert [b.linear.out_features for b in model.blocks] == [7 * pieces, 6 * pieces]
    outs = hidden_outputs(model, x)
    assert [o.shape for o in outs] == [(4, 7), (4, 6)]
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 6


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("input_shape", [(40,), (12, 12), (3, 12, 12)])
def test_cnn_shapes(activation: str, norm: str, input_shape: tuple[int, ...]) -> None:
    model = built(
        input_shape=input_shape,
        n_outputs=4,
        kind="cnn",
        channels=[4, 5],
        kernel_size=3,
        stride=2,
        hidden=[6],
        activation=activation,
        norm=norm,
        dropout=0.1,
    )
    conv = nn.Conv1d if len(input_shape) == 1 else nn.Conv2d
    assert [type(b.linear) for b in model.blocks] == [conv, conv, nn.Linear]
    x = torch.randn(3, *input_shape)
    assert model(x).shape == (3, 4)
    model.eval()
    assert model(x).shape == (3, 4)
    outs = hidden_outputs(model, x)
    assert [o.shape[1] for o in outs] == [4, 5, 6]
    assert model.layer_names() == ["block1", "block2", "block3", "head"]


def test_cnn_without_dense_blocks_and_with_dropconnect() -> None:
    model = built(input_shape=(3, 8, 8), kind="cnn", channels=[4], hidden=[], dropconnect=0.3, norm="batch")
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    assert isinstance(model.blocks[0].norm, nn.BatchNorm2d)
    assert not any(isinstance(m, DropConnectLinear) for m in model.modules())  # convs keep plain weights
    layer = built(input_shape=(3, 8, 8), kind="cnn", channels=[4], hidden=[5], norm="layer")
    assert isinstance(layer.blocks[0].norm, nn.GroupNorm) and layer.blocks[0].norm.num_groups == 1
    assert isinstance(layer.blocks[1].norm, nn.LayerNorm)


def test_cnn_that_shrinks_input_to_nothing_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="shrinks"):
        built(input_shape=(8,), kind="cnn", channels=[4] * 6, kernel_size=5, stride=2, padding=0)
    with pytest.raises(ValueError, match="input shape"):
        built(input_shape=(1, 2, 3, 4), kind="cnn")


def test_mnist1d_cnn_shape() -> None:
    spec = ModelSpec(kind="cnn", channels=[25, 25, 25], kernel_size=5, stride=2, padding=1, hidden=[])
    torch.manual_seed(0)
    model = build_model(spec, (40,), 10)
    convs = [b.linear for b in model.blocks]
    assert len(convs) == 3 and all(isinstance(c, nn.Conv1d) for c in convs)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 25), (25, 25), (25, 25)]
    assert all(c.kernel_size == (5,) and c.stride == (2,) and c.padding == (1,) for c in convs)
    assert all(isinstance(b.act, nn.ReLU) for b in model.blocks)
    assert isinstance(model.head, nn.Linear) and (model.head.in_features, model.head.out_features) == (
        100,
        10,
    )
    outs = hidden_outputs(model, torch.randn(2, 40))
    assert [tuple(o.shape) for o in outs] == [(2, 25, 19), (2, 25, 9), (2, 25, 4)]
    assert count_params(model) == (25 * 5 + 25) + 2 * (25 * 25 * 5 + 25) + (100 * 10 + 10)


def test_linear_model() -> None:
    model = built(input_shape=(1, 4, 5), n_outputs=3, kind="linear", hidden=[50])
    assert len(model.blocks) == 0 and model.layer_names() == ["head"]
    assert model.head.in_features == 20
    x = torch.randn(6, 1, 4, 5)
    torch.testing.assert_close(model(x), model.head(x.flatten(1)))
    assert count_params(model) == 20 * 3 + 3


def test_depth_width_shortcut_and_count_params() -> None:
    model = built(input_shape=(10,), n_outputs=3, depth=3, width=8)
    assert [b.linear.out_features for b in model.blocks] == [8, 8, 8]
    assert count_params(model) == (10 * 8 + 8) + 2 * (8 * 8 + 8) + (8 * 3 + 3)


# --- layers -------------------------------------------------------------------------------------


def test_maxout_matches_manual_max() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 12)
    out = Maxout(3)(x)
    assert out.shape == (5, 4)
    manual = torch.stack([x[:, 3 * j : 3 * j + 3].max(dim=1).values for j in range(4)], dim=1)
    torch.testing.assert_close(out, manual)
    conv_x = torch.randn(2, 6, 7)  # channels grouped for conv inputs
    torch.testing.assert_close(Maxout(2)(conv_x), torch.maximum(conv_x[:, 0::2], conv_x[:, 1::2]))
    with pytest.raises(ValueError):
        Maxout(4)(x[:, :10])


def test_maxout_block_width() -> None:
    model = built(input_shape=(10,), hidden=[9], activation="maxout", maxout_pieces=4)
    block = model.blocks[0]
    assert block.linear.out_features == 36
    x = torch.randn(3, 10)
    h = hidden_outputs(model, x)[0]
    assert h.shape == (3, 9)
    torch.testing.assert_close(h, block.linear(x).view(3, 9, 4).amax(-1))


def test_dropconnect_eval_is_plain_linear_and_train_differs() -> None:
    torch.manual_seed(0)
    layer = DropConnectLinear(20, 10, p=0.5)
    x = torch.randn(8, 20)
    plain = F.linear(x, layer.weight, layer.bias)
    layer.eval()
    torch.testing.assert_close(layer(x), plain)
    layer.train()
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, plain) and not torch.allclose(a, b)


def test_dropconnect_inverted_scaling_and_expectation() -> None:
    torch.manual_seed(0)
    p = 0.3
    layer = DropConnectLinear(6, 5, p=p, bias=False).train()
    eye = torch.eye(6)  # row j of the output is column j of the (masked) weight
    samples = torch.stack([layer(eye).T for _ in range(4000)])
    w = layer.weight.detach()
    kept = samples != 0
    torch.testing.assert_close(samples[kept], (w / (1 - p)).expand_as(samples)[kept])
    assert abs(1 - kept.float().mean().item() - p) < 0.02
    torch.testing.assert_close(samples.mean(0), w, atol=0.06 * w.abs().max().item(), rtol=0.0)


def test_dropconnect_model_eval_equals_plain_model() -> None:
    dc = built(hidden=[16, 16], dropconnect=0.5)
    plain = built(hidden=[16, 16])
    assert isinstance(dc.blocks[0].linear, DropConnectLinear)
    assert isinstance(dc.head, nn.Linear) and not isinstance(dc.head, DropConnectLinear)
    x = torch.randn(4, 10)
    torch.testing.assert_close(dc.eval()(x), plain.eval()(x))


def test_dropout_inactive_in_eval() -> None:
    noisy = built(hidden=[32, 32], dropout=0.5, input_dropout=0.3)
    clean = built(hidden=[32, 32])
    x = torch.randn(16, 10)
    noisy.train()
    assert not torch.allclose(noisy(x), noisy(x))
    noisy.eval()
    torch.testing.assert_close(noisy(x), noisy(x))
    torch.testing.assert_close(noisy(x), clean.eval()(x))


def test_residual_block_adds_its_input() -> None:
    model = built(hidden=[8, 8, 5], residual=True, activation="tanh", norm="layer")
    assert [b.residual for b in model.blocks] == [False, True, False]  # only 8 → 8
    h = torch.randn(4, 8)
    block = model.blocks[1]
    torch.testing.assert_close(block(h), h + block.act(block.norm(block.linear(h))))
    torch.testing.assert_close(block(h), h + block.branch(h))
    plain = built(hidden=[8, 8, 5], activation="tanh", norm="layer")
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), plain.state_dict().values(), strict=True)
    )
    x = torch.randn(4, 10)
    assert not torch.allclose(model(x), plain(x))


def test_residual_conv_block_with_same_shape() -> None:
    model = built(
        input_shape=(2, 6, 6), kind="cnn", channels=[4, 4], kernel_size=3, stride=1, hidden=[], residual=True
    )
    assert [b.residual for b in model.blocks] == [False, True]
    h = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(model.blocks[1](h), h + model.blocks[1].branch(h))


def test_functional_call_and_deepcopy() -> None:
    model = built(hidden=[12, 12], norm="batch", dropconnect=0.2, activation="maxout").eval()
    x = torch.randn(5, 10)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.testing.assert_close(functional_call(model, params, (x,)), model(x))
    params = {k: v * 2 for k, v in params.items()}
    assert not torch.allclose(functional_call(model, params, (x,)), model(x))
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(x), model(x))
    model.train()
    loss = functional_call(model, dict(model.named_parameters()), (x,)).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


# --- initialization -------------------------------------------------------------------------------


def test_default_init_is_pytorch_default() -> None:
    model = built(input_shape=(10,), hidden=[7], init="default")
    torch.manual_seed(0)
    first, head = nn.Linear(10, 7), nn.Linear(7, 3)
    torch.testing.assert_close(model.blocks[0].linear.weight, first.weight)
    torch.testing.assert_close(model.blocks[0].linear.bias, first.bias)
    torch.testing.assert_close(model.head.weight, head.weight)


@pytest.mark.parametrize("init", ["zeros", "constant"])
def test_symmetric_init_makes_units_identical_and_sgd_keeps_them(init: str) -> None:
    model = built(
        input_shape=(10,),
        n_outputs=4,
        hidden=[6, 5],
        activation="tanh",
        init=init,
        init_value=0.1,
        bias_init=0.05,
    )
    for layer in [b.linear for b in model.blocks] + [model.head]:
        expected = 0.0 if init == "zeros" else 0.1
        assert torch.all(layer.weight == expected) and torch.all(layer.bias == 0.05)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(32, 10), torch.randint(0, 4, (32,))
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for h in hidden_outputs(model, torch.randn(16, 10)):
        assert torch.allclose(h, h[:, :1].expand_as(h))  # every unit of a layer computes the same thing
    w = model.blocks[1].linear.weight
    assert torch.allclose(w, w[:1].expand_as(w))
    if init == "constant":
        assert not torch.allclose(model.head.weight, model.head.weight[:1].expand_as(model.head.weight))


def test_normal_and_uniform_init() -> None:
    model = built(input_shape=(300,), hidden=[400], init="normal", init_std=0.05, bias_init=0.2)
    w = model.blocks[0].linear.weight
    assert abs(w.mean().item()) < 0.002 and abs(w.std().item() / 0.05 - 1) < 0.02
    assert torch.all(model.blocks[0].linear.bias == 0.2) and torch.all(model.head.bias == 0.2)
    model = built(input_shape=(300,), hidden=[400], init="uniform", init_std=0.05)
    w = model.blocks[0].linear.weight
    assert w.abs().max().item() <= 0.05 and abs(w.std().item() / (0.05 / math.sqrt(3)) - 1) < 0.02


def _std(init: str, activation: str = "relu", **fields) -> tuple[float, int, int]:
    model = built(input_shape=(300,), hidden=[500], init=init, activation=activation, **fields)
    w = model.blocks[0].linear.weight
    return w.std().item(), w.shape[1], w.shape[0]


@pytest.mark.parametrize("init", ["xavier_normal", "xavier_uniform"])
def test_xavier_std(init: str) -> None:
    std, fan_in, fan_out = _std(init, "identity")
    assert abs(std / math.sqrt(2 / (fan_in + fan_out)) - 1) < 0.02
    std_tanh, _, _ = _std(init, "tanh")
    assert abs(std_tanh / (5 / 3 * math.sqrt(2 / (fan_in + fan_out))) - 1) < 0.02
    std_gain, _, _ = _std(init, "tanh", init_gain=0.5)
    assert abs(std_gain / (0.5 * math.sqrt(2 / (fan_in + fan_out))) - 1) < 0.02


@pytest.mark.parametrize("init", ["kaiming_normal", "kaiming_uniform"])
def test_kaiming_std(init: str) -> None:
    for activation in ("relu", "elu", "gelu"):
        std, fan_in, _ = _std(init, activation)
        assert abs(std / math.sqrt(2 / fan_in) - 1) < 0.02, activation
    std, fan_in, _ = _std(init, "maxout")  # a max of linear pieces: gain 1, like a linear unit
    assert abs(std / math.sqrt(1 / fan_in) - 1) < 0.02
    std, fan_in, _ = _std(init, "leaky_relu", leaky_slope=0.2)
    assert abs(std / math.sqrt(2 / (1 + 0.04) / fan_in) - 1) < 0.02
    std, fan_in, _ = _std(init, "sigmoid")
    assert abs(std / math.sqrt(1 / fan_in) - 1) < 0.02
    std, fan_in, _ = _std(init, "relu", init_gain=3.0)
    assert abs(std / (3.0 / math.sqrt(fan_in)) - 1) < 0.02


def test_kaiming_conv_uses_receptive_field() -> None:
    model = built(
        input_shape=(8, 20, 20), kind="cnn", channels=[64], kernel_size=5, hidden=[], init="kaiming_normal"
    )
    w = model.blocks[0].linear.weight
    assert abs(w.std().item() / math.sqrt(2 / (8 * 25)) - 1) < 0.03


def test_sparse_init_zero_share() -> None:
    model = built(input_shape=(200,), hidden=[300], init="sparse", sparse_fraction=0.9, init_std=0.1)
    w = model.blocks[0].linear.weight
    assert torch.all((w == 0).sum(dim=1) == 180)  # per output unit
    nonzero = w[w != 0]
    assert abs(nonzero.std().item() / 0.1 - 1) < 0.03
    head = model.head.weight  # 300 → 3: each unit keeps 30 inputs
    assert torch.all((head == 0).sum(dim=1) == 270)
    tiny = built(input_shape=(2,), hidden=[4], init="sparse", sparse_fraction=0.9)
    assert torch.all((tiny.blocks[0].linear.weight != 0).sum(dim=1) == 1)  # never a unit without inputs


def test_norm_layers_start_at_identity() -> None:
    model = built(hidden=[8], norm="batch", init="normal")
    norm = model.blocks[0].norm
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    with torch.no_grad():
        norm.weight.fill_(3.0)
    initialize(model, ModelSpec(hidden=[8], norm="batch", init="normal"))
    assert torch.all(norm.weight == 1)


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["default", "normal", "kaiming_uniform", "sparse"])
def test_same_seed_same_weights(init: str) -> None:
    a, b = weights(built(3, hidden=[20, 20], init=init)), weights(built(3, hidden=[20, 20], init=init))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = weights(built(4, hidden=[20, 20], init=init))
    assert not torch.equal(a["blocks.0.linear.weight"], c["blocks.0.linear.weight"])


@pytest.mark.parametrize("init", ["default", "xavier_normal", "sparse"])
def test_shape_free_settings_do_not_change_initial_weights(init: str) -> None:
    base = weights(built(1, hidden=[16, 16], init=init))
    for fields in (
        {"dropout": 0.5},
        {"input_dropout": 0.2},
        {"dropconnect": 0.4},
        {"residual": True},
        {"dropout": 0.3, "dropconnect": 0.1, "residual": True},
    ):
        other = weights(built(1, hidden=[16, 16], init=init, **fields))
        assert other.keys() == base.keys()
        assert all(torch.equal(base[k], other[k]) for k in base), fields
    normed = weights(built(1, hidden=[16, 16], init=init, norm="batch"))
    assert all(torch.equal(base[k], normed[k]) for k in base)


def test_cnn_dropout_does_not_change_initial_weights() -> None:
    kw = {"input_shape": (40,), "kind": "cnn", "channels": [8, 8], "hidden": [10], "init": "kaiming_normal"}
    a, b = weights(built(2, **kw)), weights(built(2, dropout=0.4, dropconnect=0.3, **kw))
    assert all(torch.equal(a[k], b[k]) for k in a)
