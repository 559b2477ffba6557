"""The gradient check, shared by both faces (``dllab gradcheck`` and the app's Tools screen):
which networks to check (``check_specs``), the check itself (``check_all``), and how a result
reads (``result_notes``, ``unexpected``)."""

from __future__ import annotations


def _demo_specs(seed: int):
    from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec

    def spec(name: str, layer: str) -> RunSpec:
        return RunSpec(recipe=Recipe(
            data=DataSpec(name="spiral", n_samples=300),
            model=ModelSpec(hidden=[16, 16], activation="tanh"),
            train=TrainSpec(gradcheck=True, gradcheck_layer=layer, batch_size=16, seed=seed),
        ), variant=name, preset="gradcheck-demo")

    return [spec("hand-written layer, correct backward", "custom"),
            spec("hand-written layer, broken backward", "broken")]


def _with_options(spec, seed: int, fields: dict[str, object]):
    """`spec` with the gradient check on, `seed`, and the train `fields` that are not None."""
    update = {"gradcheck": True, "seed": seed, **{k: v for k, v in fields.items() if v is not None}}
    train = spec.recipe.train.model_validate({**spec.recipe.train.model_dump(), **update})
    return spec.model_copy(update={"recipe": spec.recipe.model_copy(update={"train": train})})


class NothingToCheck(ValueError):
    """The preset has no such variant, or no network to check (the command exits 2)."""


def check_specs(preset: str | None = None, variant: str | None = None, *, seed: int = 0, layer: str | None = None,
                dtype: str | None = None, h: float | None = None, max_elements: int | None = None):
    """The RunSpecs `dllab gradcheck` checks: the demo pair (no preset) or each network variant of
    a preset's quick form, with the options applied. NothingToCheck (the command's message) when
    the variant does not exist or the preset has no network; PresetError when it does not load."""
    if preset:
        from engine.catalogue.presets import load_preset

        loaded = load_preset(preset)
        specs = loaded.expand(quick=True, seeds=[seed])
        if variant:
            from tui_lab.tools.specs import variant_name

            try:
                name = variant_name(loaded, variant)
            except ValueError as exc:
                raise NothingToCheck(str(exc)) from None
            specs = [s for s in specs if s.variant == name]
        specs = [s for s in specs if s.recipe.data.name != "surface"]
        if not specs:
            raise NothingToCheck(f"{preset} has no network to check (2-D surface runs have a closed-form gradient)")
    else:
        specs = _demo_specs(seed)
    fields = {"gradcheck_layer": layer, "gradcheck_dtype": dtype, "gradcheck_h": h,
              "gradcheck_max_elements": max_elements}
    return [_with_options(s, seed, fields) for s in specs]


def check_all(specs) -> list:
    """(spec, GradCheckResult, replaced layer name) for each spec, on one torch thread."""
    import torch

    from engine.checks.gradcheck import check_spec

    torch.set_num_threads(1)
    results = []
    for spec in specs:
        result, replaced = check_spec(spec)
        results.append((spec, result, replaced))
    return results


def result_notes(result, replaced: str | None, layer: str) -> list[str]:
    """The lines shown under a check's table: the swapped-in layer, the failing tensors' worst
    entries, the kink rule and the check's own notes (the command and the app's Tools show them)."""
    lines = [f"* {replaced}: a hand-written linear layer ({layer} backward)"] if replaced else []
    lines += [f"{tc.name}: worst entry {list(tc.worst_index)}: analytic {tc.worst_analytic:.4g}, "
              f"numerical {tc.worst_numeric:.4g}" for tc in result.tensors if tc.status != "pass"]
    if result.kinks:
        lines.append("this model has kinks (ReLU-family, max or hinge): up to 1e-4 passes")
    return lines + [f"note: {n}" for n in result.notes]


def unexpected(spec, result) -> bool:
    """A tensor failed where it should not (a deliberately broken layer is supposed to fail)."""
    return spec.recipe.train.gradcheck_layer != "broken" and result.count("fail") > 0
