#!/usr/bin/env bash
# The GPU check (docs/benchmarks.md, "On a GPU"): on a machine with CUDA and a torch built for it,
# in under 5 minutes, prints
#   1. the DreamerV3 update time at the cpu, 12m and xs sizes: fp32, bf16 autocast, compiled;
#   2. a 2k-env-step DreamerV3 CartPole run on device=cuda (its summary: steps/s, updates);
#   3. GPU utilisation sampled every 200 ms during the update timings (mean and max).
# Usage: bash benchmarks/gpu_check.sh [out_dir]   (PYTHON=... picks the interpreter; default python3)
# Each part has its own time limit, so one slow compile cannot eat the others' time.
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-benchmarks/results/gpu_check}}
PY=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT_DIR"
log() { echo "== $*" | tee -a "$OUT_DIR/gpu_check.md"; }

log "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
log "torch: $($PY -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1)"

nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$OUT_DIR/utilization.csv" 2>/dev/null &
SAMPLER=$!
speed() {  # speed <limit_s> <label> <args...>
  local limit=$1 label=$2; shift 2
  log "update time, $label"
  timeout "$limit" $PY benchmarks/dreamer_update_speed.py --updates 10 "$@" 2>&1 | grep -E '^\||^device' | tee -a "$OUT_DIR/gpu_check.md"
}
speed 60 "fp32" --sizes cpu 12m xs -- device=cuda
speed 60 "bf16 autocast" --sizes cpu 12m xs -- device=cuda agent.bf16=true
speed 150 "compiled, fp32 (warm-up column = compile seconds)" --sizes cpu xs -- device=cuda agent.compile=true
kill "$SAMPLER" 2>/dev/null
$PY - "$OUT_DIR/utilization.csv" <<'PY' | tee -a "$OUT_DIR/gpu_check.md"
import sys
values = [float(v) for v in open(sys.argv[1]).read().split() if v.replace(".", "", 1).isdigit()]
busy = [v for v in values if v > 0]
print(f"GPU utilisation over the update timings: {len(values)} samples, mean {sum(values) / max(len(values), 1):.0f}%, "
      f"mean while busy {sum(busy) / max(len(busy), 1):.0f}%, max {max(values, default=0):.0f}%")
PY

log "CartPole, DreamerV3, 2k env steps on device=cuda"
timeout 120 $PY -m dreamlab.cli train --quiet experiment=dreamer_cartpole device=cuda run.steps=2000 \
  eval.every=1000 eval.episodes=3 run.dir="$OUT_DIR/runs" 2>&1 | tail -3 | tee -a "$OUT_DIR/gpu_check.md"
$PY - "$OUT_DIR/runs" <<'PY' | tee -a "$OUT_DIR/gpu_check.md"
import json, pathlib, sys
runs = sorted(pathlib.Path(sys.argv[1]).glob("*/summary.json"))
print(json.dumps(json.loads(runs[-1].read_text()), indent=1) if runs else "no summary.json: the run did not finish")
PY
