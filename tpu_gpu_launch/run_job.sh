#!/usr/bin/env bash
# One job on this host, as every launcher starts it:
#   tpu_gpu_launch/run_job.sh preflight|reflex|hrm [key=value ...]
# Settings (environment):
#   PLATFORM      gpu | tpu | cpu (flags from env.sh)
#   DEVICE        H100, H200, A100 (GPUs) or a TPU type such as v5litepod-16 (HRM plan);
#                 unset: no plan, the config's own mesh and batch are used
#   NUM_DEVICES   devices of the whole job (GPUs; a TPU type implies it)
#   NUM_HOSTS     hosts (processes) of the whole job (GPUs; a TPU type implies it)
#   DISTRIBUTED   1: this is one process of a multi-host job (tpu_gpu_launch.distributed);
#                 on TPUs it follows from the type (a multi-host slice)
#   SIZE          HRM-Text config in experiments/hrm: tiny, B, L or XL (default B)
#   GLOBAL_TOKENS tokens per optimizer step (default: the config's batch_size × seq_len)
#   RUN_DIR       HRM-Text log directory (default runs/hrm-$SIZE); CHECKPOINT_DIR: Orbax
#                 checkpoints, local or gs://bucket/path (default RUN_DIR/checkpoints)
#   GRID          Reflex grid file (default experiments/reflex/grid_gpu.yaml); SHARD: i/n
#   PYTHON        the interpreter (default .venv/bin/python)
# Extra arguments go to the job last, so they win (e.g. schedule.steps=1000).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
# shellcheck source=SCRIPTDIR/env.sh
source tpu_gpu_launch/env.sh "${PLATFORM:-gpu}"
job="${1:?usage: run_job.sh preflight|reflex|hrm [key=value ...]}"
shift
# The job is checked before anything is planned or started, so a typo costs nothing.
case "$job" in
  preflight|reflex|hrm) ;;
  *) echo "run_job.sh: unknown job '$job' (preflight, reflex or hrm)" >&2; exit 2 ;;
esac

run_module() {  # run_module MODULE ARGS: multi-host processes initialize JAX's distributed runtime
  if [[ "${DISTRIBUTED:-0}" == 1 ]]; then
    "$PY" -m tpu_gpu_launch.distributed "$@"
  else
    "$PY" -m "$@"
  fi
}

add_xla_flags() {  # add_xla_flags FLAGS: the job's flags first, the user's XLA_FLAGS after (so
  # theirs win). XLA reads a value that is not a flag as a file name and aborts at start-up, so
  # a blank XLA_FLAGS is never set: with nothing to add (CPU, TPU) it stays as it was.
  local flags="$1${XLA_FLAGS:+ $XLA_FLAGS}"
  flags="${flags# }"
  if [[ -n "$flags" ]]; then
    export XLA_FLAGS="$flags"
  fi
}

hrm_config="experiments/hrm/${SIZE:-B}.yaml"
if [[ "$job" != reflex && ! -f "$hrm_config" ]]; then
  echo "run_job.sh: no HRM-Text config $hrm_config (SIZE: tiny, B, L or XL)" >&2
  exit 2
fi

if [[ "${PLATFORM:-gpu}" == tpu && -n "${DEVICE:-}" ]]; then
  # The type goes in as an argument, never as code.
  hosts_of_type='import sys; from tpu_gpu_launch.plan import tpu_topology
print(tpu_topology(sys.argv[1])[1])'
  tpu_hosts="$("$PY" -c "$hosts_of_type" "$DEVICE")"
  DISTRIBUTED="${DISTRIBUTED:-$((tpu_hosts > 1 ? 1 : 0))}"
fi

hrm_plan=()
if [[ -n "${DEVICE:-}" && "$job" != reflex ]]; then
  if [[ "$DEVICE" == v[0-9]* ]]; then
    topology=(--tpu "$DEVICE")
  else
    topology=(--devices "${NUM_DEVICES:?set NUM_DEVICES}" --hosts "${NUM_HOSTS:-1}" --device "$DEVICE")
  fi
  [[ -n "${GLOBAL_TOKENS:-}" ]] && topology+=(--global-tokens "$GLOBAL_TOKENS")
  planned="$("$PY" -m tpu_gpu_launch.plan --config "$hrm_config" "${topology[@]}" --overrides)"
  read -r -a hrm_plan <<< "$planned"
  echo "HRM-Text ${SIZE:-B} plan: ${hrm_plan[*]}" >&2
fi

case "$job" in
  preflight)
    add_xla_flags "$HRM_XLA_FLAGS"
    run_module tpu_gpu_launch.preflight --hrm-config "$hrm_config" "${hrm_plan[@]}" "$@"
    ;;
  hrm)
    dirs=("log.dir=${RUN_DIR:-runs/hrm-${SIZE:-B}}")
    [[ -n "${CHECKPOINT_DIR:-}" ]] && dirs+=("log.checkpoint_dir=$CHECKPOINT_DIR")
    add_xla_flags "$HRM_XLA_FLAGS"
    run_module hrm_jax.train --config "$hrm_config" "${hrm_plan[@]}" "${dirs[@]}" "$@"
    ;;
  reflex)
    # Grid cells are independent runs: each host takes its shard on its own devices, no
    # multi-host runtime needed.
    if [[ "${DISTRIBUTED:-0}" == 1 ]]; then
      echo "run_job.sh: the Reflex grid runs one independent process per host (SHARD=i/n)," \
           "not as a multi-host job; on TPUs use single-host types (v4-8, v5litepod-8, v6e-8)" >&2
      exit 2
    fi
    add_xla_flags "$REFLEX_XLA_FLAGS"
    "$PY" -m reflex_jax.run.grid \
      --config "${GRID:-experiments/reflex/grid_gpu.yaml}" --shard "${SHARD:-0/1}" "$@"
    ;;
esac
