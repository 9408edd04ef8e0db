#!/usr/bin/env bash
# SheepRL's DreamerV3 on CartPole-v1 from the state vector, on the CPU: the peer of dreamlab's update
# speed and CartPole figures (docs/benchmarks.md). A peer, not part of dreamlab: it runs from a
# virtual environment of its own, created on first use (.venv-sheeprl in the repository root).
#
#   bash benchmarks/peers/sheeprl_dreamer_cartpole.sh [PRESET] [REPLAY_RATIO] [THREADS] [extra overrides...]
#   bash benchmarks/peers/sheeprl_dreamer_cartpole.sh XS 1 2          # the XS row of docs/benchmarks.md
#
# PRESET is SheepRL's size (XS, S, M, ...); REPLAY_RATIO is SheepRL's gradient steps per policy step
# (1 is dreamlab's / the official train_ratio 1024 at B=16, T=64). Read the speed from its
# TensorBoard logs (logs/runs/dreamer_v3/CartPole-v1/...): `Time/sps_train` is gradient steps per
# second. The decoder keys are overridden too; without that SheepRL expects images.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:-XS}
ratio=${2:-1}
threads=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
venv=.venv-sheeprl
if [ ! -x "$venv/bin/sheeprl" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.13.0  # first, so sheeprl does not pull a CUDA build
  "$venv/bin/pip" install --quiet sheeprl
fi
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
exec "$venv/bin/sheeprl" exp=dreamer_v3 "algo=dreamer_v3_$preset" env=gym env.id=CartPole-v1 env.num_envs=4 \
  "algo.cnn_keys.encoder=[]" "algo.cnn_keys.decoder=[]" "algo.mlp_keys.encoder=[state]" \
  "algo.mlp_keys.decoder=[state]" fabric.accelerator=cpu env.capture_video=False env.sync_env=True \
  algo.run_test=False checkpoint.every=1000000 checkpoint.save_last=False "num_threads=$threads" \
  buffer.size=100000 algo.total_steps=100000 "algo.replay_ratio=$ratio" "$@"
