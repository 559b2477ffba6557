"""The benchmark's comparisons, each a set of sides timed in turns; the table of ratios.

Rows (``id``: what is divided by what):

* ``engine/dataloader.<set>``: one dllab run (``engine.training.loop.train``) ÷ the textbook DataLoader
  loop (:func:`bench.baselines.dataloader_loop`), per epoch, same model / data / device (epochs
  after the first; the whole run's ratio, with what a run does once, is given beside it);
* ``engine/slicing.<set>``: the same run ÷ a plain loop that already slices device tensors;
* ``batched/sequential.<case>``: N runs trained as one batched model (``engine.batched``) ÷ the
  same N runs one after another (each the solo loop);
* ``batched8/single.optimizers``: the 8-variant optimizer comparison, batched ÷ one variant alone
  (in this process, one thread);
* ``batched8/single.runner``: the same comparison ÷ one variant as the lab runs them, through the
  runner with its own workers and threads (training span from the store; full mode only);
* ``vmap/baddbmm.<M>``: a stacked MLP's forward + backward with ``torch.func.vmap`` ÷ with
  batched matmuls (why ``engine.batched`` uses the latter);
* ``conv/sequential.<case>.<M>``: M small CNNs as one convolution with ``groups=M`` ÷ the same
  M one after another, forward + backward (whether CNN variants should batch; they train solo);
* ``surfaces/sequential.64``: 64 optimizer paths on a 2-D surface, batched ÷ one by one
  (``engine.surfaces``; "not available" when that module has no batched runner);
* ``app/headless``, ``app/headless-total``: a comparison with the app open ÷ the same headless:
  the training (first run start to last run end, from the store) and end to end.

Every side gets the data loaded beforehand (loading is not what is measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.baselines import dataloader_loop, slicing_loop
from bench.rows import Row, measured_row, not_row
from bench.service_latency import service_rows
from bench.timing import Timing, interleaved, interleaved_marked, paired_ratio
from engine.data import load_data
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec


def _noop(_event: object) -> None:
    return None


# -- 1, 2: the engine against plain loops --------------------------------------------------------

@dataclass(frozen=True)
class LoopCase:
    name: str
    data: DataSpec
    model: ModelSpec
    epochs: int
    quick_epochs: int
    size: str  # "tiny" | "larger": which targets apply
    lr: float = 0.05
    batch_size: int = 100


LOOP_CASES = [
    LoopCase("mnist1d", DataSpec(name="mnist1d", preprocess="standardize"), ModelSpec(hidden=[100, 100]),
             epochs=10, quick_epochs=2, size="tiny"),
    LoopCase("digits", DataSpec(name="digits", preprocess="standardize"), ModelSpec(hidden=[100, 100]),
             epochs=20, quick_epochs=2, size="tiny"),
    LoopCase("mnist-size", DataSpec(name="random", n_samples=25_000, n_features=784, n_classes=10),
             ModelSpec(hidden=[256, 256]), epochs=4, quick_epochs=2, size="larger"),
]
QUICK_MNIST_SAMPLES = 2_500
TARGETS = {("dataloader", "tiny"): 0.70, ("dataloader", "larger"): 0.95,
           ("slicing", "tiny"): 1.25, ("slicing", "larger"): 1.10}


def engine_side(spec: RunSpec, data: Any, device: str) -> Callable[[Callable[[], None]], None]:
    """One dllab run that marks the end of each epoch: its evaluation event at an epoch's last step."""
    from engine.events import EvalMetrics, RunStarted
    from engine.training.loop import train

    def run(mark: Callable[[], None]) -> None:
        per_epoch = [0]

        def on_event(event: object) -> None:
            if isinstance(event, RunStarted):
                per_epoch[0] = event.steps_per_epoch
            elif isinstance(event, EvalMetrics) and event.step > 0 and event.step % per_epoch[0] == 0:
                mark()

        train(spec, on_event, device=device, data=data)

    return run


