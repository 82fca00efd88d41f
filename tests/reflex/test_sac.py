"""SAC and Reflex-SAC: replay buffer, targets, temperature, losses, symmetrized networks, learning."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import driver, envs, sac
from reflex_jax.networks import (ActorTwinCritic, PolicyConfig, gaussian_log_prob,
                                 make_actor_twin_critic, tanh_gaussian_log_prob)
from reflex_jax.sac import losses, replay
from reflex_jax.sac.train import Trainer
from reflex_jax.symmetry import Reflection
from tests.helpers import assert_close

SAC_POLICY = PolicyConfig(hidden=(32, 32), activation="relu", std="state_dependent", squash="tanh")
TINY = sac.SACConfig(num_timesteps=16 * 40, num_envs=16, learning_starts=16 * 8,
                     grad_updates_per_step=2, batch_size=32, buffer_size=2048, num_logs=2,
                     num_eval_envs=2, episode_length=50, policy=SAC_POLICY, q_hidden=(32, 32),
                     num_devices=1)
# The training machinery is checked on the pure-JAX task (it compiles in seconds, an MJX task
# in minutes); the learning run on a brax task is `slow`.
ENV = "toy/point_mass"


def _steps(num_envs, count, start=0):
  """Transitions whose obs encodes (step, env) so the buffer's content can be checked."""
  for t in range(start, start + count):
    yield dict(obs=jnp.stack([jnp.full((num_envs,), t, jnp.float32),
                              jnp.arange(num_envs, dtype=jnp.float32)], -1),
               reward=jnp.full((num_envs,), float(t)))


def test_replay_buffer_wraps_around_keeping_the_newest_rows():
  steps = list(_steps(3, 7))
  buffer = replay.create(steps[0], capacity=12)  # 4 rows of 3 envs
  insert = jax.jit(replay.insert)
  for s in steps:
    buffer = insert(buffer, s)
  assert buffer.capacity == 12 and int(replay.size(buffer)) == 12
  assert int(buffer.position) == 7 % 4
  stored_steps = sorted(set(np.asarray(buffer.data["obs"][..., 0]).ravel().tolist()))
  assert stored_steps == [3, 4, 5, 6], "the oldest rows were overwritten"
  np.testing.assert_array_equal(buffer.data["obs"][3 % 4, :, 1], [0, 1, 2])
  with pytest.raises(ValueError, match="smaller than one step"):
    replay.create(steps[0], capacity=2)


def test_replay_sampling_is_uniform_over_stored_transitions_only():
  steps = list(_steps(4, 5))
  buffer = replay.create(steps[0], capacity=40)  # 10 rows; 5 filled
  for s in steps:
    buffer = replay.insert(buffer, s)
  batch = jax.jit(replay.sample, static_argnums=2)(buffer, jax.random.key(0), 40_000)
  assert batch["obs"].shape == (40_000, 2) and batch["reward"].shape == (40_000,)
  ids = np.asarray(batch["obs"][:, 0] * 4 + batch["obs"][:, 1]).astype(int)
  counts = np.bincount(ids, minlength=20)
  assert counts.size == 20, "only the 20 stored transitions are sampled (never empty rows)"
  expected = 40_000 / 20
  chi2 = np.sum((counts - expected) ** 2 / expected)
  assert chi2 < 45, f"chi² {chi2:.1f} over 19 degrees of freedom: not uniform"  # p ≈ 0.001
  np.testing.assert_array_equal(batch["reward"], batch["obs"][:, 0])  # leaves stay paired


def test_td_target_bootstraps_through_truncation_but_not_termination():
  r, q_next, logp, alpha, gamma = 1.0, 10.0, -2.0, 0.5, 0.9
  assert losses.td_target(r, 1.0, q_next, logp, alpha, gamma) == r
  np.testing.assert_allclose(losses.td_target(r, 0.0, q_next, logp, alpha, gamma),
                             r + gamma * (q_next - alpha * logp))


