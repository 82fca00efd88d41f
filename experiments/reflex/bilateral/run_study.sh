#!/usr/bin/env bash
# The whole bilateral study in the background, one process per core; rerunning resumes it.
#   nohup experiments/reflex/bilateral/run_study.sh > runs/bilateral/study.log 2>&1 &
# Shard 0: walker2d SAC on brax's model (ours, then brax.training) and on the equalized model.
# Shard 1: ant PPO (ours, then brax.training; ant's model is exactly symmetric already), then
# the entropy A/B: the same baseline with the pre-squash Gaussian entropy bonus.
set -u
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
GRID=experiments/reflex/bilateral/study.yaml
{
  taskset -c 0 $PY -m reflex_jax.run.grid --config $GRID --shard 0/2
  taskset -c 0 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral/equalized \
      'cells=[brax/walker2d/sac]' common.sac.equalize_asymmetries=true
} &
{
  taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID --shard 1/2
  taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_entropy/gaussian \
      'cells=[brax/ant/ppo]' 'common.variants=[baseline]' common.ppo.entropy_estimate=gaussian \
      peer_seeds=0
} &
wait
$PY -m reflex_jax.run.report runs/bilateral
