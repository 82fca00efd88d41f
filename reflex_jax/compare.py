"""Plain vs Reflex (PPO or SAC) on one task, all seeds and both variants in one compiled program.

    python -m reflex_jax.compare                                   # the README's main job
    python -m reflex_jax.compare --env brax/ant --seeds 5 --steps 1000000
    python -m reflex_jax.compare --algo sac --env brax/inverted_double_pendulum --steps 100000

Prints, per variant, the final training return and the deterministic evaluation return
(mean and 95% t-interval over seeds), the environment steps needed to reach a return
threshold, and the measured symmetry errors of the final policy and critic.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import stats

from reflex_jax import ppo, sac
from reflex_jax.symmetry import registry

DEFAULT_ENV = "brax/inverted_double_pendulum"


def mean_ci(x: np.ndarray) -> tuple[float, float]:
  """Mean and the half-width of its 95% t-interval (0 for a single value)."""
  x = np.asarray(x, np.float64)
  if x.size < 2:
    return float(x.mean()), 0.0
  return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def steps_to_threshold(returns_LS: np.ndarray, env_steps_L: np.ndarray,
                       threshold: float) -> np.ndarray:
  """Per seed, the first logged env step whose training return reaches `threshold` (inf if never)."""
  reached = np.nan_to_num(returns_LS, nan=-np.inf) >= threshold
  first = np.argmax(reached, axis=0)
  return np.where(reached.any(axis=0), env_steps_L[first], np.inf)


def default_threshold(returns_LWS: np.ndarray) -> float:
  """80 % of the way from the first logged mean return to the best variant's final mean;
  unlike 80 % of the best return, this works for negative returns too."""
  means_LW = np.nanmean(returns_LWS, axis=-1)
  start = next((float(np.nanmean(m)) for m in means_LW if np.isfinite(m).any()), 0.0)
  best = float(np.nanmax(means_LW[-1]))
  return start + 0.8 * (best - start)


def format_table(env_id: str, metrics: dict, threshold: float, seeds: int,
                 algo: str = "PPO") -> str:
  steps = metrics["env_steps"]
  lines = [f"{env_id}: {seeds} seeds per variant, {int(steps[-1]):,} env steps each; "
           f"threshold {threshold:.1f}",
           f"{'variant':14} {'final return':>20} {'eval return':>20} {'steps to thr.':>22} "
           f"{'reached':>7} {'policy sym err':>14} {'value sym err':>13}"]
  for i, name in enumerate((algo, f"Reflex-{algo}")):
    final, final_ci = mean_ci(metrics["episode_return"][-1, i])
    evaluation, eval_ci = mean_ci(metrics["eval/return"][i])
    hit = steps_to_threshold(metrics["episode_return"][:, i], steps, threshold)
    finite = hit[np.isfinite(hit)]
    hit_mean, hit_ci = mean_ci(finite) if finite.size else (np.inf, 0.0)
    lines.append(
        f"{name:14} {final:11.1f} ± {final_ci:6.1f} {evaluation:11.1f} ± {eval_ci:6.1f} "
        f"{hit_mean:13,.0f} ± {hit_ci:6,.0f} {finite.size:3d}/{hit.size:<3d} "
        f"{metrics['policy_symmetry_error'][-1, i].mean():14.4f} "
        f"{metrics['value_symmetry_error'][-1, i].mean():13.4f}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.compare", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--algo", choices=("ppo", "sac"), default="ppo")
  parser.add_argument("--env", default=DEFAULT_ENV, help="a task with a registered reflection: "
                      + ", ".join(registry.symmetric_env_ids()))
  parser.add_argument("--seeds", type=int, default=4)
  parser.add_argument("--steps", type=int, default=600_000, help="env steps per run")
  parser.add_argument("--num-envs", type=int, default=None,
                      help="parallel environments (default: 64 for PPO, 16 for SAC)")
  parser.add_argument("--weight", type=float, default=0.1, help="Reflex w0 (linear decay)")
  parser.add_argument("--threshold", type=float, default=None,
                      help="return threshold (default: 80%% of the way from the first logged "
                      "mean return to the best final mean return)")
  parser.add_argument("--logs", type=int, default=20, help="logging intervals")
  args = parser.parse_args(argv)
  try:
    registry.get(args.env).require()
  except (registry.UnknownEnvironmentError, registry.NoReflectionError) as err:
    parser.error(str(err))
  if args.algo == "ppo":
    algorithm, train = "PPO", ppo.train
    config = ppo.PPOConfig(num_timesteps=args.steps, num_envs=args.num_envs or 64,
                           unroll_length=32, num_minibatches=8, num_epochs=4,
                           num_logs=args.logs, reflex=ppo.ReflexConfig())
  else:
    algorithm, train = "SAC", sac.train
    config = sac.SACConfig(num_timesteps=args.steps, num_envs=args.num_envs or 16,
                           learning_starts=min(10_000, args.steps // 10),
                           num_logs=args.logs, reflex=sac.ReflexConfig())

  start = time.perf_counter()

  def progress(step, m):
    r = np.nanmean(m["episode_return"], axis=-1)
    print(f"  {step:>10,} steps  return {algorithm} {r[0]:8.1f}  Reflex {r[1]:8.1f}  "
          f"({time.perf_counter() - start:5.0f}s)", flush=True)

  _, _, metrics = train(args.env, config, seed=list(range(args.seeds)),
                        reflex_weight=[0.0, args.weight], progress_fn=progress)
  threshold = args.threshold
  if threshold is None:
    threshold = default_threshold(metrics["episode_return"])
  print()
  print(format_table(args.env, metrics, threshold, args.seeds, algorithm))
  print(f"compile {metrics['compile_seconds']:.0f}s, train {metrics['train_seconds']:.0f}s, "
        f"{metrics['env_steps_per_second']:,.0f} env-steps/s over all "
        f"{2 * args.seeds} runs")
  return 0


if __name__ == "__main__":
  sys.exit(main())