def test_stored_next_obs_is_the_final_obs_before_auto_reset():
  from reflex_jax import envs  # pylint: disable=import-outside-toplevel
  env = envs.make(ENV, num_envs=2, episode_length=3)
  state = env.reset(jax.random.key(0))
  for _ in range(3):
    nxt = env.step(state, jnp.zeros((2, env.action_size)))
    transition = Trainer._transition(state, jnp.zeros((2, env.action_size)), nxt)
    state = nxt
  # Step 3 hit the time limit: the env reset, the stored next_obs is the pre-reset one.
  assert np.all(np.asarray(nxt.truncated) == 1)
  np.testing.assert_array_equal(transition["next_obs"], nxt.metrics["final_obs"])
  assert not np.allclose(transition["next_obs"], nxt.obs)
  np.testing.assert_array_equal(transition["terminated"], 0.0)


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
  u = jnp.array([[-3.0, 0.1, 2.5]])
  loc, scale = jnp.array([[0.2, -0.1, 1.0]]), jnp.array([[0.5, 1.2, 0.3]])
  expected = gaussian_log_prob(u, loc, scale) - jnp.sum(jnp.log(1 - jnp.tanh(u) ** 2), -1)
  np.testing.assert_allclose(tanh_gaussian_log_prob(u, loc, scale), expected, rtol=1e-5)
  assert np.isfinite(tanh_gaussian_log_prob(jnp.array([[40.0]]), jnp.zeros((1, 1)),
                                            jnp.ones((1, 1))))


def test_temperature_rises_when_entropy_is_below_target():
  grad = jax.grad(losses.alpha_loss)
  target = -2.0
  # log π high (entropy −log π low, below target 2... ) → gradient descent raises log α
  assert grad(0.0, jnp.array([5.0]), target) < 0
  assert grad(0.0, jnp.array([-5.0]), target) > 0


def _reflection():
  # obs (x, v, c): x, v flip sign, c is invariant; one action flips sign.
  return Reflection.create(obs_perm=[0, 1, 2], obs_sign=[-1, -1, 1], action_perm=[0],
                           action_sign=[-1], kind="axial", plane="x")


def _batch(key, n=16):
  k = jax.random.split(key, 4)
  return dict(obs=jax.random.normal(k[0], (n, 3)), action=jnp.tanh(jax.random.normal(k[1], (n, 1))),
              reward=jax.random.normal(k[2], (n,)), terminated=jnp.zeros(n),
              next_obs=jax.random.normal(k[3], (n, 3)))


def _params(net, key):
  params = net.init(key, 3)
  return dict(params, target_q=params["q"], log_alpha=jnp.zeros(()))


def _reflex_terms(net, params, batch):
  """(critic, actor) Reflex terms of `net`, jitted (eager dispatch of the losses is slow)."""
  reflex = sac.ReflexConfig()

  @jax.jit
  def terms(params, batch):
    _, critic = losses.critic_loss(params["q"], params, params["target_q"], batch,
                                   jax.random.key(2), 1.0, 1.0, net=net, gamma=0.99,
                                   reward_scaling=1.0, reflex=reflex, regularize=True)
    _, (actor, _) = losses.actor_loss(params["policy"], params, batch, jax.random.key(3), 1.0,
                                      1.0, net=net, reflex=reflex, regularize=True)
    return critic["reflex_critic"], actor["reflex_actor"]
  return terms(params, batch)


def test_symmetrized_networks_make_the_reflex_terms_vanish():
  g = _reflection()
  net = ActorTwinCritic.create(3, 1, SAC_POLICY, (32, 32), "relu", True, 2, g, symmetrize=True)
  params = _params(net, jax.random.key(0))
  batch = _batch(jax.random.key(1))
  critic, actor = _reflex_terms(net, params, batch)
  assert critic < 1e-10 and actor < 1e-10
  plain = ActorTwinCritic.create(3, 1, SAC_POLICY, (32, 32), "relu", True, 2, g)
  critic, _ = _reflex_terms(plain, params, batch)
  assert critic > 1e-6, "an unsymmetrized critic is not invariant"


