"""Measure raw brax environment stepping throughput (env-steps per second).

For each environment, this script:
  1. builds ``brax.envs.get_environment(name, backend=...)`` (default backend: mjx),
  2. vmaps ``env.reset`` over ``--num-envs`` PRNG keys,
  3. jits one rollout function: a ``jax.lax.scan`` over ``--steps`` calls of the
     vmapped ``env.step``, with uniform random actions in [-1, 1] drawn inside the
     scan from a carried key (no policy, no training, no host round-trips),
  4. times the first call separately (trace + compile + one run), then times
     ``--repeats`` further calls with ``block_until_ready`` and reports the median
     rate ``num_envs * steps / seconds``.

The number isolates the simulator + XLA backend cost, so it is the right thing to
compare across jax/jaxlib versions and XLA_FLAGS settings. It only needs jax and
brax (plus mujoco/mujoco-mjx for the mjx backend); brax.training is not used.

Example:
  python bench/env_step_rate.py --envs walker2d ant --steps 1000 --repeats 3
  XLA_FLAGS=--xla_cpu_use_thunk_runtime=false python bench/env_step_rate.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
from brax import envs


def make_rollout(env, num_envs: int, steps: int):
    """Returns a jitted fn(key) -> final state sum, rolling out random actions."""
    reset = jax.vmap(env.reset)
    step = jax.vmap(env.step)

    def rollout(key):
        key, reset_key = jax.random.split(key)
        state = reset(jax.random.split(reset_key, num_envs))

        def body(carry, _):
            state, key = carry
            key, act_key = jax.random.split(key)
            action = jax.random.uniform(
                act_key, (num_envs, env.action_size), minval=-1.0, maxval=1.0)
            state = step(state, action)
            return (state, key), state.reward

        (state, _), rewards = jax.lax.scan(
            body, (state, key), None, length=steps)
        # Return something small that depends on the whole rollout.
        return jnp.sum(rewards) + jnp.sum(state.obs)

    return jax.jit(rollout)


def bench_env(name: str, backend: str, num_envs: int, steps: int,
              repeats: int, seed: int) -> dict:
    env = envs.get_environment(name, backend=backend)
    rollout = make_rollout(env, num_envs, steps)
    key = jax.random.PRNGKey(seed)

    t0 = time.perf_counter()
    jax.block_until_ready(rollout(key))
    first_call_s = time.perf_counter() - t0

    times = []
    for i in range(repeats):
        k = jax.random.fold_in(key, i + 1)
        t0 = time.perf_counter()
        jax.block_until_ready(rollout(k))
        times.append(time.perf_counter() - t0)

    median_s = statistics.median(times)
    return {
        'env': name,
        'backend': backend,
        'num_envs': num_envs,
        'steps': steps,
        'repeats': repeats,
        'first_call_s': round(first_call_s, 3),
        'run_times_s': [round(t, 4) for t in times],
        'median_s': round(median_s, 4),
        'steps_per_s': round(num_envs * steps / median_s, 1),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--envs', nargs='+', default=['walker2d', 'ant'])
    p.add_argument('--backend', default='mjx')
    p.add_argument('--num-envs', type=int, default=128)
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--label', default='', help='free-form tag stored in --json')
    p.add_argument('--json', default=None,
                   help='append one JSON line per env to this file')
    args = p.parse_args()

    import jaxlib
    xla_flags = os.environ.get('XLA_FLAGS', '')
    header = {
        'jax': jax.__version__,
        'jaxlib': jaxlib.__version__,
        'device': str(jax.devices()[0]),
        'cpu_count': os.cpu_count(),
        'xla_flags': xla_flags,
    }
    print(f"jax {header['jax']} (jaxlib {header['jaxlib']}) on "
          f"{header['device']}, {header['cpu_count']} cpus")
    print(f'XLA_FLAGS={xla_flags!r}')
    print(f"{'env':<12}{'backend':<9}{'envs':>6}{'steps':>7}"
          f"{'first_call_s':>14}{'median_s':>10}{'steps/s':>12}")

    for name in args.envs:
        r = bench_env(name, args.backend, args.num_envs, args.steps,
                      args.repeats, args.seed)
        print(f"{r['env']:<12}{r['backend']:<9}{r['num_envs']:>6}{r['steps']:>7}"
              f"{r['first_call_s']:>14.2f}{r['median_s']:>10.3f}"
              f"{r['steps_per_s']:>12,.0f}", flush=True)
        if args.json:
            now = datetime.datetime.now().isoformat(timespec='seconds')
            rec = {**header, **r, 'label': args.label,
                   'host': platform.node(), 'time': now}
            with open(args.json, 'a') as f:
                f.write(json.dumps(rec) + '\n')


if __name__ == '__main__':
    main()
