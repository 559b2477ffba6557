"""What per-layer health monitoring costs a typical run.

``python -m bench.monitoring_overhead [--steps N] [--repeats R] [--device cpu]``

The mnist1d MLP (100-100 ReLU, SGD, batch 100) trained for the same steps with the same
evaluations, two ways, timed in turns (median of the repeats, wall and CPU time):

* **every eval**: the default, per-layer diagnostics (activation and gradient histograms, dead
  and saturated shares, weight norms, update/weight ratio with its weight snapshot, first-layer
  weight images now and then) at every evaluation;
* **rarely**: diagnostics only at the start and the end (``diagnostics_every`` = the run).

Diagnostics never run more often than evaluations, so the worst case is a run that evaluates
often: the comparison is made at the given evaluation interval and at a quarter of it.
"""

from __future__ import annotations

import argparse

from bench.timing import interleaved


def _spec(steps: int, diagnostics_every: int | None, eval_every: int):
    from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec

    return RunSpec(recipe=Recipe(
        data=DataSpec(name="mnist1d", preprocess="standardize"),
        model=ModelSpec(hidden=[100, 100], activation="relu", init="kaiming_normal"),
        train=TrainSpec(optimizer="sgd", lr=0.05, batch_size=100, steps=steps, eval_every=eval_every,
                        diagnostics_every=diagnostics_every),
    ), variant="bench")


def main(argv: list[str] | None = None) -> int:
    import torch

    from engine.data import load_data
    from engine.training.loop import train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=40, help="steps between evaluations (default: one epoch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_data(_spec(10, None, 10).recipe.data, seed=0, device=args.device)

    def side(spec):
        return lambda: train(spec, lambda e: None, device=args.device, data=data)

    print(f"mnist1d MLP 100-100, SGD, batch 100, {args.steps} steps, {args.repeats} repeats (medians), "
          f"{args.threads} thread(s), {args.device}")
    for eval_every in sorted({args.eval_every, max(1, args.eval_every // 4)}, reverse=True):
        sides = {"every eval": _spec(args.steps, None, eval_every), "rarely": _spec(args.steps, args.steps, eval_every)}
        timings = interleaved({k: side(s) for k, s in sides.items()}, repeats=args.repeats, device=args.device)
        on, off = timings["every eval"], timings["rarely"]
        n_evals = args.steps // eval_every
        print(f"  evaluation every {eval_every} steps ({n_evals} evaluations):")
        print(f"    diagnostics at every evaluation: wall {on.wall_median:.3f} s, CPU {on.cpu_median:.3f} s")
        print(f"    diagnostics at start and end:    wall {off.wall_median:.3f} s, CPU {off.cpu_median:.3f} s")
        extra = (on.cpu_median - off.cpu_median) / max(1, n_evals - 1)
        print(f"    overhead ×{on.wall_median / off.wall_median:.3f} wall, ×{on.cpu_median / off.cpu_median:.3f} CPU; "
              f"about {extra * 1e3:.2f} ms of CPU per measurement")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