def loop_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    """Epoch time: from the end of the first epoch to the end of the last, ÷ the epochs between.

    What a run does once (the engine's evaluation before the first step and its diagnostics there,
    building the model, the test evaluation and the end's diagnostics) is left out of the ratio
    with a target and given as the whole run's ratio beside it."""
    rows: list[Row] = []
    for case in LOOP_CASES:
        data_spec = case.data
        if quick and case.name == "mnist-size":
            data_spec = data_spec.model_copy(update={"n_samples": QUICK_MNIST_SAMPLES})
        data = load_data(data_spec, seed=0, device=device)
        epochs = case.quick_epochs if quick else case.epochs
        spec = RunSpec(recipe=Recipe(data=data_spec, model=case.model,
                                     train=TrainSpec(optimizer="sgd", lr=case.lr, batch_size=case.batch_size,
                                                     epochs=epochs, seed=0)), variant="bench")
        kw = {"epochs": epochs, "batch_size": case.batch_size, "lr": case.lr}
        sides = {
            "engine": engine_side(spec, data, device),
            "dataloader": lambda mark, data=data, case=case, kw=kw: dataloader_loop(data, case.model, on_epoch=mark, **kw),
            "slicing": lambda mark, data=data, case=case, kw=kw: slicing_loop(data, case.model, on_epoch=mark, **kw),
        }
        t = interleaved_marked(sides, repeats, device=device)
        dims = "-".join(str(n) for n in [math.prod(data.input_shape), *case.model.hidden_sizes, data.n_classes])
        what = (f"{case.name} MLP {dims}, {len(data.x_train)} train, batch {case.batch_size}, {epochs} epochs "
                f"(timed: epochs 2-{epochs})")
        for other in ("dataloader", "slicing"):
            label = "DataLoader loop" if other == "dataloader" else "slicing loop"
            row = measured_row(f"engine/{other}.{case.name}", f"dllab ÷ {label}, per epoch", what,
                               t["engine"].between, t[other].between, per=epochs - 1, unit="s/epoch",
                               target=TARGETS[(other, case.size)])
            whole = paired_ratio(t["engine"].run.wall, t[other].run.wall)
            row.extra["whole_run_ratio"] = whole
            row.note = f"whole run, with what a run does once: {whole:.2f}"
            rows.append(row)
    return rows


# -- 3: batched variants against sequential runs ----------------------------------------------------

def _spec(data: DataSpec, model: ModelSpec, variant: str, **train: Any) -> RunSpec:
    return RunSpec(recipe=Recipe(data=data, model=model, train=TrainSpec(**train)), variant=variant)


def lr_sweep(n: int, steps: int) -> list[RunSpec]:
    """`n` tiny MLPs on the spiral: plain SGD at learning rates spread on a log grid."""
    data = DataSpec(name="spiral", n_samples=1000)
    model = ModelSpec(hidden=[32, 32], init="kaiming_normal")
    lrs = [10 ** (-3 + 3 * i / max(n - 1, 1)) for i in range(n)]
    return [_spec(data, model, f"lr {lr:.2g}", optimizer="sgd", lr=lr, steps=steps, batch_size=100) for lr in lrs]


def optimizer_comparison(steps: int) -> list[RunSpec]:
    """The optimizers preset's seven variants plus Adam at 1e-3, on the mnist1d MLP 100-100."""
    data = DataSpec(name="mnist1d", preprocess="standardize")
    model = ModelSpec(hidden=[100, 100], init="kaiming_normal")
    base = {"steps": steps, "batch_size": 100, "log_every": 20}
    variants = [("SGD", {"optimizer": "sgd", "lr": 0.05}), ("Momentum", {"optimizer": "momentum", "lr": 0.05}),
                ("Nesterov", {"optimizer": "nesterov", "lr": 0.05}), ("AdaGrad", {"optimizer": "adagrad", "lr": 0.05}),
                ("RMSProp", {"optimizer": "rmsprop", "lr": 1e-3}), ("Adam", {"optimizer": "adam", "lr": 1e-2}),
                ("AdamW", {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-2}),
                ("Adam 1e-3", {"optimizer": "adam", "lr": 1e-3})]
    return [_spec(data, model, name, **base, **kw) for name, kw in variants]


def _data_by_seed(specs: list[RunSpec], device: str) -> dict[int, Any]:
    return {s.seed: load_data(s.recipe.data, seed=s.seed, device=device) for s in specs}


def _sequential(specs: list[RunSpec], data: dict[int, Any], device: str) -> Callable[[], None]:
    from engine.training.loop import train

    def run() -> None:
        for s in specs:
            train(s, _noop, device=device, data=data[s.seed])

    return run


