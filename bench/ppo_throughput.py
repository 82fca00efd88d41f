"""End-to-end PPO training throughput: ours (plain and Reflex) vs brax.training PPO.

Same machine, same run, same simulator object, equal hyperparameters (num_envs, unroll,
minibatches, epochs, network sizes and activation, tanh-Gaussian policy with state-dependent
scale, observation normalization, gradient clipping). The ceiling is the environment-only
rate: the same batched environment stepped with random actions in one jitted scan.

Rates exclude compilation: ours compiles ahead of time; brax's first training epoch
includes its compile, so its rate is taken from the third epoch (num_evals=4).

    .venv/bin/python bench/ppo_throughput.py                       # ant, walker2d, CartpoleBalance
    .venv/bin/python bench/ppo_throughput.py --envs brax/ant --updates 40
"""

from __future__ import annotations

import argparse
import dataclasses

import jax

from reflex_jax import envs, peer, ppo
from reflex_jax.networks import PolicyConfig


def env_only_rate(sim, num_envs: int, steps: int) -> float:
  return envs.step_rate(envs.wrap(sim, num_envs=num_envs), num_envs, steps)


def ours_rate(sim, config: ppo.PPOConfig, seeds: int) -> float:
  """Pooled over `seeds` runs: different policies visit states of different simulation cost
  (contacts change the MJX solver's iterations), so one run's rate is noisy by ~10 %."""
  steps = seconds = 0.0
  for seed in range(seeds):
    _, _, metrics = ppo.train(sim, config, seed=seed)
    steps += float(metrics["total_env_steps"])
    seconds += float(metrics["train_seconds"])
  return steps / seconds


def brax_rate(sim, config: ppo.PPOConfig) -> float:
  sps = []
  kwargs = dict(peer.ppo_kwargs(config), num_timesteps=3 * config.num_timesteps, num_evals=4,
                num_eval_envs=8)
  peer.train(sim, "ppo", kwargs, seed=0, progress_fn=lambda step, m: sps.append(
      float(m["training/sps"])) if "training/sps" in m else None)
  print(f"  brax.training sps per epoch: {', '.join(f'{x:,.0f}' for x in sps)}", flush=True)
  return sps[-1]  # the third training epoch: past any compile of the first two


def matched_configs(num_envs: int, unroll: int, updates: int, *, num_minibatches: int = 8,
                    num_epochs: int = 4, episode_length: int | None = None):
  """(plain, Reflex) PPO configs of `updates` updates whose hyperparameters brax_rate gives
  brax.training too: 64-64 swish MLPs, tanh-Gaussian policy with state-dependent scale."""
  swish = dict(activation="swish")
  base = ppo.PPOConfig(
      num_envs=num_envs, unroll_length=unroll, num_minibatches=num_minibatches,
      num_epochs=num_epochs, num_timesteps=num_envs * unroll * updates, num_logs=1,
      num_eval_envs=8, episode_length=episode_length,
      policy=PolicyConfig(hidden=(64, 64), std="state_dependent", squash="tanh", **swish),
      value_hidden=(64, 64), value_activation="swish", entropy_coef=1e-3, num_devices=1)
  return base, dataclasses.replace(base, reflex=ppo.ReflexConfig())


def compare(env_id: str, base: ppo.PPOConfig, reflex: ppo.PPOConfig, seeds: int) -> dict:
  """env-steps/s of one environment: env-only (the ceiling, as many steps per env as one
  training run takes), brax.training PPO, ours plain and ours Reflex."""
  sim = envs.make_simulator(env_id)
  steps = base.num_timesteps // base.num_envs
  return {"env_only": env_only_rate(sim, base.num_envs, steps), "brax": brax_rate(sim, base),
          "ours": ours_rate(sim, base, seeds), "reflex": ours_rate(sim, reflex, seeds)}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--envs", nargs="+",
                      default=["brax/ant", "brax/walker2d", "playground/CartpoleBalance"])
  parser.add_argument("--num-envs", type=int, default=128)
  parser.add_argument("--unroll", type=int, default=32)
  parser.add_argument("--updates", type=int, default=30, help="PPO updates timed per run")
  parser.add_argument("--seeds", type=int, default=2, help="runs pooled for our rates")
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device)")
  base, reflex = matched_configs(args.num_envs, args.unroll, args.updates)
  header = (f"{'environment':28} {'env-only':>10} {'brax PPO':>10} {'ours':>10} {'Reflex':>10} "
            f"{'ours/brax':>9} {'ours/env':>8} {'Rfx/ours':>8}")
  rows = []
  for env_id in args.envs:
    r = compare(env_id, base, reflex, args.seeds)
    ceiling, peer, plain, rfx = r["env_only"], r["brax"], r["ours"], r["reflex"]
    rows.append(f"{env_id:28} {ceiling:10,.0f} {peer:10,.0f} {plain:10,.0f} {rfx:10,.0f} "
                f"{plain / peer:9.2f} {plain / ceiling:8.0%} {rfx / plain:8.2f}")
    print(rows[-1], flush=True)
  print(f"\nenv-steps/s, {args.num_envs} envs, unroll {args.unroll}, 8 minibatches, 4 epochs, "
        f"64-64 swish MLPs\n" + header + "\n" + "\n".join(rows))


if __name__ == "__main__":
  main()
