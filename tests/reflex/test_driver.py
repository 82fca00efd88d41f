"""driver.resolve_reflection, the one place a training's reflection is resolved: the one
passed wins, else the registered one; Reflex without one is refused, saying why."""

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
