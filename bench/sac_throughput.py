"""End-to-end SAC training throughput: ours (plain and Reflex) vs brax.training SAC.

Same machine, same run, same simulator object, equal settings: num_envs, batch size,
gradient updates per environment step, 256-256 ReLU actor and twin critics, tanh-Gaussian
actor with state-dependent scale, observation normalization, replay prefill, τ, γ, lr.
Reported: environment steps/s and gradient updates/s of the training phase (prefill and
compilation excluded; brax's rate is its third epoch, past its compile), and the
environment-only rate (random actions, one jitted scan) as the ceiling.

    .venv/bin/python bench/sac_throughput.py
    .venv/bin/python bench/sac_throughput.py --envs brax/ant --num-envs 64 --iterations 200
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ppo_throughput import env_only_rate  # pylint: disable=wrong-import-position

from reflex_jax import envs, peer, sac  # pylint: disable=wrong-import-position


def ours_rates(sim, config: sac.SACConfig, seeds: int) -> tuple[float, float]:
  """(env-steps/s, gradient updates/s), pooled over `seeds` runs."""
  steps = updates = seconds = 0.0
  for seed in range(seeds):
    _, _, m = sac.train(sim, config, seed=seed)
    seconds += float(m["train_seconds"])
    steps += float(m["env_steps_per_second"]) * float(m["train_seconds"])
    updates += float(m["gradient_updates_per_second"]) * float(m["train_seconds"])
  return steps / seconds, updates / seconds


def brax_rates(sim, config: sac.SACConfig) -> tuple[float, float]:
  training_steps = config.num_timesteps - config.learning_starts
  sps = []
  kwargs = dict(peer.sac_kwargs(config), num_timesteps=config.learning_starts + 3 * training_steps,
                num_evals=4, num_eval_envs=8)
  peer.train(sim, "sac", kwargs, seed=0, progress_fn=lambda step, m: sps.append(
      float(m["training/sps"])) if "training/sps" in m else None)
  print(f"  brax.training sps per epoch: {', '.join(f'{x:,.0f}' for x in sps)}", flush=True)
  env_steps = sps[-1]  # the third training epoch: past any compile of the first two
  return env_steps, env_steps / config.num_envs * config.grad_updates_per_step


def matched_config(num_envs: int, updates_per_step: int, batch_size: int,
                   iterations: int) -> sac.SACConfig:
  """Plain SAC of `iterations` timed iterations after a prefill of 32 steps per env; brax_rates
  gives brax.training the same settings."""
  prefill = 4 * num_envs * 8
  return sac.SACConfig(
      num_envs=num_envs, batch_size=batch_size, grad_updates_per_step=updates_per_step,
      learning_starts=prefill, num_timesteps=prefill + num_envs * iterations,
      buffer_size=100_000, num_logs=1, num_eval_envs=8, num_devices=1)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--envs", nargs="+",
                      default=["brax/inverted_double_pendulum", "brax/walker2d"])
  parser.add_argument("--num-envs", type=int, default=16)
  parser.add_argument("--updates-per-step", type=int, default=8,
                      help="gradient updates per step of all environments")
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--iterations", type=int, default=150,
                      help="training iterations (env step + updates) timed per run")
  parser.add_argument("--seeds", type=int, default=2, help="runs pooled for our rates")
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device)")
  base = matched_config(args.num_envs, args.updates_per_step, args.batch_size, args.iterations)
  reflex = dataclasses.replace(base, reflex=sac.ReflexConfig())
  header = (f"{'environment':30} {'env-only':>9} {'brax SAC':>15} {'ours':>15} {'Reflex':>15} "
            f"{'ours/brax':>9} {'Rfx/ours':>8}")
  rows = []
  for env_id in args.envs:
    sim = envs.make_simulator(env_id)
    ceiling = env_only_rate(sim, args.num_envs, 200)
    peer = brax_rates(sim, base)
    plain = ours_rates(sim, base, args.seeds)
    rfx = ours_rates(sim, reflex, args.seeds)
    cell = lambda r: f"{r[0]:7,.0f}/{r[1]:7,.0f}"
    rows.append(f"{env_id:30} {ceiling:9,.0f} {cell(peer):>15} {cell(plain):>15} "
                f"{cell(rfx):>15} {plain[1] / peer[1]:9.2f} {rfx[1] / plain[1]:8.2f}")
    print(rows[-1], flush=True)
  print(f"\nenv-steps/s / gradient-updates/s; {args.num_envs} envs, {args.updates_per_step} "
        f"updates per step, batch {args.batch_size}, 256-256 ReLU\n" + header + "\n"
        + "\n".join(rows))


if __name__ == "__main__":
  main()
