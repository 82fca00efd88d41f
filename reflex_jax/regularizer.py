"""The Reflex symmetry regularizer, shared by PPO and SAC.

For a reflection g = (g_s, g_a) of an invariant MDP the optimal policy is equivariant and the
optimal values are invariant. The terms below measure how far the learned networks are from
that, on *raw* observations (the caller mirrors before normalizing):

  actor:  ‖μ(g_s s) − g_a μ(s)‖² + ‖σ(g_s s) − P_a σ(s)‖²   (or the KL between the Gaussians)
  critic: (V(g_s s) − V(s))²   or, for SAC, (Q_i(g_s s, g_a a) − Q_i(s, a))²

The paper's weight decays linearly, w_t = w0·(1 − t/T) in environment steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from reflex_jax import checks
from reflex_jax.symmetry import Reflection


@dataclasses.dataclass(frozen=True)
class ReflexConfig:
  """The Reflex settings: the one schema, used by `ppo.train`/`sac.train` (config.reflex) and
  as an experiment's `reflex` section (its variants are named overrides of it).

  weight: w0, the regularizer's weight (the paper's best for Reflex-PPO). `train(...,
    reflex_weight=[...])` trains several w0 in one vmapped program (plain is w0 = 0).
  schedule: "linear" decays w0 to 0 over the run (the paper's choice), "constant" keeps it.
  actor_loss: "mse" on (μ, σ), or "kl" = KL(π(·|g s) ‖ g_a#π(·|s)).
  detach_target: stop the gradient through the un-mirrored side (rsl_rl's choice); the paper
    does not say, so both sides get gradients by default.
  value_coef: λ_V, the critic term's weight relative to the actor term.
  actor_coef: the actor term's own factor (1; 0 leaves the critic term alone: an ablation).
  augment: also train on mirrored samples (PPO: with π_old(g_a a | g_s s) in the ratio and
    the dual clip, losses.AUGMENT_DUAL_CLIP).
  symmetrize: hard-equivariant networks instead of (or with) the soft penalty.
  """

  weight: float = 0.1
  schedule: str = "linear"  # "linear" or "constant"
  actor_loss: str = "mse"  # "mse" or "kl"
  detach_target: bool = False
  value_coef: float = 1.0
  actor_coef: float = 1.0
  augment: bool = False
  symmetrize: bool = False

  def __post_init__(self):
    if self.schedule not in ("linear", "constant"):
      raise ValueError(f"reflex schedule must be 'linear' or 'constant', got {self.schedule!r}")
    if self.actor_loss not in ("mse", "kl"):
      raise ValueError(f"reflex actor_loss must be 'mse' or 'kl', got {self.actor_loss!r}")
    checks.non_negative(self, "weight", "value_coef", "actor_coef")


def regularizes(reflex: ReflexConfig | None, weights) -> bool:
  """Whether a program computes the Reflex terms (the mirrored passes): a static flag, the
  same for PPO and SAC. Not for plain runs, not when every run's w0 is 0 (an augment-only
  group), not for symmetrized networks (their terms are exactly 0)."""
  return (reflex is not None and not reflex.symmetrize
          and any(float(w) > 0 for w in np.atleast_1d(weights)))


def weight(w0: jax.Array, step: jax.Array, total_steps: int, schedule: str) -> jax.Array:
  """w_t at environment step `step` of `total_steps`."""
  if schedule == "constant":
    return jnp.asarray(w0, jnp.float32)
  return w0 * jnp.clip(1.0 - step / total_steps, 0.0, 1.0)


def actor_term(reflection: Reflection, loc, scale, loc_m, scale_m, *, kind: str = "mse",
               detach_target: bool = False) -> jax.Array:
  """Mean over the batch of the policy's equivariance error.

  (loc, scale) at s, (loc_m, scale_m) at g_s s. The target g_a#π(·|s) has mean g_a μ(s) and
  scale P_a σ(s) (a signed permutation moves a diagonal Gaussian's scales without signs).
  """
  target_loc = reflection.reflect_action(loc)
  target_scale = reflection.action.unsigned.apply(scale)
  if detach_target:
    target_loc, target_scale = jax.lax.stop_gradient((target_loc, target_scale))
  if kind == "mse":
    err = jnp.sum(jnp.square(loc_m - target_loc) + jnp.square(scale_m - target_scale), axis=-1)
  else:  # KL(N(loc_m, scale_m) ‖ N(target_loc, target_scale)), diagonal
    err = jnp.sum(jnp.log(target_scale / scale_m)
                  + (jnp.square(scale_m) + jnp.square(loc_m - target_loc))
                  / (2.0 * jnp.square(target_scale)) - 0.5, axis=-1)
  return jnp.mean(err)


def invariance_term(value, value_m, *, detach_target: bool = False) -> jax.Array:
  """Mean of (f(g·x) − f(x))² for a value or Q function."""
  if detach_target:
    value = jax.lax.stop_gradient(value)
  return jnp.mean(jnp.square(value_m - value))


def symmetry_errors(reflection: Reflection, loc, loc_m, value, value_m) -> dict[str, jax.Array]:
  """The measured symmetry of a policy and critic, logged for every run (Reflex or not)."""
  return dict(
      policy_symmetry_error=jnp.mean(jnp.linalg.norm(loc_m - reflection.reflect_action(loc),
                                                     axis=-1)),
      value_symmetry_error=jnp.mean(jnp.abs(value_m - value)))
