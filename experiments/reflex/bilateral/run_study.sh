#!/usr/bin/env bash
# The bilateral study in the background, one process per core; rerunning resumes every part
# (finished cells are skipped, interrupted ones continue from their checkpoints).
#   nohup experiments/reflex/bilateral/run_study.sh > runs/bilateral_study.log 2>&1 &
#   experiments/reflex/bilateral/run_study.sh report        # only the report of what finished
# Measured on the 2-core CPU (one core per process): ant PPO, baseline + Reflex × 5 seeds,
# 1M steps: ~90 min; walker2d SAC, 60k steps: ~10 min per logging interval (of 10); humanoid
# PPO (brax's 8 epochs × 32 minibatches, 256×5 value net), 10 runs: ~2.7 s per run and update,
# so 98 updates take ~4.4 h; each ablation on ant (5 seeds) ~45–60 min.
# Core 0: walker2d SAC and humanoid PPO on brax's models (ours, then brax.training), then on
#   the equalized models (the exactly symmetric MDPs), then the hard-symmetric ablation, then
#   the humanoid baseline with brax.training's advantage estimator (ppo.advantage_estimator);
#   core 1 last runs it with brax's network initialization (ppo.network_init).
# Core 1: ant PPO (ours, then brax.training; ant's model is exactly symmetric as it is), the
#   entropy A/B (the same baseline with the pre-squash Gaussian entropy bonus), then the
#   other ablations on ant. Each ablation is its own run directory (one results.json as soon
#   as it finishes), compared with the standard cell's baseline: the same settings and seeds.
set -u
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
GRID=experiments/reflex/bilateral/study.yaml
OUT=experiments/reflex/results/bilateral
ABLATIONS_CORE0="symmetrize"
ABLATIONS_CORE1="reflex_actor_only reflex_critic_only augment reflex_kl"

ablation() {  # $1: core, $2: variant
  taskset -c "$1" $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_ablations/$2 \
      'cells=[brax/ant/ppo]' peer_seeds=0 "common.variants=[$2]"
}
parity() {  # $1: core, $2: name, $3: cell, the rest: overrides. A cell's baseline with one of
  # brax.training's choices (its advantage estimator, its initialization), to find what puts
  # brax's PPO ahead of ours on humanoid; with brax's estimator, Reflex against that baseline
  core=$1 name=$2 cell=$3; shift 3
  taskset -c "$core" $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_parity/$name \
      "cells=[$cell]" peer_seeds=0 'common.variants=[baseline]' "$@"
}
BRAX_GAE="common.ppo.advantage_estimator=brax"
equalized() {  # $1: core, $2: cells
  taskset -c "$1" $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral/equalized \
      "cells=[$2]" peer_seeds=0 common.sac.equalize_asymmetries=true \
      common.ppo.equalize_asymmetries=true
}

if [ "${1:-all}" != report ]; then
  {
    taskset -c 0 $PY -m reflex_jax.run.grid --config $GRID --shard 0/2
    equalized 0 brax/walker2d/sac
    for v in $ABLATIONS_CORE0; do ablation 0 "$v"; done
    equalized 0 brax/humanoid/ppo
    parity 0 estimator brax/humanoid/ppo $BRAX_GAE common.ppo.advantage_segment=10
    parity 0 estimator_reflex brax/humanoid/ppo $BRAX_GAE common.ppo.advantage_segment=10 \
        'common.variants=[reflex]'
    parity 0 estimator_equalized brax/humanoid/ppo $BRAX_GAE common.ppo.advantage_segment=10 \
        common.ppo.equalize_asymmetries=true
  } &
  {
    taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID --shard 1/2
    taskset -c 1 $PY -m reflex_jax.run.grid --config $GRID out_dir=runs/bilateral_entropy/gaussian \
        'cells=[brax/ant/ppo]' 'common.variants=[baseline]' common.ppo.entropy_estimate=gaussian \
        peer_seeds=0
    for v in $ABLATIONS_CORE1; do ablation 1 "$v"; done
    parity 1 init brax/humanoid/ppo common.ppo.network_init=lecun_uniform
    parity 1 ant_estimator brax/ant/ppo $BRAX_GAE common.ppo.advantage_segment=5 \
        'common.variants=[baseline,reflex]'
    parity 1 estimator_equalized_reflex brax/humanoid/ppo $BRAX_GAE \
        common.ppo.advantage_segment=10 common.ppo.equalize_asymmetries=true \
        'common.variants=[reflex]'
  } &
  wait
fi
# The report (curves, tables) and each finished cell's results.json / peer.json, committed
# under experiments/reflex/results/bilateral/; the entropy A/B and the ablations (each against
# the standard cell's baseline, so P(first > second) is P(ablation > PPO)) as tables.
copy() {  # runs/$1/<cells>/{results,peer}.json → $OUT/$2/<cells>/
  [ -d "runs/$1" ] || return 0
  mkdir -p "$OUT/$2"
  (cd "runs/$1" && find . \( -name results.json -o -name peer.json \) \
      -exec cp --parents {} "$OLDPWD/$OUT/$2/" \;)
}
copy bilateral/standard standard && copy bilateral/equalized equalized
copy bilateral_entropy entropy && copy bilateral_ablations ablations
copy bilateral_parity parity
$PY -m reflex_jax.run.report $OUT/standard --out $OUT
[ -d $OUT/equalized ] && $PY -m reflex_jax.run.report $OUT/equalized --out $OUT/equalized
BASE=$OUT/standard/brax_ant/ppo
[ -f $OUT/entropy/gaussian/brax_ant/ppo/results.json ] && $PY -m reflex_jax.run.report \
    --compare $BASE:baseline $OUT/entropy/gaussian/brax_ant/ppo:baseline > $OUT/entropy_ab.md
HUMANOID=$OUT/standard/brax_humanoid/ppo
{
  for v in estimator init; do  # each against our baseline, then against brax.training
    [ -f $OUT/parity/$v/brax_humanoid/ppo/results.json ] || continue
    for other in baseline brax.training; do
      $PY -m reflex_jax.run.report --compare $OUT/parity/$v/brax_humanoid/ppo:baseline \
          $HUMANOID:$other
      echo
    done
  done
  # Reflex against the baseline that matches brax.training's (both with brax's estimator)
  # (on brax's model, then on the equalized one)
  for model in "" _equalized; do
    reflex=$OUT/parity/estimator${model}_reflex/brax_humanoid/ppo
    [ -f $reflex/results.json ] || continue
    $PY -m reflex_jax.run.report --compare $reflex:reflex \
        $OUT/parity/estimator$model/brax_humanoid/ppo:baseline
    echo
  done
} > $OUT/parity.md
[ -d $OUT/parity/ant_estimator ] && $PY -m reflex_jax.run.report $OUT/parity/ant_estimator \
    --out $OUT/parity/ant_estimator
for v in $ABLATIONS_CORE0 $ABLATIONS_CORE1; do
  [ -f $OUT/ablations/$v/brax_ant/ppo/results.json ] || continue
  $PY -m reflex_jax.run.report --compare $OUT/ablations/$v/brax_ant/ppo:$v $BASE:baseline
done > $OUT/ablations.md
