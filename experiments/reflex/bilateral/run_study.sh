#!/usr/bin/env bash
# The bilateral study in the background, one process per core; rerunning resumes every part
# (finished cells are skipped, interrupted ones continue from their checkpoints).
#   nohup experiments/reflex/bilateral/run_study.sh > runs/bilateral_study.log 2>&1 &
# Measured on the 2-core CPU (one core per process): ant PPO, baseline + Reflex × 5 seeds,
# 1M steps: ~90 min; walker2d SAC, 60k steps: ~10 min per logging interval (of 10); humanoid
# PPO (brax's 8 epochs × 32 minibatches, 256×5 value net), 10 runs: ~2.7 s per run and update,
# so 98 updates take ~4.4 h; the ablations (7 variants × 5 seeds on ant) ~5 h.
# Core 0: walker2d SAC and humanoid PPO on brax's models (ours, then brax.training), then on
#   the equalized models (the exactly symmetric MDPs).
# Core 1: ant PPO (ours, then brax.training; ant's model is exactly symmetric as it is), the
#   entropy A/B (the same baseline with the pre-squash Gaussian entropy bonus), then the
#   ablations on ant.
set -u
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
GRID=experiments/reflex/bilateral/study.yaml
{
  taskset -c 0 $PY -m reflex_jax.run.grid --config $GRID --shard 0/2
  taskset -c 0 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral/equalized \
      'cells=[brax/walker2d/sac,brax/humanoid/ppo]' common.sac.equalize_asymmetries=true \
      common.ppo.equalize_asymmetries=true
} &
{
  taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID --shard 1/2
  taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_entropy/gaussian \
      'cells=[brax/ant/ppo]' 'common.variants=[baseline]' common.ppo.entropy_estimate=gaussian \
      peer_seeds=0
  taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_ablations \
      'cells=[brax/ant/ppo]' peer_seeds=0 \
      'common.variants=[baseline,reflex,reflex_actor_only,reflex_critic_only,reflex_kl,augment,symmetrize]'
} &
wait
# The report (curves, tables) and each finished cell's results.json / peer.json, committed
# under experiments/reflex/results/bilateral/; the entropy A/B as a table.
OUT=experiments/reflex/results/bilateral
$PY -m reflex_jax.run.report runs/bilateral --out $OUT
copy() {  # runs/$1/<cells>/{results,peer}.json → $OUT/$2/<cells>/
  [ -d "runs/$1" ] || return 0
  mkdir -p "$OUT/$2"
  (cd "runs/$1" && find . \( -name results.json -o -name peer.json \) \
      -exec cp --parents {} "$OLDPWD/$OUT/$2/" \;)
}
copy bilateral . && copy bilateral_entropy entropy && copy bilateral_ablations ablations
$PY -m reflex_jax.run.report --compare runs/bilateral/standard/brax_ant/ppo:baseline \
    runs/bilateral_entropy/gaussian/brax_ant/ppo:baseline > $OUT/entropy_ab.md
