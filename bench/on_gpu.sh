#!/usr/bin/env bash
# The GPU session's checks, in one command (how docs/performance.md's CUDA figures were taken).
# Run from the repository root on a CUDA machine whose python3 has torch; packages it lacks come
# as wheels in .whl/ (see docs/performance.md). Logs go to $OUT (or ./gpu-out).
# Usage: bash bench/on_gpu.sh [tests|claims|bench|all]
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 DLLAB_HOME=/tmp/dllab-home
what=${1:-all}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
if [[ $what == all || $what == tests ]]; then
  python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider -x 2>&1 | tee "$OUT/cuda_tests.log" | tail -15
fi
if [[ $what == all || $what == claims ]]; then
  python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider -m slow -n 6 2>&1 | tee "$OUT/cuda_claims.log" | tail -25
fi
if [[ $what == all || $what == bench ]]; then
  python3 -m bench --device cuda --threads 1 --json > "$OUT/bench_cuda.json" 2> "$OUT/bench_cuda.err"
  tail -5 "$OUT/bench_cuda.err"
  python3 - "$OUT/bench_cuda.json" <<'PY'
import json, sys
from rich.console import Console
from bench.cases import Row
from bench.report import table
doc = json.load(open(sys.argv[1]))
Console(width=160).print(table([Row(**r) for r in doc["rows"]], doc["machine"]))
PY
fi