def _batched(specs: list[RunSpec], data: dict[int, Any], device: str) -> Callable[[], None]:
    from engine.batched import train_batched

    return lambda: train_batched(specs, _noop, device=device, data=data)


def batched_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    rows: list[Row] = []
    steps = 50 if quick else 400
    for n in (8, 32):
        specs = lr_sweep(n, steps)
        data = _data_by_seed(specs, device)
        t = interleaved({"batched": _batched(specs, data, device), "sequential": _sequential(specs, data, device)},
                        repeats, device=device)
        rows.append(measured_row(f"batched/sequential.sweep{n}", f"{n} runs batched ÷ {n} sequential",
                                 f"{n} tiny MLPs 2-32-32-3 (spiral, SGD LR sweep), {steps} steps each",
                                 t["batched"], t["sequential"], unit="s (all runs)", target=0.4 if n == 32 else None))
    opt_steps = 50 if quick else 600
    specs = optimizer_comparison(opt_steps)
    data = _data_by_seed(specs, device)
    sides = {"batched": _batched(specs, data, device), "single": _sequential(specs[:1], data, device)}
    if not quick:
        sides["sequential"] = _sequential(specs, data, device)
    t = interleaved(sides, repeats, device=device)
    case = f"8-variant optimizer comparison, mnist1d MLP 40-100-100-10, {opt_steps} steps"
    rows.append(measured_row("batched8/single.optimizers", "8 variants batched ÷ 1 variant alone, one thread",
                             case, t["batched"], t["single"], unit="s"))
    if "sequential" in t:
        rows.append(measured_row("batched/sequential.optimizers", "8 variants batched ÷ 8 sequential", case,
                                 t["batched"], t["sequential"], unit="s (all runs)"))
    seeds = [s.model_copy(update={"recipe": s.recipe.model_copy(update={"train": s.recipe.train.model_copy(
        update={"seed": k})})}) for k, s in enumerate([specs[5]] * 3)]
    data = _data_by_seed(seeds, device)
    t = interleaved({"batched": _batched(seeds, data, device), "sequential": _sequential(seeds, data, device)},
                    repeats, device=device)
    rows.append(measured_row("batched/sequential.seeds3", "3 seeds batched ÷ 3 sequential",
                             f"Adam on the mnist1d MLP, seeds 0-2 (own splits and batch orders), {opt_steps} steps",
                             t["batched"], t["sequential"], unit="s (all runs)"))
    return rows


def runner_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    """The 8-variant comparison and one variant as the lab runs them: through the runner."""
    opt_steps = 50 if quick else 600
    specs = optimizer_comparison(opt_steps)
    case = (f"8-variant optimizer comparison, mnist1d MLP 40-100-100-10, {opt_steps} steps; through the runner "
            "with its defaults for this machine (workers, threads, batched groups), first run start to last run end")
    if quick:
        return [not_row("batched8/single.runner", "8 variants ÷ 1 variant, as the lab runs them", case,
                        "not measured", "full mode only: each side spawns worker processes", target=3.0)]
    from bench.runner_span import interleaved_spans

    spans = interleaved_spans({"comparison": specs, "single": specs[:1]}, device, max(1, min(repeats, 3)))
    row = measured_row("batched8/single.runner", "8 variants ÷ 1 variant, as the lab runs them", case,
                       spans["comparison"], spans["single"], unit="s", target=3.0,
                       note="training span from the store")
    row.cpu_ratio = None
    return [row]


# -- vmap against batched matmuls ------------------------------------------------------------------

