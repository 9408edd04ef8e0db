#!/usr/bin/env bash
# DreamerV3 on Atari100k on a CUDA machine, under 5 minutes (docs/benchmarks.md, "On a GPU"):
#   1. the update time for 64x64 frames at the cpu and 12m sizes (fp32 and bf16), B=16 x T=64;
#   2. env steps/s of a short env=atari100k training run on device=cuda at the official
#      train_ratio 256 and the 12m size (from its summary.json).
# Usage: bash benchmarks/gpu_atari100k.sh [out_dir] [game]   (PYTHON=... picks the interpreter)
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-benchmarks/results/gpu_atari100k}}
GAME=${2:-Pong}
PY=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT_DIR"
log() { echo "== $*" | tee -a "$OUT_DIR/gpu_atari100k.md"; }
ATARI="env=atari100k env.id=ALE/$GAME-v5 agent.batch_length=64"  # each size its own CNN depth

log "machine: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1)"
for precision in "agent.bf16=false" "agent.bf16=true"; do
  log "update time, 64x64 frames, $precision"
  timeout 90 $PY benchmarks/dreamer_update_speed.py --updates 10 --sizes cpu 12m -- device=cuda $ATARI $precision \
    2>&1 | grep -E '^\||^device' | tee -a "$OUT_DIR/gpu_atari100k.md"
done
log "training run: ALE/$GAME-v5, size 12m, train_ratio 256, 20k frames (5k agent steps), device=cuda"
timeout 150 $PY -m dreamlab.cli train --quiet agent=dreamer $ATARI agent.size=12m train.train_ratio=256 \
  train.learning_starts=4096 run.steps=20000 eval.every=1000000 device=cuda run.dir="$OUT_DIR/runs" 2>&1 | tail -3 \
  | tee -a "$OUT_DIR/gpu_atari100k.md"
$PY - "$OUT_DIR/runs" <<'PY' | tee -a "$OUT_DIR/gpu_atari100k.md"
import json, pathlib, sys
runs = sorted(pathlib.Path(sys.argv[1]).glob("*/summary.json"))
print(json.dumps(json.loads(runs[-1].read_text()), indent=1) if runs else "no summary.json: the run did not finish in time")
PY
