#!/usr/bin/env bash
# The GPU session's checks in one command (how docs/performance.md's CUDA figures were taken).
# Run from the repository root on a CUDA machine whose python3 has torch; packages it lacks come
# as wheels in .whl/ (pip download, see docs/performance.md). Logs and JSON go to $OUT (or ./gpu-out).
# Usage: bash bench/on_gpu.sh [tests] [claims] [bench:SECTION[:SECONDS[:REPEATS]]]...
#   e.g. bash bench/on_gpu.sh tests bench:loops:120 bench:batched:200 bench:fast:150
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 DLLAB_HOME=/tmp/dllab-home
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
for what in "$@"; do
  case $what in
    tests) python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log" | tail -8 ;;
    claims) python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider -m slow -n 6 2>&1 | tee "$OUT/cuda_claims.log" | tail -8 ;;
    bench:*)
      IFS=: read -r _ section seconds repeats <<< "$what"
      start=$(date +%s)
      timeout "${seconds:-300}" python3 -m bench --device cuda --threads 1 --repeats "${repeats:-3}" --only "$section" --json \
        > "$OUT/bench_$section.json" 2> "$OUT/bench_$section.err"
      echo "bench $section: rc $? in $(( $(date +%s) - start )) s"; tail -3 "$OUT/bench_$section.err" ;;
  esac
done
python3 - "$OUT" <<'PY'
import glob, json, sys
from rich.console import Console
from bench.rows import Row
from bench.report import table
rows, info = [], None
for path in sorted(glob.glob(sys.argv[1] + "/bench_*.json")):
    try:
        doc = json.load(open(path))
    except ValueError:
        continue
    rows += [Row(**r) for r in doc["rows"]]
    info = doc["machine"]
if rows:
    Console(width=150).print(table(rows, info))
PY
