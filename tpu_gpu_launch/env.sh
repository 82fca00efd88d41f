# shellcheck shell=bash  # sourced, not run: no shebang
# Recommended environment for the launchers: `source tpu_gpu_launch/env.sh gpu|tpu|cpu`.
# Each setting says why it is here (tpu_gpu_launch/README.md has the table). Values already
# in the environment win, so a user can override any of them. XLA rejects unknown flags at
# start-up, and tests/launch checks the GPU flags against the pinned jaxlib.
platform="${1:?usage: source tpu_gpu_launch/env.sh gpu|tpu|cpu}"

# Compiled programs are cached on disk: a resumed or restarted job (preemption, a second grid
# cell with the same shapes) skips minutes of compilation.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$HOME/.cache/jax_compilation}"

case "$platform" in
  gpu)
    # JAX preallocates 75 % of GPU memory by default; the LM step wants more of it, and
    # nothing else shares the GPU in a training job.
    export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.90}"
    # --xla_gpu_enable_latency_hiding_scheduler: schedule the FSDP all-gathers and
    #   reduce-scatters early so they overlap the matmuls (multi-GPU; harmless on one GPU).
    # --xla_gpu_enable_while_loop_double_buffering: the HRM stacks scan over layers; double
    #   buffering lets layer i+1's parameter all-gather run during layer i.
    HRM_XLA_FLAGS="--xla_gpu_enable_latency_hiding_scheduler=true --xla_gpu_enable_while_loop_double_buffering=true"
    # --xla_gpu_triton_gemm_any: Triton for every matmul it supports; MJX physics and the RL
    #   MLPs are many small matmuls where it beats cuBLAS (MuJoCo Playground's recommendation).
    REFLEX_XLA_FLAGS="--xla_gpu_triton_gemm_any=true"
    # Headless rendering for videos (reflex_jax.run.video) on nodes without a display.
    export MUJOCO_GL="${MUJOCO_GL:-egl}"
    # NCCL prints its transport choice (NVLink, InfiniBand, sockets) once: the first thing to
    # look at when multi-node steps are slow.
    export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
    ;;
  tpu)
    # Overlap the FSDP collectives with compute (async collective fusion, as MaxText sets it).
    export LIBTPU_INIT_ARGS="${LIBTPU_INIT_ARGS:---xla_tpu_enable_async_collective_fusion=true --xla_tpu_enable_async_collective_fusion_fuse_all_gather=true --xla_tpu_enable_async_collective_fusion_multiple_steps=true --xla_tpu_overlap_compute_collective_tc=true --xla_enable_async_all_gather=true}"
    HRM_XLA_FLAGS=""
    REFLEX_XLA_FLAGS=""
    export MUJOCO_GL="${MUJOCO_GL:-osmesa}"  # TPU VMs have no GPU for EGL
    ;;
  cpu)
    HRM_XLA_FLAGS=""
    REFLEX_XLA_FLAGS=""
    ;;
  *)
    echo "env.sh: unknown platform '$platform' (gpu, tpu or cpu)" >&2
    # shellcheck disable=SC2317  # the exit is reached when the file is run rather than sourced
    return 2 2>/dev/null || exit 2
    ;;
esac
export HRM_XLA_FLAGS REFLEX_XLA_FLAGS