def test_critic_gradient_includes_the_invariance_term_with_its_weight():
  g = _reflection()
  net = ActorTwinCritic.create(3, 1, SAC_POLICY, (32, 32), "relu", False, 2, g)
  params = _params(net, jax.random.key(0))
  batch = _batch(jax.random.key(1))

  def loss(weight):
    return losses.critic_loss(params["q"], params, params["target_q"], batch, jax.random.key(2),
                              1.0, weight, net=net, gamma=0.99, reward_scaling=1.0,
                              reflex=sac.ReflexConfig(value_coef=2.0), regularize=True)
  (l0, m0), (l1, m1) = loss(0.0), loss(0.5)
  np.testing.assert_allclose(l1 - l0, 0.5 * 2.0 * m1["reflex_critic"], rtol=1e-5)


def test_only_a_regularizing_program_computes_the_mirrored_passes():
  """One static flag for both losses: no Reflex terms for plain runs, for groups whose every
  w0 is 0 (augment-only), or for symmetrized networks."""
  from reflex_jax.regularizer import regularizes  # pylint: disable=import-outside-toplevel
  assert not regularizes(None, [0.1])
  assert not regularizes(sac.ReflexConfig(augment=True), [0.0, 0.0])
  assert not regularizes(sac.ReflexConfig(symmetrize=True), [0.1])
  assert regularizes(sac.ReflexConfig(), [0.0, 0.1]) and regularizes(sac.ReflexConfig(), 0.1)
  env = envs.make(ENV, num_envs=4)
  augment_only = sac.ReflexConfig(augment=True, weight=0.0)
  config = dataclasses.replace(TINY, num_envs=4, reflex=augment_only)
  assert not Trainer(env, config, None, 1, 1, 1).regularize
  assert Trainer(env, config, None, 1, 1, 1, regularize=True).regularize


def three_small_critics(observation_size, action_size, config, reflection):
  """A custom network factory: three critics of one hidden layer of 8 units."""
  return ActorTwinCritic.create(observation_size, action_size, config.policy, (8,), "relu",
                                False, 3, reflection)


@pytest.mark.long
def test_one_update_of_a_custom_network_moves_its_targets_by_tau():
  env = envs.make(ENV, num_envs=4)
  config = sac.SACConfig(num_envs=4, batch_size=8, buffer_size=64, tau=0.25, policy=SAC_POLICY,
                         num_devices=1)
  trainer = Trainer(env, config, None, 1, 1, 1, network_factory=three_small_critics)
  # Jitted: op by op, the update compiles each of its hundreds of operations on its own.
  state = jax.jit(lambda key: trainer.prefill(trainer.init(key, jnp.zeros(()))))(
      jax.random.key(0))
  assert state.params["q"]["hidden"][0]["kernel"].shape == (3, 4 + 2, 8)  # 3 critics of (s, a)
  assert state.params["target_q"]["out"]["kernel"].shape == (3, 8, 1)
  (params, _), metrics = jax.jit(trainer._update)(
      (state.params, state.opt_state), jax.random.key(1), buffer=state.buffer,
      weight=jnp.zeros(()))
  for new_target, new_q, old_target in zip(jax.tree.leaves(params["target_q"]),
                                           jax.tree.leaves(params["q"]),
                                           jax.tree.leaves(state.params["target_q"])):
    np.testing.assert_allclose(new_target, 0.25 * new_q + 0.75 * old_target, atol=1e-6)
  assert params["log_alpha"] != state.params["log_alpha"]
  assert np.isfinite(metrics["critic_loss"]) and np.isfinite(metrics["actor_loss"])
  policy = driver.make_policy(trainer.net)(params, deterministic=True)
  assert policy(np.zeros((3, 4), np.float32)).shape == (3, 2)


