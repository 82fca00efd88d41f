"""PPO's pieces as pure functions: GAE and the clipped-surrogate loss with the Reflex terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from reflex_jax import regularizer
from reflex_jax.networks import (ActorCritic, gaussian_entropy, gaussian_log_prob,
                                 squashed_entropy)


@struct.dataclass
class Batch:
  """Training samples, flat over (time, env) or split into minibatches."""
  obs: jax.Array          # raw observations
  raw_action: jax.Array   # pre-squash Gaussian samples u
  log_prob: jax.Array     # log π_old(u | obs)
  advantage: jax.Array
  target_value: jax.Array
  old_value: jax.Array


def mirrored_batch(net: ActorCritic, params, batch: Batch) -> Batch:
  """The mirror images (g_s s, g_a u) of `batch`'s samples, for augmentation.

  In an invariant MDP they have the advantage and value target of the originals; the PPO
  ratio needs the old policy's probability of the mirrored action at the mirrored state.
  """
  g = net.reflection
  obs_m, raw_m = g.reflect_obs(batch.obs), g.reflect_action(batch.raw_action)
  loc_m, scale_m = net.distribution(params, obs_m)
  return Batch(obs_m, raw_m, gaussian_log_prob(raw_m, loc_m, scale_m), batch.advantage,
               batch.target_value, net.value_fn(params, obs_m))


def gae(reward_TN, value_TN, next_value_TN, terminated_TN, done_TN, *, gamma: float,
        lam: float) -> tuple[jax.Array, jax.Array]:
  """Generalized advantage estimates and value targets.

  next_value is V of the observation the step produced (the final one before an auto-reset),
  so a truncated episode bootstraps from where it was cut; terminated steps do not bootstrap.
  done (terminated or truncated) stops the recursion at episode boundaries.
  """
  delta = reward_TN + gamma * (1.0 - terminated_TN) * next_value_TN - value_TN

  def backward(next_advantage, xs):
    delta_t, done_t = xs
    advantage = delta_t + gamma * lam * (1.0 - done_t) * next_advantage
    return advantage, advantage

  _, advantage = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, done_TN),
                              reverse=True)
  return advantage, advantage + value_TN


@struct.dataclass
class Segments:
  """Rollout segments for brax.training's estimator (advantages recomputed per minibatch):
  [L, S, …] for S segments of L consecutive steps, or [M, L, S / M, …] as minibatches."""
  obs: jax.Array          # raw observations
  raw_action: jax.Array
  log_prob: jax.Array     # log π_old(u | obs)
  reward: jax.Array       # scaled rewards
  terminated: jax.Array
  truncated: jax.Array    # the episode was cut by the time limit (not terminated)
  last_obs: jax.Array     # [S, …]: the observation after each segment's last step


def brax_gae(truncation_LS, termination_LS, reward_LS, value_LS, bootstrap_S, *, gamma: float,
             lam: float) -> tuple[jax.Array, jax.Array]:
  """(value targets, advantages) as brax.training's PPO computes them (ppo/losses.py,
  compute_gae): truncated steps are masked out rather than bootstrapped, and the policy's
  advantage is r + γ v_{t+1} − V(s_t) with v the λ-return targets (γ, not γλ, on the first
  step's continuation)."""
  mask = 1.0 - truncation_LS
  next_value = jnp.concatenate([value_LS[1:], bootstrap_S[None]], axis=0)
  delta = (reward_LS + gamma * (1.0 - termination_LS) * next_value - value_LS) * mask

  def backward(acc, xs):
    delta_t, mask_t, term_t = xs
    acc = delta_t + gamma * (1.0 - term_t) * mask_t * lam * acc
    return acc, acc

  _, target_minus_value = jax.lax.scan(backward, jnp.zeros_like(bootstrap_S),
                                       (delta, mask, termination_LS), reverse=True)
  target = target_minus_value + value_LS
  next_target = jnp.concatenate([target[1:], bootstrap_S[None]], axis=0)
  advantage = (reward_LS + gamma * (1.0 - termination_LS) * next_target - value_LS) * mask
  return jax.lax.stop_gradient(target), jax.lax.stop_gradient(advantage)


def segment_batch(value_fn, params, segments: Segments, *, gamma: float, lam: float) -> Batch:
  """A flat Batch from [L, s, …] segments, advantages and targets from the current critic."""
  value = value_fn(params, segments.obs)
  bootstrap = value_fn(params, segments.last_obs)
  target, advantage = brax_gae(segments.truncated, segments.terminated, segments.reward, value,
                               bootstrap, gamma=gamma, lam=lam)
  flat = lambda tree: jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)
  return Batch(flat(segments.obs), flat(segments.raw_action), flat(segments.log_prob),
               flat(advantage), flat(target), flat(jax.lax.stop_gradient(value)))


