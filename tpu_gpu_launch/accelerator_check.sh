#!/usr/bin/env bash
# The accelerator check on a fresh node, in one command: install the offline bundle (if one is
# given) into a private folder, source the recommended flags, run bench/accelerator.py.
#   tpu_gpu_launch/accelerator_check.sh [BUNDLE_DIR] [bench/accelerator.py flags ...]
# Settings (environment): PYTHON (default python3), SITE (private install folder, default
# ~/.reflex-site), OUT_DIR (JSON, markdown and log; default accelerator-check), PLATFORM
# (gpu | tpu | cpu, for env.sh; default gpu).
set -uo pipefail  # no -e: a failed bundle check is reported and the check goes on
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-python3}"
OUT_DIR="${OUT_DIR:-accelerator-check}"
mkdir -p "$OUT_DIR"
if [[ $# -gt 0 && -d "$1" ]]; then
  bundle="$1"
  shift
  SITE="${SITE:-$HOME/.reflex-site}"
  # A missing module is named and the check goes on: the sections that need it fail alone.
  "$PY" tpu_gpu_launch/bundle.py install "$bundle" --target "$SITE" \
    || echo "accelerator_check: the bundle check failed (above); running what can run" >&2
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
# shellcheck source=SCRIPTDIR/env.sh
source tpu_gpu_launch/env.sh "${PLATFORM:-gpu}"
"$PY" bench/accelerator.py --out "$OUT_DIR/accelerator.json" --md "$OUT_DIR/accelerator.md" "$@" \
  2>&1 | tee "$OUT_DIR/accelerator.log"
exit "${PIPESTATUS[0]}"
