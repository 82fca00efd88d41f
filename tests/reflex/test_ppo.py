"""PPO training end to end: learning, vmapped runs, determinism, sharding, errors."""

import collections
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import driver, envs, ppo
from reflex_jax.networks import ActorCritic, PolicyConfig, make_actor_critic
from reflex_jax.symmetry import registry
from tests.helpers import assert_close

TINY = ppo.PPOConfig(num_timesteps=16 * 16 * 8, num_envs=16, unroll_length=16,
                     num_minibatches=4, num_epochs=2, num_logs=2, episode_length=100,
                     num_eval_envs=4, num_devices=1)
REFLEX = dataclasses.replace(TINY, reflex=ppo.ReflexConfig())
# The training machinery is checked on the pure-JAX task (it compiles in seconds, an MJX task
# in minutes); the learning runs on brax tasks are `slow`, and test_run drives brax end to end.
ENV = "toy/point_mass"


@pytest.fixture(scope="module")
def sweep():
  """Reflex weights [0, 0.1] × seeds [0, 1] in one program."""
  return ppo.train(ENV, REFLEX, seed=[0, 1], reflex_weight=[0.0, 0.1])


@pytest.mark.long
def test_runs_carry_leading_axes_for_weights_and_seeds(sweep):
  make_policy, params, metrics = sweep
  assert metrics["episode_return"].shape == (2, 2, 2)  # logs × weights × seeds
  assert metrics["eval/return"].shape == (2, 2)
  assert metrics["policy_symmetry_error"].shape == (2, 2, 2)
  assert np.all(metrics["reflex_weight"][:, 0] == 0) and np.all(metrics["reflex_weight"][:, 1] > 0)
  one_run = jax.tree.map(lambda x: x[1, 0], params)
  policy = make_policy(one_run, deterministic=True)
  action = policy(np.zeros((3, 4), np.float32))
  assert action.shape == (3, 2) and np.all(np.abs(action) <= 1)
  # brax.training's form: (action, extras), the same action
  brax_action, extras = make_policy(one_run, deterministic=True, extras=True)(
      np.zeros((3, 4), np.float32), jax.random.key(0))
  np.testing.assert_array_equal(brax_action, action)
  assert extras == {}


@pytest.mark.long
def test_plain_ppo_is_deterministic_equals_reflex_with_zero_weight_and_shards(sweep):
  assert len(jax.devices()) == 8  # tests/conftest.py asks for 8 host devices
  _, sweep_params, _ = sweep
  _, twice, metrics = ppo.train(ENV, TINY, seed=[1, 1])
  params = jax.tree.map(lambda x: x[0], twice)
  jax.tree.map(np.testing.assert_array_equal, params, jax.tree.map(lambda x: x[1], twice))
  # vmapped run (w0 = 0, seed 1) of the sweep = the separate plain run, up to rounding
  assert_close(jax.tree.map(lambda x: x[0, 1], sweep_params), params, rtol=1e-4, atol=1e-5)
  assert "policy_symmetry_error" in metrics  # measured for plain runs too
  # A separate program with the envs on 8 devices: equal up to rounding, so the result is
  # also the same across separate runs.
  _, eight, m_eight = ppo.train(ENV, dataclasses.replace(TINY, num_devices=8), seed=1)
  assert_close(eight, params, rtol=1e-4, atol=1e-5)
  assert_close(m_eight["episode_return"], metrics["episode_return"][:, 0], rtol=1e-4)


@pytest.mark.long
def test_return_improves_on_the_toy_task():
  config = dataclasses.replace(TINY, num_timesteps=64 * 32 * 24, num_envs=64, unroll_length=32,
                               num_minibatches=8, num_epochs=4, num_logs=4, episode_length=1000)
  built = []  # train() builds its networks with the factory it is given

  def default_networks(*args):
    built.append(args)
    return make_actor_critic(*args)
  _, _, metrics = ppo.train(ENV, config, seed=0, network_factory=default_networks)
  assert len(built) == 1
  returns = metrics["episode_return"]
  assert returns[-1] > 3 * returns[0], returns