def vmap_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    import copy

    import torch.nn.functional as F
    from torch.func import functional_call, stack_module_state, vmap

    from engine.batched.stacked import StackedMLP, quiet_layout_warning
    from engine.models import build_model

    spec = ModelSpec(hidden=[100, 100])
    rows = []
    x = torch.randn(100, 40, device=device)
    y = torch.randint(0, 10, (100,), device=device)
    for m in (8, 32):
        models = [build_model(spec, (40,), 10).to(device) for _ in range(m)]
        stacked = StackedMLP(models, spec, device)
        params, buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")

        def one(p, b, xx, base=base):
            return functional_call(base, (p, b), (xx,))

        def with_vmap(params=params, buffers=buffers, m=m) -> None:
            out = vmap(one, in_dims=(0, 0, None))(params, buffers, x)
            F.cross_entropy(out.reshape(-1, 10), y.repeat(m)).backward()

        def with_bmm(m=m, stacked=stacked) -> None:
            stacked.grads.zero_()
            out = stacked(x)
            with quiet_layout_warning():
                F.cross_entropy(out.reshape(-1, 10), y.repeat(m)).backward()

        loops = 3 if quick else 20

        def many(fn: Callable[[], None], loops: int = loops) -> Callable[[], None]:
            return lambda: [fn() for _ in range(loops)]

        t = interleaved({"vmap": many(with_vmap), "bmm": many(with_bmm)}, repeats, device=device)
        rows.append(measured_row(f"vmap/baddbmm.{m}", "vmap(functional_call) ÷ baddbmm",
                                 f"{m} stacked MLPs 40-100-100-10, forward + backward of one batch of 100",
                                 t["vmap"], t["bmm"], per=loops, unit="s/step"))
    return rows


# -- 2-D surfaces (another engineer's module) ------------------------------------------------------

def surface_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    what = "64 (optimizer, LR) paths on Rosenbrock, batched ÷ one by one with torch.optim"
    try:
        from engine.surfaces.paths import bench_surface_paths
    except ImportError:
        return [not_row("surfaces/sequential.64", "64 surface paths batched ÷ sequential", what, "not available",
                        "engine.surfaces has no batched path runner (bench_surface_paths)", target=1 / 50)]
    steps = 50 if quick else 500
    batched, sequential = Timing(), Timing()
    for _ in range(repeats):
        b, s = bench_surface_paths(n_paths=64, steps=steps)
        batched.add(b, b)  # the module times with the wall clock only
        sequential.add(s, s)
    row = measured_row("surfaces/sequential.64", "64 surface paths batched ÷ sequential",
                       f"{what}, {steps} steps", batched, sequential, unit="s (all paths)", target=1 / 50,
                       note="timed inside engine.surfaces (wall clock)")
    row.cpu_ratio = None
    return [row]


# -- headless against the app ------------------------------------------------------------------------

def app_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    """App open ÷ headless: measured by bench.app_overhead when the app can be driven headless."""
    what = "optimizers preset (quick), the runner with the app open ÷ the same headless"
    try:
        from bench.app_overhead import measure
    except ImportError as exc:
        return [not_row("app/headless", "app open ÷ headless", what, "not measured", f"no hook: {exc}")]
    try:
        return measure(device, quick, repeats)
    except Exception as exc:  # noqa: BLE001 - the app is another engineer's moving target
        return [not_row("app/headless", "app open ÷ headless", what, "not measured",
                        f"the app could not be driven headless: {type(exc).__name__}: {exc}")]


# -- opt-in fast paths (CUDA) ------------------------------------------------------------------------

def fast_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    """Each fast path ÷ the plain batched step, on the 32-run sweep (CUDA only: on a CPU they are
    slower or unavailable, and torch.compile takes tens of seconds to build)."""
    from engine.batched.accel import FastPaths

    names = ("bf16", "compile", "cuda_graphs", "channels_last")
    if not device.startswith("cuda"):
        return [not_row(f"fast/plain.{n}", f"{n} ÷ plain",
                        "a CNN step, batch 128" if n == "channels_last" else "32 tiny MLPs batched",
                        "not measured", f"CUDA fast path; the device here is {device}") for n in names]
    steps = 100 if quick else 400
    specs = lr_sweep(32, steps)
    data = _data_by_seed(specs, device)
    from engine.batched import train_batched

    def with_path(fp: FastPaths) -> Callable[[], object]:
        return lambda: train_batched(specs, _noop, device=device, data=data, fast=fp)

    sides = {"plain": _batched(specs, data, device)}
    for n in names[:3]:
        sides[n] = with_path(FastPaths(**{n: True}))
    t = interleaved(sides, repeats, device=device)
    rows = [measured_row(f"fast/plain.{n}", f"{n} ÷ plain", f"32 tiny MLPs batched, {steps} steps", t[n],
                         t["plain"], unit="s (all runs)", cuda_ms=t[n].cuda_ms) for n in names[:3]]
    rows.append(_channels_last_row(device, quick, repeats))
    return rows


