"""GAE, the PPO loss, the normalizer and the Reflex regularizer, without environments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import regularizer
from reflex_jax.networks import (ActorCritic, Normalizer, PolicyConfig, gaussian_entropy,
                                 gaussian_log_prob, squashed_entropy)
from reflex_jax.ppo.losses import Batch, brax_gae, gae, mirrored_batch, ppo_loss
from reflex_jax.symmetry import Reflection, SignedPermutation
from tests.helpers import assert_close

# A bilateral-style map: obs 0 invariant, 1<->2 swap, 3 negates; actions 0<->1 swap with a sign.
REFLECTION = Reflection(SignedPermutation.create([0, 2, 1, 3], [1, 1, 1, -1]),
                        SignedPermutation.create([1, 0], [-1, -1]), "bilateral", "y")


def _net(symmetrize=False, std="state_dependent"):
  return ActorCritic.create(4, 2, PolicyConfig(hidden=(16,), std=std), (16,), "tanh",
                            REFLECTION, symmetrize)


def _params(net, seed=0, obs_seed=1):
  params = net.init(jax.random.key(seed), 4)
  # A non-trivial normalizer, so that mirroring before normalizing matters.
  obs = jax.random.normal(jax.random.key(obs_seed), (64, 4)) * 2.0 + 1.0
  return dict(params, normalizer=params["normalizer"].update(obs))


def test_gae_matches_a_python_loop():
  rng = np.random.default_rng(0)
  T, N, gamma, lam = 12, 3, 0.97, 0.9
  reward, value, next_value = (rng.normal(size=(T, N)) for _ in range(3))
  terminated = (rng.random((T, N)) < 0.15).astype(np.float32)
  truncated = ((rng.random((T, N)) < 0.15) & (terminated == 0)).astype(np.float32)
  done = np.maximum(terminated, truncated)
  expected = np.zeros((T, N))
  for n in range(N):
    running = 0.0
    for t in reversed(range(T)):
      bootstrap = 0.0 if terminated[t, n] else next_value[t, n]
      delta = reward[t, n] + gamma * bootstrap - value[t, n]
      running = delta + (0.0 if done[t, n] else gamma * lam * running)
      expected[t, n] = running
  advantage, target = gae(*(jnp.asarray(x, jnp.float32) for x in
                            (reward, value, next_value, terminated, done)), gamma=gamma, lam=lam)
  assert_close(advantage, expected, atol=1e-5)
  assert_close(target, expected + value, atol=1e-5)


def test_brax_estimator_is_brax_trainings_compute_gae():
  from brax.training.agents.ppo.losses import compute_gae  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  L, S, gamma, lam = 10, 4, 0.97, 0.95
  reward, value = (jnp.asarray(rng.normal(size=(L, S)), jnp.float32) for _ in range(2))
  bootstrap = jnp.asarray(rng.normal(size=S), jnp.float32)
  terminated = jnp.asarray(rng.random((L, S)) < 0.15, jnp.float32)
  truncated = jnp.asarray((rng.random((L, S)) < 0.15) & (terminated == 0), jnp.float32)
  want_target, want_advantage = compute_gae(truncated, terminated, reward, value, bootstrap,
                                            lambda_=lam, discount=gamma)
  target, advantage = brax_gae(truncated, terminated, reward, value, bootstrap, gamma=gamma,
                               lam=lam)
  assert_close(target, want_target, atol=1e-6)
  assert_close(advantage, want_advantage, atol=1e-6)
  # Unlike GAE's, its advantage continues with γ, not γλ: they differ wherever λ < 1 matters.
  standard, _ = gae(reward, value, jnp.concatenate([value[1:], bootstrap[None]]), terminated,
                    jnp.maximum(terminated, truncated), gamma=gamma, lam=lam)
  assert float(jnp.max(jnp.abs(standard - advantage))) > 1e-2


def test_normalizer_matches_numpy_over_several_batches():
  rng = np.random.default_rng(0)
  batches = [rng.normal(3.0, 2.0, size=(n, 5)) for n in (7, 100, 1)]
  norm = Normalizer.create(5)
  for b in batches:
    norm = norm.update(jnp.asarray(b, jnp.float32))
  data = np.concatenate(batches)
  assert_close(norm.mean, data.mean(0), atol=1e-4)
  assert_close(norm.std, data.std(0), atol=1e-4)
  x = rng.normal(size=(3, 5))
  assert_close(norm(jnp.asarray(x, jnp.float32)), (x - data.mean(0)) / data.std(0), atol=1e-4)


def test_ppo_loss_against_hand_computed_values():
  net = _net()
  params = _params(net)
  rng = np.random.default_rng(1)
  obs = rng.normal(size=(6, 4)).astype(np.float32)
  raw = rng.normal(size=(6, 2)).astype(np.float32)
  loc, scale = (np.asarray(x) for x in net.distribution(params, obs))
  value = np.asarray(net.value_fn(params, obs))
  old_log_prob = np.asarray(gaussian_log_prob(raw, loc, scale)) + rng.normal(0, 0.3, 6)
  advantage = rng.normal(size=6).astype(np.float32)
  target = rng.normal(size=6).astype(np.float32)
  old_value = value + rng.normal(0, 0.5, 6)
  batch = Batch(*(jnp.asarray(x, jnp.float32) for x in
                  (obs, raw, old_log_prob, advantage, target, old_value)))
  eps, vclip, vcoef, ecoef = 0.2, 0.3, 0.5, 0.01
  loss, m = ppo_loss(params, batch, 0.0, net=net, clip_epsilon=eps, value_clip=vclip,
                     value_coef=vcoef, entropy_coef=ecoef, normalize_advantages=True,
                     reflex=None, regularize=False)

  # By hand, in numpy.
  log_prob = (-0.5 * ((raw - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)).sum(-1)
  ratio = np.exp(log_prob - old_log_prob)
  adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
  policy_loss = -np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv).mean()
  clipped = old_value + np.clip(value - old_value, -vclip, vclip)
  value_loss = 0.5 * np.maximum((value - target) ** 2, (clipped - target) ** 2).mean()
  entropy = (0.5 + 0.5 * np.log(2 * np.pi) + np.log(scale)).sum(-1).mean()
  assert_close(m["policy_loss"], policy_loss, atol=1e-5)
  assert_close(m["value_loss"], value_loss, atol=1e-5)
  assert_close(m["entropy"], entropy, atol=1e-5)
  assert_close(loss, policy_loss + vcoef * value_loss - ecoef * entropy, atol=1e-5)


def test_dual_clip_keeps_far_off_policy_samples_finite_and_bounds_their_loss():
  """A mirrored sample deep in an asymmetric policy's tail (log π_old 5000 nats down) gives
  r = inf; PPO's r·A then overflows for A < 0. The dual clip bounds it by c·A, with finite
  gradients, and leaves ordinary samples' loss as PPO's."""
  net = _net()
  params = _params(net)
  rng = np.random.default_rng(2)
  obs = rng.normal(size=(4, 4)).astype(np.float32)
  raw = rng.normal(size=(4, 2)).astype(np.float32)
  loc, scale = net.distribution(params, obs)
  log_prob = gaussian_log_prob(raw, loc, scale)
  advantage = jnp.array([-1.0, -1.0, 1.0, 0.5])
  kwargs = dict(net=net, clip_epsilon=0.2, value_clip=None, value_coef=0.5, entropy_coef=0.0,
                normalize_advantages=False, reflex=None, regularize=False)

  def loss(p, old_log_prob, dual_clip):
    batch = Batch(jnp.asarray(obs), jnp.asarray(raw), old_log_prob, advantage,
                  jnp.zeros(4), jnp.zeros(4))
    return ppo_loss(p, batch, 0.0, dual_clip=dual_clip, **kwargs)

  far = log_prob.at[0].add(-5000.0)
  assert not np.isfinite(loss(params, far, None)[0])
  value, metrics = loss(params, far, 3.0)
  grads = jax.grad(lambda p: loss(p, far, 3.0)[0])(params)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
  # sample 0 contributes −c·A = 3/4 of the mean; the others are on-policy (r = 1): −r·A
  assert_close(metrics["policy_loss"], -(3.0 * -1.0 + 1.0 * -1.0 + 1.0 + 0.5) / 4, atol=1e-5)
  # on-policy, the bound is never active: the loss is PPO's
  assert_close(loss(params, log_prob, 3.0)[0], loss(params, log_prob, None)[0], atol=1e-7)


def test_actor_and_critic_terms_scale_by_their_own_coefficients():
  """loss(actor_coef a, value_coef c) = plain loss + w (a · actor + c · critic): the
  critic-only ablation (a = 0) keeps exactly the critic term."""
  net = _net()
  params = _params(net)
  rng = np.random.default_rng(2)
  obs = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
  raw = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
  batch = Batch(obs, raw, jnp.zeros(6), jnp.asarray(rng.normal(size=6), jnp.float32),
                jnp.zeros(6), jnp.zeros(6))
  kwargs = dict(net=net, clip_epsilon=0.2, value_clip=None, value_coef=0.5, entropy_coef=0.0,
                normalize_advantages=False, regularize=True)
  plain, _ = ppo_loss(params, batch, 0.0, reflex=regularizer.ReflexConfig(), **kwargs)
  for actor_coef, value_coef in ((1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.3, 2.0)):
    config = regularizer.ReflexConfig(actor_coef=actor_coef, value_coef=value_coef)
    loss, m = ppo_loss(params, batch, 0.7, reflex=config, **kwargs)
    assert float(m["reflex_actor"]) > 0 and float(m["reflex_critic"]) > 0
    assert_close(loss, plain + 0.7 * (actor_coef * m["reflex_actor"]
                                      + value_coef * m["reflex_critic"]), atol=1e-6)


def test_symmetrized_network_is_exactly_equivariant_and_invariant():
  net = _net(symmetrize=True)
  params = _params(net)
  obs = jax.random.normal(jax.random.key(3), (8, 4))
  loc, scale = net.distribution(params, obs)
  loc_m, scale_m = net.distribution(params, REFLECTION.reflect_obs(obs))
  assert_close(loc_m, REFLECTION.reflect_action(loc), atol=1e-6)
  assert_close(scale_m, REFLECTION.action.unsigned.apply(scale), atol=1e-6)
  assert_close(net.value_fn(params, REFLECTION.reflect_obs(obs)), net.value_fn(params, obs),
               atol=1e-6)


@pytest.mark.parametrize("kind", ["mse", "kl"])
def test_regularizer_is_zero_for_an_equivariant_network_and_positive_otherwise(kind):
  obs = jax.random.normal(jax.random.key(3), (8, 4))
  obs_m = REFLECTION.reflect_obs(obs)
  for symmetrize, is_zero in ((True, True), (False, False)):
    net = _net(symmetrize)
    params = _params(net)
    loc, scale = net.distribution(params, obs)
    loc_m, scale_m = net.distribution(params, obs_m)
    actor = regularizer.actor_term(REFLECTION, loc, scale, loc_m, scale_m, kind=kind)
    critic = regularizer.invariance_term(net.value_fn(params, obs), net.value_fn(params, obs_m))
    if is_zero:
      assert actor < 1e-10 and critic < 1e-10
    else:
      assert actor > 1e-6 and critic > 1e-6


def test_actor_term_mse_by_hand():
  loc = jnp.array([[1.0, 2.0]])
  scale = jnp.array([[0.5, 1.5]])
  loc_m, scale_m = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 1.0]])
  # target mean g_a μ = (−2, −1); target scale P σ = (1.5, 0.5)
  expected = (2.0 ** 2 + 1.0 ** 2) + (0.5 ** 2 + 0.5 ** 2)
  assert_close(regularizer.actor_term(REFLECTION, loc, scale, loc_m, scale_m), expected)
  # KL of equal Gaussians is zero and positive otherwise
  assert regularizer.actor_term(REFLECTION, loc, scale, loc_m, scale_m, kind="kl") > 0
  assert_close(regularizer.actor_term(REFLECTION, loc, scale, REFLECTION.reflect_action(loc),
                                      scale[:, ::-1], kind="kl"), 0.0, atol=1e-7)


def test_reflex_gradients_reach_both_networks_and_respect_detach():
  net = _net()
  params = _params(net)
  obs = jax.random.normal(jax.random.key(4), (8, 4))
  batch = Batch(obs, jnp.zeros((8, 2)), jnp.zeros(8), jnp.zeros(8), jnp.zeros(8), jnp.zeros(8))
  kwargs = dict(net=net, clip_epsilon=0.2, value_clip=None, value_coef=0.0, entropy_coef=0.0,
                normalize_advantages=False)

  trainable = {k: params[k] for k in ("policy", "value")}

  def reflex_only(t, reflex):  # zero advantages and value coef: only the Reflex terms remain
    return ppo_loss(dict(t, normalizer=params["normalizer"]), batch, 1.0, reflex=reflex,
                    regularize=True, **kwargs)[0]

  grads = jax.grad(reflex_only)(trainable, regularizer.ReflexConfig())
  assert optax_norm(grads["policy"]) > 0 and optax_norm(grads["value"]) > 0
  # Only the value coefficient scales the critic term.
  no_critic = jax.grad(reflex_only)(trainable, regularizer.ReflexConfig(value_coef=0.0))
  assert optax_norm(no_critic["value"]) == 0
  # detach_target changes the gradient (one side is held fixed).
  detached = jax.grad(reflex_only)(trainable, regularizer.ReflexConfig(detach_target=True))
  assert not np.allclose(optax_norm(detached["policy"]), optax_norm(grads["policy"]))


def optax_norm(tree):
  return float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))))


def test_mirrored_batch_has_the_old_policys_probability_of_the_mirrored_action():
  rng = np.random.default_rng(2)
  obs = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
  raw = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)
  for symmetrize in (True, False):
    net = _net(symmetrize)
    params = _params(net)
    loc, scale = net.distribution(params, obs)
    batch = Batch(obs, raw, gaussian_log_prob(raw, loc, scale), jnp.arange(5.0),
                  jnp.arange(5.0) * 2, net.value_fn(params, obs))
    mirrored = mirrored_batch(net, params, batch)
    loc_m, scale_m = net.distribution(params, REFLECTION.reflect_obs(obs))
    expected = gaussian_log_prob(REFLECTION.reflect_action(raw), loc_m, scale_m)
    assert_close(mirrored.log_prob, expected, atol=1e-6)
    assert_close(mirrored.advantage, batch.advantage)
    # An equivariant policy gives a mirrored action exactly its original probability.
    if symmetrize:
      assert_close(mirrored.log_prob, batch.log_prob, atol=1e-5)
    else:
      assert not np.allclose(mirrored.log_prob, batch.log_prob, atol=1e-3)


def test_linear_weight_schedule():
  assert_close(regularizer.weight(0.1, 0, 100, "linear"), 0.1)
  assert_close(regularizer.weight(0.1, 50, 100, "linear"), 0.05)
  assert_close(regularizer.weight(0.1, 150, 100, "linear"), 0.0)
  assert_close(regularizer.weight(0.1, 50, 100, "constant"), 0.1)


def test_entropy_formula():
  scale = jnp.array([[0.5, 2.0]])
  assert_close(gaussian_entropy(scale), np.sum(0.5 * np.log(2 * np.pi * np.e * scale ** 2)))


def _tanh_entropy_by_quadrature(loc: float, scale: float) -> float:
  """−∫ p_Y log p_Y for Y = tanh(U), U ~ N(loc, scale), on a fine grid in u (p_Y dy = p_U du)."""
  u = np.linspace(loc - 12 * scale, loc + 12 * scale, 400_001)
  log_p_u = -0.5 * ((u - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
  log_jacobian = 2 * (np.log(2) - u - np.logaddexp(0, -2 * u))  # log(1 − tanh² u)
  return float(-np.trapezoid(np.exp(log_p_u) * (log_p_u - log_jacobian), u))


@pytest.mark.parametrize("loc,scale", [(0.0, 0.3), (0.5, 1.0), (0.0, 4.0), (2.0, 1.5)])
def test_squashed_entropy_estimates_the_entropy_of_the_tanh_policy(loc, scale):
  noise = jax.random.normal(jax.random.key(0), (200_000, 1))
  estimate = squashed_entropy(jnp.full((1,), loc), jnp.full((1,), scale), noise)
  truth = _tanh_entropy_by_quadrature(loc, scale)
  assert abs(float(jnp.mean(estimate)) - truth) < 0.02 * max(1.0, abs(truth))


def test_squashed_entropy_stops_rewarding_a_wider_gaussian_once_tanh_saturates():
  noise = jax.random.normal(jax.random.key(1), (50_000, 1))
  mean_entropy = lambda scale: jnp.mean(squashed_entropy(jnp.zeros(1), scale * jnp.ones(1), noise))
  # The Gaussian's entropy grows with σ everywhere (d/dσ = 1/σ); the squashed policy's falls
  # past σ ≈ 1: the extra width piles mass at ±1.
  assert float(jax.grad(mean_entropy)(0.3)) > 0
  assert float(jax.grad(mean_entropy)(3.0)) < 0
  assert float(jax.grad(lambda s: gaussian_entropy(s * jnp.ones(1)))(3.0)) > 0


def test_network_init_lecun_uniform_is_brax_trainings_and_orthogonal_ours():
  from reflex_jax import ppo  # pylint: disable=import-outside-toplevel
  from reflex_jax.networks import make_actor_critic  # pylint: disable=import-outside-toplevel
  for init in ("orthogonal", "lecun_uniform"):
    config = ppo.PPOConfig(network_init=init, value_hidden=(256, 256),
                           policy=PolicyConfig(hidden=(64,), std="state_dependent"))
    params = make_actor_critic(40, 6, config, None).init(jax.random.key(0), 40)
    kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if "kernel" in jax.tree_util.keystr(path)]
    assert len(kernels) == 5  # policy 40→64→12, value 40→256→256→1
    for kernel in map(np.asarray, kernels):
      fan_in = kernel.shape[0]
      if init == "lecun_uniform":  # U(±√(3 / fan_in)) on every layer, the output included
        assert np.abs(kernel).max() <= np.sqrt(3 / fan_in)
        assert abs(kernel.std() * np.sqrt(fan_in) - 1) < 0.15
      elif min(kernel.shape) > 1 and kernel.shape[1] > 12:  # hidden: orthogonal columns × √2
        gram = kernel.T @ kernel if kernel.shape[0] >= kernel.shape[1] else kernel @ kernel.T
        assert_close(gram, 2.0 * np.eye(len(gram)), atol=1e-4)
  with pytest.raises(ValueError, match="network_init must be one of"):
    ppo.PPOConfig(network_init="xavier")