@pytest.mark.slow
def test_return_improves_on_inverted_pendulum():
  config = dataclasses.replace(TINY, num_timesteps=64 * 32 * 24, num_envs=64, unroll_length=32,
                               num_minibatches=8, num_epochs=4, num_logs=4, episode_length=1000)
  _, _, metrics = ppo.train("brax/inverted_pendulum", config, seed=0)
  returns = metrics["episode_return"]
  assert returns[-1] > 3 * returns[0], returns


def _rows(*columns) -> list[tuple]:
  return [tuple(np.concatenate([np.ravel(c[i]) for c in columns]).tolist())
          for i in range(len(columns[0]))]


@pytest.mark.long
@pytest.mark.parametrize("augment,symmetrize", [(True, False), (False, True)])
def test_reflex_options_train(augment, symmetrize, monkeypatch):
  # Every minibatch the loss sees is recorded, to check what augmentation put in it.
  train_module = sys.modules["reflex_jax.ppo.train"]
  real_loss, seen = train_module.ppo_loss, []

  def recording_loss(params, batch, weight, **kwargs):
    jax.debug.callback(lambda *xs: seen.append([np.asarray(x) for x in xs]), batch.obs,
                       batch.raw_action, batch.advantage, batch.target_value, batch.log_prob)
    return real_loss(params, batch, weight, **kwargs)
  monkeypatch.setattr(train_module, "ppo_loss", recording_loss)

  config = dataclasses.replace(TINY, num_logs=1, reflex=ppo.ReflexConfig(
      augment=augment, symmetrize=symmetrize, actor_loss="kl"))
  _, _, metrics = ppo.train(ENV, config, seed=0)
  assert np.isfinite(metrics["policy_loss"]).all()
  if symmetrize:  # exact equivariance: the measured error is rounding
    assert metrics["policy_symmetry_error"].max() < 1e-5

  updates = TINY.num_timesteps // (TINY.num_envs * TINY.unroll_length)
  assert len(seen) == updates * TINY.num_epochs * TINY.num_minibatches
  samples = TINY.num_envs * TINY.unroll_length // TINY.num_minibatches
  assert {len(s[0]) for s in seen} == {2 * samples if augment else samples}
  obs, action, advantage, target, log_prob = (np.concatenate(x) for x in zip(*seen))
  g = driver.resolve_reflection(envs.make_simulator(ENV))
  # Each epoch goes once over the (augmented) batch, so with augmentation the samples are
  # closed under the reflection: (g_s s, g_a u) is there for every (s, u), with the same
  # advantage and value target. Without, mirror images are (almost surely) absent.
  rows = collections.Counter(_rows(obs, action, advantage, target))
  mirrored = collections.Counter(_rows(np.asarray(g.reflect_obs(obs)),
                                       np.asarray(g.reflect_action(action)), advantage, target))
  if augment:
    assert mirrored == rows
    # The ratio's π_old of a mirror image is the old policy's at the mirrored state, not a
    # copy of the original's (the network is not equivariant, so they differ).
    by_row = dict(zip(_rows(obs, action, advantage, target), log_prob))
    mirror_log_prob = np.array([by_row[r] for r in _rows(
        np.asarray(g.reflect_obs(obs)), np.asarray(g.reflect_action(action)), advantage, target)])
    assert np.mean(np.abs(mirror_log_prob - log_prob) > 1e-6) > 0.9
  else:
    assert sum((rows & mirrored).values()) < 0.01 * len(obs)


def test_reflex_on_a_task_without_reflection_says_it_reduces_to_the_baseline():
  with pytest.raises(registry.NoReflectionError, match="reduces to the plain baseline"):
    ppo.train("brax/hopper", REFLEX)