@pytest.mark.long
def test_sac_improves_and_runs_plain_and_reflex_in_one_program():
  config = sac.SACConfig(num_timesteps=6_000, num_envs=16, learning_starts=512,
                         grad_updates_per_step=4, batch_size=128, buffer_size=20_000,
                         num_logs=4, num_eval_envs=4, policy=SAC_POLICY, q_hidden=(64, 64),
                         learning_rate=1e-3, init_alpha=0.1,  # learns within this short budget
                         reflex=sac.ReflexConfig(), num_devices=1)
  built = []  # train() builds its networks with the factory it is given

  def default_networks(*args):
    built.append(args)
    return make_actor_twin_critic(*args)
  _, params, metrics = sac.train(ENV, config, seed=[0, 1], reflex_weight=[0.0, 0.1],
                                 network_factory=default_networks)
  assert len(built) == 1
  returns = metrics["episode_return"]  # [logs, weights, seeds]
  assert returns.shape == (4, 2, 2)
  assert np.nanmean(returns[-1]) > np.nanmean(returns[0]), returns
  assert params["q"]["out"]["kernel"].shape[:3] == (2, 2, 2)  # weights, seeds, twin Q
  assert np.all(np.isfinite(metrics["critic_loss"]))
  # The counts, derived from the config: 512 prefill steps are 32 iterations of 16 envs;
  # the 6,000-step budget leaves ⌈6000/16⌉ − 32 = 343 iterations, rounded up to 4 × 86 = 344.
  prefill, iterations, runs = 512 // 16, 4 * 86, 4
  assert metrics["total_env_steps"] == (prefill + iterations) * 16 == metrics["env_steps"][-1]
  np.testing.assert_array_equal(metrics["buffer_size"][-1], (prefill + iterations) * 16)
  np.testing.assert_allclose(
      metrics["gradient_updates_per_second"] * metrics["train_seconds"],
      iterations * config.grad_updates_per_step * runs, rtol=1e-9)
  np.testing.assert_allclose(metrics["env_steps_per_second"] * metrics["train_seconds"],
                             iterations * 16 * runs, rtol=1e-9)
  with pytest.raises(ValueError, match="reflex_weight given"):
    sac.train(ENV, sac.SACConfig(num_timesteps=100), reflex_weight=0.1)


@pytest.mark.long
def test_sharded_over_8_devices_matches_one_device_and_is_deterministic():
  assert len(jax.devices()) == 8  # tests/conftest.py asks for 8 host devices
  _, twice, m_twice = sac.train(ENV, TINY, seed=[3, 3])
  one = jax.tree.map(lambda x: x[0], twice)
  jax.tree.map(np.testing.assert_array_equal, one, jax.tree.map(lambda x: x[1], twice))
  # A separate program on 8 devices: equal up to rounding, so deterministic across runs too.
  _, eight, m_eight = sac.train(ENV, dataclasses.replace(TINY, num_devices=8), seed=3)
  assert_close(eight, one, rtol=1e-4, atol=1e-5)
  assert_close(m_eight["critic_loss"], m_twice["critic_loss"][:, 0], rtol=1e-4)


