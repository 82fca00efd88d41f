"""Evaluation counts each env's first episode only, robust to a simulator that blows up
after the episode ended."""

import jax
import jax.numpy as jnp
import numpy as np

from reflex_jax.envs import EnvState
from reflex_jax.envs.base import Env
from reflex_jax.envs.wrappers import BatchWrapper, EpisodeWrapper
from reflex_jax.evaluate import evaluate


class Falls(Env):
  """Reward 1 per step; terminates at step 3; every step after that returns NaN."""
  env_id = "test/falls"
  observation_size, action_size = 1, 1
  mj_model = None

  def reset(self, key):
    return EnvState(native=jnp.zeros(()), obs=jnp.zeros(1), reward=jnp.zeros(()),
                    terminated=jnp.zeros(()), truncated=jnp.zeros(()))

  def step(self, state, action):
    t = state.native + 1
    reward = jnp.where(t > 3, jnp.nan, 1.0)
    return state.replace(native=t, obs=jnp.full(1, t), reward=reward,
                         terminated=(t >= 3).astype(jnp.float32))


def test_nan_after_termination_is_not_counted():
  env = BatchWrapper(EpisodeWrapper(Falls(), episode_length=10), num_envs=2)
  out = evaluate(env, lambda obs, key: jnp.zeros((2, 1)), jax.random.key(0), num_steps=10,
                 deterministic=True)
  np.testing.assert_allclose(out["eval_return"], 3.0)
  np.testing.assert_allclose(out["eval_length"], 3.0)
