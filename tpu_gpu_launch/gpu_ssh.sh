#!/usr/bin/env bash
# Multi-node GPUs over plain SSH (no scheduler): starts one process per host and waits.
#   HOSTS="gpu-a gpu-b" tpu_gpu_launch/gpu_ssh.sh preflight
#   HOSTS="gpu-a gpu-b" SIZE=XL tpu_gpu_launch/gpu_ssh.sh hrm
#   HOSTS="gpu-a gpu-b gpu-c" tpu_gpu_launch/gpu_ssh.sh reflex      # one grid shard per host
# Every host needs this repository with its .venv at the same path (REPO_DIR, default: here)
# and password-less SSH from this machine. The first host is the coordinator; PORT must be
# free there and reachable from the others. SSH (default ssh) may carry options: "ssh -p 2222".
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: HOSTS=... gpu_ssh.sh preflight|reflex|hrm [key=value ...]"
read -r -a hosts <<< "${HOSTS:?set HOSTS to the hosts, first one the coordinator}"
job="${1:?$usage}"
shift
fail() { echo "gpu_ssh.sh: $*" >&2; exit 2; }
# Checked here, before any host starts: these are pasted into addresses and host names.
case "$job" in
  preflight|reflex|hrm) ;;
  *) fail "unknown job '$job' (preflight, reflex or hrm)" ;;
esac
port="${PORT:-12355}"
if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
  fail "PORT must be a port number (1-65535), not '$port'"
fi
gpus="${GPUS_PER_HOST:-8}"
[[ "$gpus" =~ ^[1-9][0-9]{0,3}$ ]] || fail "GPUS_PER_HOST must be a whole number, not '$gpus'"
for host in "${hosts[@]}"; do
  # A leading '-' would be read by ssh as an option.
  [[ "$host" =~ ^[A-Za-z0-9_.@:][A-Za-z0-9_.@:-]*$ ]] \
    || fail "'$host' is not a host name ([user@]host: letters, digits, . _ - : @)"
done
count=${#hosts[@]}
repo="${REPO_DIR:-$PWD}"
read -r -a ssh_cmd <<< "${SSH:-ssh}"
pids=()
for rank in "${!hosts[@]}"; do
  # The remote command as words; ssh joins them into one string for the remote shell, so each
  # word is quoted for that shell (printf %q) and a value can never run as a command there.
  words=(env "PLATFORM=${PLATFORM:-gpu}" "DEVICE=${DEVICE-H100}" "NUM_DEVICES=$((count * gpus))"
         "NUM_HOSTS=$count" "SIZE=${SIZE:-B}")
  if [[ "$job" == reflex ]]; then
    words+=(DISTRIBUTED=0 "SHARD=$rank/$count")
  else
    words+=(DISTRIBUTED=1 "JAX_COORDINATOR_ADDRESS=${hosts[0]}:$port"
            "JAX_NUM_PROCESSES=$count" "JAX_PROCESS_ID=$rank")
  fi
  for name in RUN_DIR CHECKPOINT_DIR GRID GLOBAL_TOKENS PYTHON; do
    if [[ -n "${!name:-}" ]]; then
      words+=("$name=${!name}")
    fi
  done
  words+=(tpu_gpu_launch/run_job.sh "$job" "$@")
  printf -v remote '%q ' "${words[@]}"
  "${ssh_cmd[@]}" "${hosts[$rank]}" "cd $(printf %q "$repo") && $remote" \
    > >(sed "s/^/[${hosts[$rank]}:$rank] /") 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
exit "$status"
