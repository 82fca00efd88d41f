"""SAC losses and their Reflex terms, as pure functions of (params, batch).

Batch: obs, action (squashed, in [-1, 1]), reward, terminated, next_obs, all raw
observations. Truncation (time limit) is not termination: the target bootstraps through
it, so only `terminated` zeroes the next value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reflex_jax import regularizer
from reflex_jax.networks import ActorTwinCritic, tanh_gaussian_log_prob
from reflex_jax.regularizer import ReflexConfig


def td_target(reward, terminated, next_q_min, next_log_prob, alpha, gamma: float):
  """y = r + γ (1 − terminated) (min_i Q̄_i(s′, a′) − α log π(a′|s′))."""
  return reward + gamma * (1.0 - terminated) * (next_q_min - alpha * next_log_prob)


def mirrored(batch: dict, reflection) -> dict:
  """(g_s s, g_a a, r, d, g_s s′): the mirror image of each transition, exact for an
  invariant MDP."""
  return dict(batch, obs=reflection.reflect_obs(batch["obs"]),
              action=reflection.reflect_action(batch["action"]),
              next_obs=reflection.reflect_obs(batch["next_obs"]))


def critic_loss(q_params, params: dict, target_q_params, batch: dict, key, alpha, weight, *,
                net: ActorTwinCritic, gamma: float, reward_scaling: float,
                reflex: ReflexConfig | None, regularize: bool):
  """Σ_i ½ mean (Q_i(s, a) − y)² + w λ_V Σ_i mean (Q_i(g_s s, g_a a) − Q_i(s, a))²; the
  Reflex term (and its mirrored pass) only where `regularize` (regularizer.regularizes)."""
  normalizer = params["normalizer"]
  next_action, next_log_prob, _, _ = net.sample(params, batch["next_obs"], key)
  next_q = net.q_values(target_q_params, normalizer, batch["next_obs"], next_action)
  target = jax.lax.stop_gradient(td_target(
      batch["reward"] * reward_scaling, batch["terminated"], jnp.min(next_q, axis=0),
      next_log_prob, alpha, gamma))
  g = net.reflection
  if regularize:  # one forward over [(s, a); (g s, g a)]
    both = net.q_values(q_params, normalizer,
                        jnp.concatenate([batch["obs"], g.reflect_obs(batch["obs"])]),
                        jnp.concatenate([batch["action"], g.reflect_action(batch["action"])]))
    q, q_m = jnp.split(both, 2, axis=1)
  else:
    q = net.q_values(q_params, normalizer, batch["obs"], batch["action"])
  td = 0.5 * jnp.sum(jnp.mean(jnp.square(q - target), axis=-1))
  metrics = dict(critic_loss=td, q_mean=jnp.mean(q), td_target_mean=jnp.mean(target))
  loss = td
  if regularize:
    invariance = q.shape[0] * regularizer.invariance_term(q, q_m, detach_target=reflex.detach_target)
    loss = loss + weight * reflex.value_coef * invariance
    metrics["reflex_critic"] = invariance
  return loss, metrics


def actor_loss(policy_params, params: dict, batch: dict, key, alpha, weight, *,
               net: ActorTwinCritic, reflex: ReflexConfig | None, regularize: bool):
  """mean(α log π(a|s) − min_i Q_i(s, a)) + w · actor equivariance, a ~ π reparameterized."""
  params = dict(params, policy=policy_params)
  obs = batch["obs"]
  g = net.reflection
  if regularize:  # one policy pass over [s; g s]
    loc_all, scale_all = net.distribution(params, jnp.concatenate([obs, g.reflect_obs(obs)]))
    (loc, loc_m), (scale, scale_m) = jnp.split(loc_all, 2), jnp.split(scale_all, 2)
  else:
    loc, scale = net.distribution(params, obs)
  u = loc + scale * jax.random.normal(key, loc.shape, loc.dtype)
  log_prob = tanh_gaussian_log_prob(u, loc, scale)
  q = net.q_values(params["q"], params["normalizer"], obs, jnp.tanh(u))
  sac = jnp.mean(alpha * log_prob - jnp.min(q, axis=0))
  metrics = dict(actor_loss=sac, entropy=-jnp.mean(log_prob))
  loss = sac
  if regularize:
    term = regularizer.actor_term(g, loc, scale, loc_m, scale_m, kind=reflex.actor_loss,
                                  detach_target=reflex.detach_target)
    loss = loss + weight * reflex.actor_coef * term
    metrics["reflex_actor"] = term
  return loss, (metrics, log_prob)


def alpha_loss(log_alpha, log_prob, target_entropy: float):
  """−mean(log α · (log π + H̄)): raises α while the entropy is below its target.

  Reflex leaves α and the target entropy −|A| unchanged: a signed permutation of the action
  preserves a policy's entropy (|det g_a| = 1), so the entropy constraint is already
  reflection-invariant and needs no mirrored counterpart."""
  return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))