# Dual-clip PPO's bound on r·A for A < 0 (Ye et al., 2020, c = 3), used with augmentation: a
# mirrored sample of an asymmetric policy lies far in its tails (log π_old thousands of nats
# down), where a small change of σ moves r by e^100 and the unclipped r·A overflows.
AUGMENT_DUAL_CLIP = 3.0
_LOG_RATIO_CAP = 20.0  # above log(c) and log(1 + ε): where the gradient is zero anyway


def ppo_loss(params, batch: Batch, reflex_weight, *, net: ActorCritic, clip_epsilon: float,
             value_clip: float | None, value_coef: float, entropy_coef: float,
             normalize_advantages: bool, reflex: regularizer.ReflexConfig | None,
             regularize: bool, entropy_noise: jax.Array | None = None,
             dual_clip: float | None = None):
  """Clipped surrogate + value loss − entropy bonus + w_t · Reflex terms; (loss, metrics).
  `regularize` (regularizer.regularizes, static): whether the Reflex terms are computed.
  `entropy_noise`: standard-normal draws shaped like the actions for the tanh-squashed
  policy's entropy estimate (networks.squashed_entropy); None: the pre-squash Gaussian's.
  `dual_clip`: c bounding the surrogate below by c·A where A < 0 (None: PPO's own)."""
  obs = batch.obs
  if regularize:  # one forward pass over [s; g_s s]: fewer, larger matmuls than two passes
    obs = jnp.concatenate([obs, net.reflection.reflect_obs(obs)], axis=0)
  loc, scale = net.distribution(params, obs)
  value = net.value_fn(params, obs)
  if regularize:
    (loc, loc_m), (scale, scale_m), (value, value_m) = (
        jnp.split(x, 2, axis=0) for x in (loc, scale, value))
  log_ratio = gaussian_log_prob(batch.raw_action, loc, scale) - batch.log_prob
  if dual_clip is not None:  # no inf·0 in the backward pass where the bound is active
    log_ratio = jnp.minimum(log_ratio, _LOG_RATIO_CAP)
  ratio = jnp.exp(log_ratio)
  advantage = batch.advantage
  if normalize_advantages:
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
  surrogate = jnp.minimum(ratio * advantage,
                          jnp.clip(ratio, 1 - clip_epsilon, 1 + clip_epsilon) * advantage)
  if dual_clip is not None:
    surrogate = jnp.where(advantage < 0, jnp.maximum(surrogate, dual_clip * advantage),
                          surrogate)
  policy_loss = -jnp.mean(surrogate)

  value_error = jnp.square(value - batch.target_value)
  if value_clip is not None:
    clipped = batch.old_value + jnp.clip(value - batch.old_value, -value_clip, value_clip)
    value_error = jnp.maximum(value_error, jnp.square(clipped - batch.target_value))
  value_loss = 0.5 * jnp.mean(value_error)
  entropy = jnp.mean(gaussian_entropy(scale) if entropy_noise is None
                     else squashed_entropy(loc, scale, entropy_noise))

  loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
  metrics = dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                 approx_kl=jnp.mean((ratio - 1) - log_ratio),
                 clip_fraction=jnp.mean(jnp.abs(ratio - 1) > clip_epsilon))
  if regularize:
    actor = regularizer.actor_term(net.reflection, loc, scale, loc_m, scale_m,
                                   kind=reflex.actor_loss, detach_target=reflex.detach_target)
    critic = regularizer.invariance_term(value, value_m, detach_target=reflex.detach_target)
    loss = loss + reflex_weight * (reflex.actor_coef * actor + reflex.value_coef * critic)
    metrics.update(reflex_actor=actor, reflex_critic=critic, reflex_weight=reflex_weight)
  return loss, metrics
