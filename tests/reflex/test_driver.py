"""driver.resolve_reflection, the one place a training's reflection is resolved: the one
passed wins, else the registered one; Reflex without one is refused, saying why. And the
first-run compile paths: the evaluation compiled in the background, init compiled at -O0."""

import jax
import numpy as np
import pytest

from reflex_jax import driver, envs
from reflex_jax.envs.base import Wrapper
from reflex_jax.regularizer import ReflexConfig
from reflex_jax.symmetry import Reflection, ReflectionError, registry

ENV = "toy/point_mass"  # 4 observations, 2 actions


def _reflection(obs_size: int) -> Reflection:
  """A valid reflection other than the registered one: the identity on observations."""
  return Reflection.create(obs_perm=range(obs_size), obs_sign=[1] * obs_size,
                           action_perm=[1, 0], action_sign=[1, 1], kind="bilateral", plane="y")


def test_the_reflection_passed_wins_and_must_fit_the_env():
  sim = envs.make_simulator(ENV)
  registered = driver.resolve_reflection(sim)
  assert registered is not None and registered != _reflection(4)
  given = _reflection(4)
  assert driver.resolve_reflection(sim, ReflexConfig(), given) is given
  with pytest.raises(ReflectionError, match="4 observations / 2 actions"):
    driver.resolve_reflection(sim, None, _reflection(3))


def test_an_unregistered_env_has_no_reflection_unless_given_and_reflex_needs_one():
  env = Wrapper(envs.make_simulator(ENV))
  env.env_id = "my/own_task"  # a user's environment, unknown to the registry
  assert driver.resolve_reflection(env) is None  # plain training: no symmetry metrics
  with pytest.raises(registry.NoReflectionError, match="pass reflection= to use Reflex"):
    driver.resolve_reflection(env, ReflexConfig())
  given = _reflection(4)
  assert driver.resolve_reflection(env, ReflexConfig(), given) is given


def test_the_evaluation_compiled_in_the_background_gives_the_foreground_result():
  from reflex_jax import ppo
  config = ppo.PPOConfig(num_envs=4, unroll_length=8, num_timesteps=32, num_eval_envs=3,
                         episode_length=20)
  grid = driver.RunGrid.create([0, 1], None, None, "PPO")
  sim, trainer = ppo.make_trainer(ENV, config)
  state = driver.run_once(jax.vmap(trainer.init), grid.keys, grid.weights)
  policy = driver.make_policy(trainer.net)
  background = driver.FinalEvaluation(sim, config, policy, grid)
  background.compile_in_background(state.params)
  background.wait_compiled()
  got = background(state.params)
  want = driver.final_evaluation(sim, config, policy, state.params, grid)
  assert set(got) == set(want) and "eval/return" in got and got["eval/return"].shape == (2,)
  for k in want:
    np.testing.assert_array_equal(got[k], want[k])


def test_run_once_matches_the_optimized_program_to_rounding():
  from reflex_jax import ppo
  config = ppo.PPOConfig(num_envs=4, unroll_length=8, num_timesteps=32)
  grid = driver.RunGrid.create([0, 1], None, None, "PPO")
  _, trainer = ppo.make_trainer(ENV, config)
  once = driver.run_once(jax.vmap(trainer.init), grid.keys, grid.weights)
  optimized = jax.jit(jax.vmap(trainer.init))(grid.keys, grid.weights)
  for a, b in zip(jax.tree.leaves((once.params, once.env_state.obs)),
                  jax.tree.leaves((optimized.params, optimized.env_state.obs))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
