"""Record the event stream of a real quick run, for the app tests' fake engine.

Run from the repository root (it takes a minute on 2 CPU cores)::

    python -m tests.app.record_events optimizers tests/app/data/optimizers_quick.json

The file holds, per run, the events exactly as the loop emitted them (``engine.events.to_dict``),
with run ids made stable (``<variant>-<seed>``) so the recording is reproducible to read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def record(preset_id: str) -> dict:
    import torch

    from engine.catalogue.presets import load_preset
    from engine.events import to_dict
    from engine.runs.executor import train_one as train

    torch.set_num_threads(1)
    loaded = load_preset(preset_id)
    runs = []
    for spec in loaded.expand(quick=True):
        events: list = []
        run_id = f"{spec.variant.lower()}-{spec.seed}"
        train(spec.model_copy(update={"comparison": "recorded"}), events.append, run_id=run_id)
        runs.append({"variant": spec.variant, "seed": spec.seed, "events": [to_dict(e) for e in events]})
        print(f"{spec.variant}: {len(events)} events, {events[-1].status}", file=sys.stderr)
    return {"preset": preset_id, "quick": True, "runs": runs}


def main(argv: list[str]) -> None:
    preset_id, out = argv[0], Path(argv[1])
    out.write_text(json.dumps(record(preset_id), separators=(",", ":")) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