@pytest.mark.parametrize("change,message", [
    (dict(num_minibatches=3), "not divisible by num_minibatches"),
    (dict(num_envs=0), "num_envs must be positive"),
    (dict(lr_schedule="cosine"), "lr_schedule"),
    (dict(entropy_estimate="exact"), "entropy_estimate must be 'squashed' or 'gaussian'"),
])
def test_bad_config_is_named(change, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(TINY, **change)


@pytest.mark.parametrize("change,message", [
    (dict(gamma=2.0), "PPOConfig.gamma must be in [0, 1], got 2.0"),
    (dict(gae_lambda=1.5), "PPOConfig.gae_lambda must be in [0, 1], got 1.5"),
    (dict(learning_rate=-1.0), "PPOConfig.learning_rate must be finite and > 0, got -1.0"),
    (dict(learning_rate=float("nan")), "PPOConfig.learning_rate must be finite and > 0"),
    (dict(clip_epsilon=-0.2), "PPOConfig.clip_epsilon must be finite and > 0, got -0.2"),
    (dict(value_clip=0.0), "PPOConfig.value_clip must be finite and > 0, got 0.0"),
    (dict(entropy_coef=-1e-3), "PPOConfig.entropy_coef must be finite and >= 0, got -0.001"),
    (dict(value_coef=-0.5), "PPOConfig.value_coef must be finite and >= 0, got -0.5"),
    (dict(max_grad_norm=0.0), "PPOConfig.max_grad_norm must be finite and > 0, got 0.0"),
])
def test_bad_values_are_named(change, message):
  with pytest.raises(ValueError) as error:
    dataclasses.replace(TINY, **change)
  assert message in str(error.value)
  with pytest.raises(ValueError, match="ReflexConfig.value_coef must be finite and >= 0"):
    ppo.ReflexConfig(value_coef=-1.0)
  with pytest.raises(ValueError, match="ReflexConfig.weight must be finite and >= 0, got -5.0"):
    ppo.ReflexConfig(weight=-5.0)


def test_train_refuses_a_budget_it_would_overshoot_by_far():
  with pytest.raises(ValueError) as error:  # before anything is built or compiled
    ppo.train("brax/inverted_pendulum", dataclasses.replace(TINY, num_timesteps=10))
  assert str(error.value) == ("num_timesteps=10 is less than one iteration of 16 envs × unroll "
                              "16 × 2 logs = 512; ask for ≥ 512 or fewer num_envs / "
                              "unroll_length / num_logs")


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
  from reflex_jax.ppo.train import Trainer  # pylint: disable=import-outside-toplevel
  env = envs.make(ENV, num_envs=4)
  trainer = Trainer(env, REFLEX, None, updates_per_log=1, total_updates=1)
  assert trainer.net.reflection is not None  # the one place it is held
  trainer.net.reflection.check_sizes(env.observation_size, env.action_size)  # raises on mismatch


def test_a_custom_network_factory_makes_the_networks_trained():
  # That train() builds its networks with the factory it is given is checked by
  # test_return_improves_on_the_toy_task (no second training program compiled here).
  def small(observation_size, action_size, config, reflection):
    del config
    return ActorCritic.create(observation_size, action_size, PolicyConfig(hidden=(8,)), (4, 4),
                              "relu", reflection)
  _, trainer = ppo.make_trainer(ENV, TINY, network_factory=small)
  params = jax.jit(trainer.init)(jax.random.key(0), jnp.zeros(())).params
  assert params["policy"]["net"]["hidden"][0]["kernel"].shape == (4, 8)
  assert [params["value"]["hidden"][i]["kernel"].shape for i in (0, 1)] == [(4, 4), (4, 4)]
  policy = driver.make_policy(trainer.net)(params, deterministic=True)
  assert policy(np.zeros((3, 4), np.float32)).shape == (3, 2)
  # The network holds the task's reflection (the Reflex terms read it there): a factory that
  # drops it is refused before anything is compiled.
  with pytest.raises(TypeError, match="keep the reflection"):
    ppo.make_trainer(ENV, REFLEX, network_factory=lambda o, a, c, r: small(o, a, c, None))


def test_the_squashed_entropy_bonus_trains_and_is_what_the_loss_reports():
  """With a large entropy coefficient the two estimates pull σ differently; the reported
  entropy is the squashed policy's (below the Gaussian's, by E log(1 − tanh² u) < 0)."""
  loud = dataclasses.replace(TINY, entropy_coef=0.5, num_logs=1)
  _, _, gaussian = ppo.train(ENV, dataclasses.replace(loud, entropy_estimate="gaussian"), seed=0)
  _, params, squashed = ppo.train(ENV, dataclasses.replace(loud, entropy_estimate="squashed"),
                                  seed=0)
  assert np.all(np.isfinite(squashed["entropy"])) and np.all(np.isfinite(squashed["policy_loss"]))
  log_std = np.asarray(params["policy"]["log_std"][...])
  gaussian_entropy_now = np.sum(0.5 + 0.5 * np.log(2 * np.pi) + log_std)
  assert float(squashed["entropy"][-1]) < gaussian_entropy_now
  assert not np.allclose(squashed["entropy"], gaussian["entropy"])


def test_brax_estimator_segments_are_consecutive_steps_of_one_env_shuffled_whole():
  from reflex_jax.ppo.train import Transition, _segment_minibatches, _segments
  T, N, L = 6, 4, 3
  t_TN = np.arange(T)[:, None] * np.ones((1, N))
  env_TN = np.ones((T, 1)) * np.arange(N)[None]
  code_TN = jnp.asarray(100 * env_TN + t_TN, jnp.float32)  # env n, step t
  zeros = jnp.zeros((T, N))
  terminated = zeros.at[1, 2].set(1.0)
  done = terminated.at[4, 0].set(1.0)  # env 0 truncated at step 4
  traj = Transition(code_TN[..., None], code_TN[..., None], code_TN, terminated, done,
                    code_TN[..., None] + 0.5, zeros, zeros, zeros, zeros)
  seg = _segments(traj, code_TN, L, reward_scaling=2.0)
  assert seg.obs.shape == (L, T // L * N, 1) and seg.last_obs.shape == (T // L * N, 1)
  for column in np.asarray(seg.log_prob).T:  # each: L consecutive steps of one env
    assert len(set(column // 100)) == 1 and np.all(np.diff(column % 100) == 1)
  np.testing.assert_array_equal(seg.reward, 2 * seg.log_prob)
  np.testing.assert_array_equal(seg.last_obs[:, 0], seg.log_prob[-1] + 0.5)
  truncated_at = np.argwhere(np.asarray(seg.truncated) == 1)
  assert [seg.log_prob[i, j] for i, j in truncated_at] == [4.0]  # env 0, step 4; not env 2's
  batches = _segment_minibatches(seg, jax.random.key(0), 2)
  assert batches.obs.shape == (2, L, T // L * N // 2, 1) and batches.last_obs.shape == (2, 4, 1)
  columns = np.concatenate(list(np.asarray(batches.log_prob)), axis=1).T
  assert sorted(map(tuple, columns)) == sorted(map(tuple, np.asarray(seg.log_prob).T))
  assert not np.array_equal(columns, np.asarray(seg.log_prob).T)  # shuffled
  np.testing.assert_array_equal(np.concatenate(list(batches.last_obs))[:, 0], columns[:, -1] + 0.5)


def test_brax_estimator_trains_and_refuses_what_it_cannot_take():
  brax_like = dataclasses.replace(TINY, advantage_estimator="brax", advantage_segment=4)
  _, params, metrics = ppo.train(ENV, brax_like, seed=0)
  _, plain_params, _ = ppo.train(ENV, TINY, seed=0)
  assert all(np.all(np.isfinite(metrics[k])) for k in ("policy_loss", "value_loss", "entropy",
                                                       "value_symmetry_error"))
  # Another estimator, another critic (the same seed and rollouts until the first update).
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params["value"]),
                                                   jax.tree.leaves(plain_params["value"])))
  for changes, message in (
      (dict(advantage_segment=5), "does not divide unroll_length"),
      (dict(advantage_segment=16, num_minibatches=32), "do not split into num_minibatches"),
      (dict(reflex=ppo.ReflexConfig(augment=True)), "does not take reflex.augment")):
    with pytest.raises(ValueError, match=message):
      dataclasses.replace(brax_like, **changes)
  with pytest.raises(ValueError, match="advantage_segment is for"):
    dataclasses.replace(TINY, advantage_segment=4)
