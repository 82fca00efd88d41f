"""PPO training end to end: learning, vmapped runs, determinism, sharding, errors."""

import dataclasses

import jax
import numpy as np
import pytest

from reflex_jax import ppo
from reflex_jax.symmetry import registry
from tests.helpers import assert_close

TINY = ppo.PPOConfig(num_timesteps=16 * 16 * 8, num_envs=16, unroll_length=16,
                     num_minibatches=4, num_epochs=2, num_logs=2, episode_length=100,
                     num_eval_envs=4, num_devices=1)
REFLEX = dataclasses.replace(TINY, reflex=ppo.ReflexConfig())


@pytest.fixture(scope="module")
def sweep():
  """Reflex weights [0, 0.1] × seeds [0, 1] in one program."""
  return ppo.train("brax/inverted_pendulum", REFLEX, seed=[0, 1], reflex_weight=[0.0, 0.1])


def test_runs_carry_leading_axes_for_weights_and_seeds(sweep):
  make_policy, params, metrics = sweep
  assert metrics["episode_return"].shape == (2, 2, 2)  # logs × weights × seeds
  assert metrics["eval/return"].shape == (2, 2)
  assert metrics["policy_symmetry_error"].shape == (2, 2, 2)
  assert np.all(metrics["reflex_weight"][:, 0] == 0) and np.all(metrics["reflex_weight"][:, 1] > 0)
  one_run = jax.tree.map(lambda x: x[1, 0], params)
  policy = make_policy(one_run, deterministic=True)
  action = policy(np.zeros((3, 4), np.float32))
  assert action.shape == (3, 1) and np.all(np.abs(action) <= 1)


def test_plain_ppo_is_deterministic_equals_reflex_with_zero_weight_and_shards(sweep):
  assert len(jax.devices()) == 8  # tests/conftest.py asks for 8 host devices
  _, sweep_params, _ = sweep
  _, twice, metrics = ppo.train("brax/inverted_pendulum", TINY, seed=[1, 1])
  params = jax.tree.map(lambda x: x[0], twice)
  jax.tree.map(np.testing.assert_array_equal, params, jax.tree.map(lambda x: x[1], twice))
  # vmapped run (w0 = 0, seed 1) of the sweep = the separate plain run, up to rounding
  assert_close(jax.tree.map(lambda x: x[0, 1], sweep_params), params, rtol=1e-4, atol=1e-5)
  assert "policy_symmetry_error" in metrics  # measured for plain runs too
  # A separate program with the envs on 8 devices: equal up to rounding, so the result is
  # also the same across separate runs.
  _, eight, m_eight = ppo.train("brax/inverted_pendulum",
                                dataclasses.replace(TINY, num_devices=8), seed=1)
  assert_close(eight, params, rtol=1e-4, atol=1e-5)
  assert_close(m_eight["episode_return"], metrics["episode_return"][:, 0], rtol=1e-4)


def test_return_improves_on_inverted_pendulum():
  config = dataclasses.replace(TINY, num_timesteps=64 * 32 * 24, num_envs=64, unroll_length=32,
                               num_minibatches=8, num_epochs=4, num_logs=4, episode_length=1000)
  _, _, metrics = ppo.train("brax/inverted_pendulum", config, seed=0)
  returns = metrics["episode_return"]
  assert returns[-1] > 3 * returns[0], returns


@pytest.mark.parametrize("augment,symmetrize", [(True, False), (False, True)])
def test_reflex_options_train(augment, symmetrize):
  config = dataclasses.replace(TINY, num_logs=1, reflex=ppo.ReflexConfig(
      augment=augment, symmetrize=symmetrize, actor_loss="kl"))
  _, _, metrics = ppo.train("brax/inverted_pendulum", config, seed=0)
  assert np.isfinite(metrics["policy_loss"]).all()
  if symmetrize:  # exact equivariance: the measured error is rounding
    assert metrics["policy_symmetry_error"].max() < 1e-5


def test_reflex_on_a_task_without_reflection_says_it_reduces_to_the_baseline():
  with pytest.raises(registry.NoReflectionError, match="reduces to the plain baseline"):
    ppo.train("brax/hopper", REFLEX)


@pytest.mark.parametrize("change,message", [
    (dict(num_minibatches=3), "not divisible by num_minibatches"),
    (dict(num_envs=0), "num_envs must be positive"),
    (dict(lr_schedule="cosine"), "lr_schedule"),
])
def test_bad_config_is_named(change, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(TINY, **change)


def test_reflex_weight_without_reflex_config_is_an_error():
  with pytest.raises(ValueError, match="config.reflex is None"):
    ppo.train("brax/inverted_pendulum", TINY, reflex_weight=[0.0, 0.1])


@pytest.mark.slow
def test_ppo_solves_inverted_pendulum():
  config = ppo.PPOConfig(num_timesteps=400_000, num_envs=64, unroll_length=32,
                         num_minibatches=8, num_epochs=4, num_logs=5, num_devices=1)
  _, _, metrics = ppo.train("brax/inverted_pendulum", config, seed=0)
  assert metrics["eval/return"] >= 900, metrics["eval/return"]


def test_trainer_without_a_reflection_argument_uses_the_registered_one():
  from reflex_jax import envs  # pylint: disable=import-outside-toplevel
  from reflex_jax.ppo.train import Trainer  # pylint: disable=import-outside-toplevel
  env = envs.make("brax/inverted_pendulum", num_envs=4)
  trainer = Trainer(env, REFLEX, None, updates_per_log=1, total_updates=1)
  assert trainer.reflection is not None
  trainer.reflection.check_sizes(env.observation_size, env.action_size)  # raises on mismatch
