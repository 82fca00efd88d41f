#!/usr/bin/env bash
# One GPU node, one process driving all its GPUs:
#   tpu_gpu_launch/gpu_single.sh preflight            # before anything long
#   tpu_gpu_launch/gpu_single.sh reflex               # the Reflex grid (GRID=..., default grid_gpu.yaml)
#   SIZE=B tpu_gpu_launch/gpu_single.sh hrm           # HRM-Text B; extra key=value overrides last
# The GPU model and count come from nvidia-smi (override with DEVICE / NUM_DEVICES).
set -euo pipefail
cd "$(dirname "$0")/.."
export PLATFORM="${PLATFORM:-gpu}"
export NUM_HOSTS=1 DISTRIBUTED=0
export NUM_DEVICES="${NUM_DEVICES:-$(nvidia-smi -L | wc -l)}"
export DEVICE="${DEVICE:-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)}"
exec tpu_gpu_launch/run_job.sh "$@"