def _channels_last_row(device: str, quick: bool, repeats: int) -> Row:
    import torch.nn.functional as F

    from engine.batched.accel import channels_last
    from engine.models import build_model

    spec = ModelSpec(kind="cnn", channels=[32, 64], hidden=[128], kernel_size=3, stride=1)
    x = torch.randn(128, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    plain = build_model(spec, (3, 32, 32), 10).to(device)
    nhwc, x_nhwc = channels_last(build_model(spec, (3, 32, 32), 10).to(device), x)
    loops = 5 if quick else 20

    def steps(model, inputs):
        def run() -> None:
            for _ in range(loops):
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(inputs), y).backward()
        return run

    t = interleaved({"nhwc": steps(nhwc, x_nhwc), "nchw": steps(plain, x)}, repeats, device=device)
    return measured_row("fast/plain.channels_last", "channels_last ÷ plain",
                        "CNN 3×32×32 → 32-64 conv → 128 → 10, batch 128, forward + backward",
                        t["nhwc"], t["nchw"], per=loops, unit="s/step")


# -- catalogue comparisons: batched groups against every run on its own -------------------------------

PRESET_CASES = ("normalization", "activations", "loss-functions", "skip-connections", "dropout", "preprocessing")
QUICK_PRESET_CASES = ("activations", "loss-functions")


def preset_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    """Catalogue presets (quick form, seeds 0-2; seed 0 in --quick) in this process, one thread:
    their runs in batched groups (``engine.batched.plan``) ÷ every run on its own (``--solo``)."""
    import tempfile

    from engine.catalogue.presets import load_preset
    from engine.runs.inline import run_inline

    rows: list[Row] = []
    seeds = [0] if quick else [0, 1, 2]
    with tempfile.TemporaryDirectory(prefix="dllab-bench-") as tmp:
        for preset in QUICK_PRESET_CASES if quick else PRESET_CASES:
            specs = load_preset(preset).expand(quick=True, seeds=seeds)
            sides = {side: (lambda batch=(side == "batched"), specs=specs: run_inline(specs, device=device, store=tmp,
                                                                                     batch=batch))
                     for side in ("batched", "solo")}
            t = interleaved(sides, max(1, min(repeats, 3)), device=device)
            from engine.batched.plan import plan

            groups = sum(len(g) > 1 for g in plan(specs))
            rows.append(measured_row(f"presets/solo.{preset}", "a preset's runs batched ÷ each on its own",
                                     f"{preset} (quick form, seeds {','.join(map(str, seeds))}: {len(specs)} runs, "
                                     f"{groups} batched group{'s' if groups != 1 else ''}), in this process",
                                     t["batched"], t["solo"], unit="s (all runs)"))
    return rows


def conv_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    from bench.conv_stack import CASES, sides

    rows = []
    for case in ("mnist1d",) if quick else tuple(CASES):
        heavy = case == "image" and device == "cpu"  # ~15 GFLOP a member's step: keep it to a minute here
        loops = 3 if quick or heavy else 20
        for m in (8,) if quick or heavy else (8, 32):
            t = interleaved(sides(case, m, device, loops), repeats, device=device)
            rows.append(measured_row(f"conv/sequential.{case}.{m}",
                                     f"{m} CNNs as one grouped conv ÷ {m} sequential",
                                     f"{CASES[case][-1]}, batch {CASES[case][5]} each, forward + backward",
                                     t["grouped"], t["sequential"], per=loops, unit="s/step"))
    return rows


SECTIONS: dict[str, Callable[[str, bool, int], list[Row]]] = {
    "loops": loop_rows,
    "batched": batched_rows,
    "runner": runner_rows,
    "presets": preset_rows,
    "vmap": vmap_rows,
    "conv": conv_rows,
    "surfaces": surface_rows,
    "app": app_rows,
    "service": service_rows,
    "fast": fast_rows,
}


def run_bench(*, quick: bool = False, device: str = "cpu", repeats: int | None = None, threads: int | None = 1,
              only: list[str] | None = None, progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every section's rows (or those named in `only`), measured now."""
    if threads:
        torch.set_num_threads(threads)
    from engine.batched.accel import tune_allocator

    tune_allocator()  # the batched trainer sets it; set it first so every side runs with it
    reps = repeats or (2 if quick else 5)
    rows: list[Row] = []
    for name, section in SECTIONS.items():
        if only and name not in only:
            continue
        if progress:
            progress(name)
        rows.extend(section(device, quick, reps))
    return rows
