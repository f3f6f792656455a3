#!/usr/bin/env bash
# One command for an H100/H200 machine (< 8 minutes): the GPU tests and the GPU benchmarks.
#
#   bash benchmarks/gpu/run.sh [--dry-run]       # from the repository root; results under $OUT
#
# Before, on a machine with the registries: `bash ../shared/gpu/wheels.sh pytest pluggy iniconfig
# pytest-timeout tomli-w` fills .whl/ with what a GPU machine holding only the CUDA stack lacks.
# Steps: install .whl/ into /tmp/site (only packages that do not import already), build the CPU
# kernels in place, print the device, run `pytest -m gpu` (log: $OUT/gpu_tests.log, JUnit XML),
# then benchmarks/gpu/measure.py (ceilings, fits, cakes, WAXS and PL end to end, each with its
# floor and achieved fraction: $OUT/gpu_benchmarks.json). --dry-run prints the steps, checks the
# scripts and writes the benchmark plan, on any machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT=${OUT:-$PWD/out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
step() { echo "== $* ($(date -u +%H:%M:%S))"; }
run() { if ((DRY)); then echo "[dry-run] $*"; else "$@"; fi; }

step "packages"
if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
  missing=()
  for w in .whl/*.whl; do
    mod=$(basename "$w" | cut -d- -f1 | tr 'A-Z' 'a-z')
    [[ "$mod" == pyfai ]] && mod=pyFAI
    "$PY" -c "import $mod" 2>/dev/null || missing+=("$w")
  done
  if ((${#missing[@]})); then
    run "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${missing[@]}"
  fi
  echo "${#missing[@]} wheels to install from .whl/"
else
  echo "no .whl/ folder: using the installed packages"
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}

step "CPU kernels (in place)"
run "$PY" setup.py -q build_ext --inplace

step "device"
if ((DRY)); then
  echo "[dry-run] nvidia-smi; cupy device properties"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/device.txt"
  "$PY" -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); print(p['name'], 'cc', p['major'], p['minor'], 'SMs', p['multiProcessorCount']); print('cupy', cupy.__version__, 'runtime', cupy.cuda.runtime.runtimeGetVersion())" 2>&1 | tee -a "$OUT/device.txt"
fi

step "pytest -m gpu"
mapfile -t gpu_tests < <(grep -l "pytest.mark.gpu" tests/test_*.py)  # only these need to import here
run timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rA --junitxml="$OUT/gpu_tests.xml" \
  "${gpu_tests[@]}" 2>&1 | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}

step "benchmarks"
args=(--out "$OUT")
((DRY)) && args+=(--dry-run)
timeout 300 "$PY" benchmarks/gpu/measure.py "${args[@]}" 2>&1 | tee "$OUT/gpu_benchmarks.log"
bench_rc=${PIPESTATUS[0]}

step "done: tests rc=$tests_rc, benchmarks rc=$bench_rc; results in $OUT"
exit $(( tests_rc || bench_rc ))
