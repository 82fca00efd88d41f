#!/usr/bin/env bash
# Multi-node GPUs over plain SSH (no scheduler): starts one process per host and waits.
#   HOSTS="gpu-a gpu-b" tpu_gpu_launch/gpu_ssh.sh preflight
#   HOSTS="gpu-a gpu-b" SIZE=XL tpu_gpu_launch/gpu_ssh.sh hrm
#   HOSTS="gpu-a gpu-b gpu-c" tpu_gpu_launch/gpu_ssh.sh reflex      # one grid shard per host
# Every host needs this repository with its .venv at the same path (REPO_DIR, default: here)
# and password-less SSH from this machine. The first host is the coordinator; PORT must be
# free there and reachable from the others.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a hosts <<< "${HOSTS:?set HOSTS to the hosts, first one the coordinator}"
job="${1:?usage: HOSTS=... gpu_ssh.sh preflight|reflex|hrm [key=value ...]}"
shift
count=${#hosts[@]}
repo="${REPO_DIR:-$PWD}"
ssh_cmd="${SSH:-ssh}"
gpus="${GPUS_PER_HOST:-8}"
printf -v extra ' %q' "$@"
pids=()
for rank in "${!hosts[@]}"; do
  if [[ "$job" == reflex ]]; then
    role="DISTRIBUTED=0 SHARD=$rank/$count"
  else
    role="DISTRIBUTED=1 JAX_COORDINATOR_ADDRESS=${hosts[0]}:${PORT:-12355} JAX_NUM_PROCESSES=$count JAX_PROCESS_ID=$rank"
  fi
  settings="PLATFORM=${PLATFORM:-gpu} DEVICE=${DEVICE-H100} NUM_DEVICES=$((count * gpus)) NUM_HOSTS=$count SIZE=${SIZE:-B}"
  for name in RUN_DIR CHECKPOINT_DIR GRID GLOBAL_TOKENS PYTHON; do
    [[ -n "${!name:-}" ]] && settings+=" $name=$(printf %q "${!name}")"
  done
  $ssh_cmd "${hosts[$rank]}" "cd $(printf %q "$repo") && $settings $role tpu_gpu_launch/run_job.sh $job$extra" \
    > >(sed "s/^/[${hosts[$rank]}:$rank] /") 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
exit "$status"
