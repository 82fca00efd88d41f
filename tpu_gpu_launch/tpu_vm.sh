#!/usr/bin/env bash
# Cloud TPU VMs and pod slices through gcloud: create, install, run the same command on every
# worker, delete.
#   export TPU_NAME=hrm-1 TPU_ZONE=us-central2-b TPU_TYPE=v4-32        # or v5litepod-16, v6e-8, v5p-64
#   tpu_gpu_launch/tpu_vm.sh create            # SPOT=1 for a spot VM
#   tpu_gpu_launch/tpu_vm.sh install           # this checkout (git archive of HEAD) + .venv on all workers
#   tpu_gpu_launch/tpu_vm.sh run preflight
#   SIZE=XL CHECKPOINT_DIR=gs://my-bucket/hrm-XL tpu_gpu_launch/tpu_vm.sh run hrm
#   tpu_gpu_launch/tpu_vm.sh run reflex        # single-host types only (see README)
#   tpu_gpu_launch/tpu_vm.sh delete
# On a pod slice every worker runs the same command; JAX finds the other workers itself.
set -euo pipefail
cd "$(dirname "$0")/.."
action="${1:?usage: tpu_vm.sh create|install|run|ssh|delete [args]}"
shift
name="${TPU_NAME:?set TPU_NAME}"
zone="${TPU_ZONE:?set TPU_ZONE}"
type="${TPU_TYPE:-v5litepod-8}"
remote_dir="${REMOTE_DIR:-reflex-hrm-jax}"  # on each worker, relative to the home folder
fail() { echo "tpu_vm.sh: $*" >&2; exit 2; }
# Checked before gcloud sees them: a name starting with '-' would be read as a flag, and the
# type goes into the workers' command line and the plan.
[[ "$name" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] \
  || fail "TPU_NAME '$name' is not a TPU name (lower-case letters, digits and -)"
[[ "$zone" =~ ^[a-z0-9]+(-[a-z0-9]+)+$ ]] || fail "TPU_ZONE '$zone' is not a zone (us-central2-b)"
[[ "$type" =~ ^v[0-9]+[a-z]*-[0-9]+$ ]] \
  || fail "TPU_TYPE '$type' is not a TPU type (v4-32, v5litepod-16, v6e-8, …)"

runtime_version() {  # the TPU VM image for each generation
  case "$type" in
    v4-*) echo tpu-ubuntu2204-base ;;
    v5litepod-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    *) fail "unknown TPU_TYPE '$type' (v4-*, v5litepod-*, v5p-*, v6e-*)" ;;
  esac
}

on_all_workers() {  # on_all_workers COMMAND: a string for each worker's shell (words quoted with %q)
  gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all --command "$1"
}

case "$action" in
  create)
    extra=()
    [[ "${SPOT:-0}" == 1 ]] && extra+=(--spot)
    # Looked up first: a failure inside "$(...)" in gcloud's arguments would not stop the script.
    version="${TPU_RUNTIME:-}"
    [[ -n "$version" ]] || version="$(runtime_version)"
    gcloud compute tpus tpu-vm create "$name" --zone "$zone" --accelerator-type "$type" \
      --version "$version" "${extra[@]}"
    ;;
  install)
    archive="$(mktemp -d)/repo.tar.gz"
    git archive --format=tar.gz -o "$archive" HEAD
    gcloud compute tpus tpu-vm scp "$archive" "$name:repo.tar.gz" --zone "$zone" --worker=all
    dir="$(printf %q "$remote_dir")"
    on_all_workers "mkdir -p $dir && tar -xzf repo.tar.gz -C $dir && cd $dir \
      && python3 -m venv .venv && .venv/bin/pip install --quiet --upgrade pip \
      && .venv/bin/pip install --quiet -e '.[rl,lm,tpu,gcs]'"
    ;;
  run)
    job="${1:?usage: tpu_vm.sh run preflight|reflex|hrm [key=value ...]}"
    shift
    case "$job" in
      preflight|reflex|hrm) ;;
      *) fail "unknown job '$job' (preflight, reflex or hrm)" ;;
    esac
    # The remote command as words, each quoted for the workers' shell: gcloud hands one string.
    words=(env PLATFORM=tpu "DEVICE=$type" "SIZE=${SIZE:-B}")  # run_job.sh derives hosts from the type
    for var in RUN_DIR CHECKPOINT_DIR GRID SHARD GLOBAL_TOKENS; do
      if [[ -n "${!var:-}" ]]; then
        words+=("$var=${!var}")
      fi
    done
    words+=(tpu_gpu_launch/run_job.sh "$job" "$@")
    printf -v remote '%q ' "${words[@]}"
    on_all_workers "cd $(printf %q "$remote_dir") && $remote"
    ;;
  ssh)
    gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker="${WORKER:-0}" "$@"
    ;;
  delete)
    gcloud compute tpus tpu-vm delete "$name" --zone "$zone" --quiet
    ;;
  *)
    echo "tpu_vm.sh: unknown action '$action' (create, install, run, ssh, delete)" >&2
    exit 2
    ;;
esac