@pytest.mark.long
@pytest.mark.parametrize("augment,symmetrize", [(True, False), (False, True)])
def test_reflex_options_train(augment, symmetrize, monkeypatch):
  # Every batch the critic loss sees is recorded, to check what augmentation put in it.
  real_loss, seen = losses.critic_loss, []

  def recording_loss(q_params, params, target_q_params, batch, *args, **kwargs):
    jax.debug.callback(lambda b: seen.append(jax.tree.map(np.asarray, b)), batch)
    return real_loss(q_params, params, target_q_params, batch, *args, **kwargs)
  monkeypatch.setattr(losses, "critic_loss", recording_loss)

  config = dataclasses.replace(TINY, reflex=sac.ReflexConfig(augment=augment,
                                                             symmetrize=symmetrize))
  _, _, metrics = sac.train(ENV, config, seed=0)
  assert np.all(np.isfinite(metrics["critic_loss"])) and np.all(np.isfinite(metrics["actor_loss"]))
  if symmetrize:  # hard equivariance: the measured error is rounding only
    assert np.all(metrics["policy_symmetry_error"] < 1e-5)
    # and its Reflex terms are exactly 0: the program does not compute the mirrored passes
    assert "reflex_critic" not in metrics and "reflex_actor" not in metrics
  else:
    assert np.all(np.isfinite(metrics["reflex_critic"]))

  iterations = TINY.num_timesteps // TINY.num_envs - TINY.learning_starts // TINY.num_envs
  assert len(seen) == iterations * TINY.grad_updates_per_step
  n = TINY.batch_size
  g = driver.resolve_reflection(envs.make_simulator(ENV))
  for batch in seen:
    # Augmented: the sampled transitions, then their exact mirror images (g_s s, g_a a, r, d,
    # g_s s′). Plain: the sampled transitions only, which are not mirror images of each other.
    assert len(batch["obs"]) == (2 * n if augment else n)
    originals = {k: v[:n] for k, v in batch.items()}
    mirror = losses.mirrored(originals, g)
    if augment:
      for k, v in batch.items():
        np.testing.assert_array_equal(v[n:], mirror[k], err_msg=k)
      assert not np.array_equal(batch["obs"][n:], batch["obs"][:n])
    else:
      rows = set(map(tuple, batch["obs"].tolist()))
      assert len(rows & set(map(tuple, mirror["obs"].tolist()))) <= n // 10


@pytest.mark.parametrize("change,message", [
    (dict(gamma=1.5), "SACConfig.gamma must be in [0, 1], got 1.5"),
    (dict(learning_rate=0.0), "SACConfig.learning_rate must be finite and > 0, got 0.0"),
    (dict(init_alpha=-1.0), "SACConfig.init_alpha must be finite and > 0, got -1.0"),
    (dict(reward_scaling=float("inf")), "SACConfig.reward_scaling must be finite and > 0"),
    (dict(max_grad_norm=-1.0), "SACConfig.max_grad_norm must be finite and > 0, got -1.0"),
    (dict(tau=0.0), "SACConfig.tau must be in (0, 1], got 0.0"),
])
def test_bad_values_are_named(change, message):
  with pytest.raises(ValueError) as error:
    dataclasses.replace(TINY, **change)
  assert message in str(error.value)


def test_train_refuses_a_budget_it_would_overshoot_by_far():
  with pytest.raises(ValueError) as error:  # before anything is built or compiled
    sac.train(ENV, dataclasses.replace(TINY, num_timesteps=100))
  assert str(error.value) == ("num_timesteps=100 is less than the 128-step prefill + one "
                              "iteration of 16 envs × 2 logs = 160; ask for ≥ 160 or fewer "
                              "num_envs / num_logs")
  with pytest.raises(ValueError) as error:
    sac.train(ENV, dataclasses.replace(TINY, num_timesteps=200))
  assert str(error.value).startswith(
      "num_timesteps=200 would train 224 env steps (+12%): a run takes the 128-step prefill + "
      "whole iterations of 16 envs × 2 logs = 32; ask for 192 or 224")


@pytest.mark.slow
def test_sac_solves_inverted_pendulum():
  config = sac.SACConfig(num_timesteps=40_000, num_envs=16, learning_starts=2_000,
                         grad_updates_per_step=8, batch_size=256, num_logs=4, num_devices=1)
  _, _, metrics = sac.train("brax/inverted_pendulum", config, seed=0)
  assert metrics["eval/return"] >= 900, metrics["eval/return"]
