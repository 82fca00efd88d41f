"""Actor and critic networks, Gaussian action heads and the running observation normalizer.

Networks are Flax NNX modules, used functionally: `init` returns a parameter pytree and
`apply` merges it back inside jit, so a training state is a plain pytree that vmaps over
seeds and shards over devices. Every network takes *raw* observations and normalizes them
itself, so a reflection can be applied before the (not mirror-symmetric) normalizer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Protocol, Sequence

import jax
import jax.numpy as jnp
from flax import nnx, struct

from reflex_jax.symmetry import Reflection

class Network(Protocol):
  """What the driver and every trainer use of a network (ActorCritic, ActorTwinCritic, or one
  of a custom `network_factory`); each algorithm's losses use more (PPO: `value_fn`; SAC:
  `sample`, `q_values`), as its `train` documents."""

  reflection: Reflection | None  # the task's, held here only: the Reflex terms read it

  def init(self, key: jax.Array, obs_size: int) -> dict:
    """Parameters, including a "normalizer" (Normalizer) the trainers update."""

  def distribution(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(loc, scale) of the pre-squash Gaussian at raw observations."""

  def act(self, params: dict, obs: jax.Array, key: jax.Array | None) -> tuple[jax.Array, dict]:
    """(action in [-1, 1], extras), sampled, or the mode when key is None."""


# network_factory(observation_size, action_size, algorithm config, reflection) → Network; it
# keeps the reflection (None: the task has none) as the network's `reflection`.
NetworkFactory = Callable[[int, int, Any, Reflection | None], Network]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh, "relu": jax.nn.relu, "swish": jax.nn.swish, "elu": jax.nn.elu}


# --- observation normalizer (Welford / Chan parallel update) -------------------------------

@struct.dataclass
class Normalizer:
  count: jax.Array   # scalar
  mean: jax.Array    # (obs,)
  m2: jax.Array      # (obs,) sum of squared deviations

  @classmethod
  def create(cls, size: int) -> "Normalizer":
    return cls(jnp.zeros(()), jnp.zeros(size), jnp.zeros(size))

  def update(self, x_BO: jax.Array) -> "Normalizer":
    """Adds a batch of observations (any leading shape)."""
    x = x_BO.reshape(-1, x_BO.shape[-1]).astype(jnp.float32)
    n = jnp.asarray(x.shape[0], jnp.float32)
    batch_mean = x.mean(axis=0)
    batch_m2 = jnp.square(x - batch_mean).sum(axis=0)
    total = self.count + n
    delta = batch_mean - self.mean
    return Normalizer(total, self.mean + delta * n / total,
                      self.m2 + batch_m2 + jnp.square(delta) * self.count * n / total)

  @property
  def std(self) -> jax.Array:
    var = self.m2 / jnp.maximum(self.count, 1.0)
    return jnp.sqrt(jnp.maximum(var, 1e-8))

  def head(self, size: int) -> "Normalizer":
    """The statistics of the first `size` entries (the policy's part of an observation)."""
    return Normalizer(self.count, self.mean[:size], self.m2[:size])

  def __call__(self, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    # Before any data the statistics are (0, ~0): pass observations through unchanged.
    seen = self.count > 0
    z = jnp.where(seen, (obs - self.mean) / self.std, obs)
    return jnp.clip(z, -clip, clip)


# --- MLP ---------------------------------------------------------------------------------------

# Kernel initializations: "orthogonal", gain √2 on hidden layers and a per-network gain on
# the output (PureJaxRL, CleanRL, rsl_rl); "lecun_uniform" on every layer, as brax.training's
# networks. Biases start at zero in both.
INITS = ("orthogonal", "lecun_uniform")


class MLP(nnx.Module):
  def __init__(self, in_size: int, hidden: Sequence[int], out_size: int, *, activation: str,
               out_scale: float, rngs: nnx.Rngs, layer_norm: bool = False,
               init: str = "orthogonal"):
    if init not in INITS:
      raise ValueError(f"network init {init!r} unknown; choose from {INITS}")
    sizes = [in_size, *hidden]
    if init == "orthogonal":
      hidden_init = nnx.initializers.orthogonal(jnp.sqrt(2.0))
      out_init = nnx.initializers.orthogonal(out_scale)
    else:
      hidden_init = out_init = nnx.initializers.lecun_uniform()
    self.hidden = nnx.List([nnx.Linear(a, b, kernel_init=hidden_init, rngs=rngs)
                            for a, b in zip(sizes[:-1], sizes[1:])])
    self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) if layer_norm else None
                           for b in hidden])
    self.out = nnx.Linear(sizes[-1], out_size, kernel_init=out_init, rngs=rngs)
    self.activation = activation

  def __call__(self, x):
    act = ACTIVATIONS[self.activation]
    for layer, norm in zip(self.hidden, self.norms):
      x = layer(x)
      x = act(norm(x) if norm is not None else x)
    return self.out(x)


# --- Gaussian policy ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PolicyConfig:
  hidden: tuple[int, ...] = (64, 64)
  activation: str = "tanh"
  std: Literal["state_independent", "state_dependent"] = "state_independent"
  init_log_std: float = 0.0
  min_std: float = 1e-3
  squash: Literal["tanh", "clip"] = "tanh"   # how a Gaussian sample becomes an action in [-1, 1]

  def __post_init__(self):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"activation {self.activation!r} unknown; choose from {sorted(ACTIVATIONS)}")
    if self.std not in ("state_independent", "state_dependent"):
      raise ValueError(f"std must be 'state_independent' or 'state_dependent', got {self.std!r}")
    if self.squash not in ("tanh", "clip"):
      raise ValueError(f"squash must be 'tanh' or 'clip', got {self.squash!r}")


class GaussianPolicy(nnx.Module):
  """obs ↦ (loc, scale) of a diagonal Gaussian over pre-squash actions."""

  def __init__(self, obs_size: int, action_size: int, config: PolicyConfig, rngs: nnx.Rngs,
               init: str = "orthogonal"):
    out = action_size * (2 if config.std == "state_dependent" else 1)
    self.net = MLP(obs_size, config.hidden, out, activation=config.activation, out_scale=0.01,
                   rngs=rngs, init=init)
    if config.std == "state_independent":
      self.log_std = nnx.Param(jnp.full((action_size,), config.init_log_std))
    self.config = config

  def __call__(self, z):
    out = self.net(z)
    if self.config.std == "state_independent":
      scale = jnp.broadcast_to(jnp.exp(self.log_std[...]), out.shape)
      return out, scale + self.config.min_std
    loc, raw = jnp.split(out, 2, axis=-1)
    # softplus offset so that the initial scale is about exp(init_log_std).
    offset = jnp.log(jnp.expm1(jnp.exp(self.config.init_log_std)))
    return loc, jax.nn.softplus(raw + offset) + self.config.min_std


def gaussian_log_prob(u, loc, scale):
  return jnp.sum(-0.5 * jnp.square((u - loc) / scale) - jnp.log(scale)
                 - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def gaussian_entropy(scale):
  return jnp.sum(0.5 + 0.5 * jnp.log(2 * jnp.pi) + jnp.log(scale), axis=-1)


def tanh_log_det_jacobian(u):
  """Σ log |d tanh(u) / du| = Σ log(1 − tanh² u) over the action axis, in the form that stays
  finite where tanh saturates: 2 (log 2 − u − softplus(−2u))."""
  return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def squashed_entropy(loc, scale, noise):
  """One-sample estimate of the entropy of tanh(u), u ~ N(loc, scale), with u = loc + scale ·
  noise (reparameterized): the Gaussian's entropy plus log |det ∂tanh/∂u| at the sample, as
  brax's NormalTanhDistribution.entropy. Unlike the Gaussian's alone, it stops rewarding a
  growing scale once tanh saturates (the extra width is squashed away)."""
  return gaussian_entropy(scale) + tanh_log_det_jacobian(loc + scale * noise)


def squash(u, how: str):
  """Pre-squash sample ↦ action in [-1, 1]. Both maps are odd and element-wise, so they
  commute with signed permutations: equivariance of (loc, scale) carries to the actions."""
  return jnp.tanh(u) if how == "tanh" else jnp.clip(u, -1.0, 1.0)


# --- functional wrappers -----------------------------------------------------------------------

class Functional:
  """An NNX module held as (graphdef, init): `init(key)` → params, `apply(params, *x)`."""

  def __init__(self, build: Callable[[nnx.Rngs], nnx.Module]):
    self._build = build
    self.graphdef, _ = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))

  def init(self, key: jax.Array):
    return nnx.state(self._build(nnx.Rngs(key)), nnx.Param)

  def apply(self, params, *args):
    return nnx.merge(self.graphdef, params)(*args)


def policy_distribution(policy: Functional, policy_params, normalizer: Normalizer,
                        obs: jax.Array, symmetrize_with: Reflection | None = None,
                        policy_obs_size: int | None = None):
  """(loc, scale) at raw `obs`; with a reflection, the hard-equivariant version
  μ_sym(s) = ½(μ(s) + g_a μ(g_s s)), σ_sym = ½(σ(s) + P_a σ(g_s s)).
  policy_obs_size: the policy reads only that leading part of `obs` (privileged critics);
  `obs` may then also be just that part, as on a deployed robot."""
  n = policy_obs_size or obs.shape[-1]
  norm = normalizer.head(n) if policy_obs_size else normalizer
  loc, scale = policy.apply(policy_params, norm(obs[..., :n]))
  if symmetrize_with is not None:
    g = symmetrize_with
    loc_m, scale_m = policy.apply(policy_params, norm(g.reflect_obs(obs)[..., :n]))
    loc = 0.5 * (loc + g.reflect_action(loc_m))
    scale = 0.5 * (scale + g.action.unsigned.apply(scale_m))
  return loc, scale


@dataclasses.dataclass(frozen=True)
class ActorCritic:
  """A Gaussian policy and a value network on raw observations, optionally symmetrized.

  symmetrize: hard equivariance, μ_sym(s) = ½(μ(s) + g_a μ(g_s s)), σ_sym = ½(σ(s) + P_a σ(g_s s)),
  V_sym(s) = ½(V(s) + V(g_s s)): exact by construction, at twice the network cost.
  """

  policy: Functional
  value: Functional
  policy_config: PolicyConfig
  reflection: Reflection | None = None
  symmetrize: bool = False
  policy_obs_size: int | None = None  # privileged critic: the policy's leading part of obs

  @classmethod
  def create(cls, obs_size: int, action_size: int, policy_config: PolicyConfig,
             value_hidden: Sequence[int], value_activation: str,
             reflection: Reflection | None = None, symmetrize: bool = False,
             policy_obs_size: int | None = None, init: str = "orthogonal") -> "ActorCritic":
    if symmetrize and reflection is None:
      raise ValueError("a symmetrized network needs the task's reflection")
    policy_in = policy_obs_size or obs_size
    policy = Functional(lambda r: GaussianPolicy(policy_in, action_size, policy_config, r,
                                                 init))
    value = Functional(lambda r: MLP(obs_size, tuple(value_hidden), 1,
                                     activation=value_activation, out_scale=1.0, rngs=r,
                                     init=init))
    return cls(policy, value, policy_config, reflection, symmetrize, policy_obs_size)

  def init(self, key: jax.Array, obs_size: int) -> dict:
    k_pi, k_v = jax.random.split(key)
    return dict(policy=self.policy.init(k_pi), value=self.value.init(k_v),
                normalizer=Normalizer.create(obs_size))

  def distribution(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(loc, scale) of the pre-squash Gaussian at raw observations `obs`."""
    return policy_distribution(self.policy, params["policy"], params["normalizer"], obs,
                               self.reflection if self.symmetrize else None,
                               self.policy_obs_size)

  def value_fn(self, params: dict, obs: jax.Array) -> jax.Array:
    v = self.value.apply(params["value"], params["normalizer"](obs))[..., 0]
    if self.symmetrize:
      obs_m = self.reflection.reflect_obs(obs)
      v = 0.5 * (v + self.value.apply(params["value"], params["normalizer"](obs_m))[..., 0])
    return v

  def act(self, params: dict, obs: jax.Array, key: jax.Array | None) -> tuple[jax.Array, dict]:
    """Samples (or, with key None, takes the mode of) the policy: (action, extras)."""
    loc, scale = self.distribution(params, obs)
    u = loc if key is None else loc + scale * jax.random.normal(key, loc.shape, loc.dtype)
    return squash(u, self.policy_config.squash), dict(
        raw_action=u, log_prob=gaussian_log_prob(u, loc, scale))


def _symmetrize(config) -> bool:
  return config.reflex is not None and config.reflex.symmetrize


def make_actor_critic(observation_size: int, action_size: int, config,
                      reflection: Reflection | None,
                      policy_observation_size: int | None = None) -> ActorCritic:
  """PPO's default `network_factory`: the networks a PPOConfig describes (`policy`,
  `value_hidden`, `value_activation`), hard-equivariant when `config.reflex.symmetrize`;
  with `policy_observation_size` (privileged critic) the policy reads that leading part."""
  return ActorCritic.create(observation_size, action_size, config.policy, config.value_hidden,
                            config.value_activation, reflection, symmetrize=_symmetrize(config),
                            policy_obs_size=policy_observation_size, init=config.network_init)


def tanh_gaussian_log_prob(u, loc, scale):
  """log π(tanh u) for u ~ N(loc, scale): the Gaussian term minus log|d tanh/du|."""
  return gaussian_log_prob(u, loc, scale) - tanh_log_det_jacobian(u)


@dataclasses.dataclass(frozen=True)
class ActorTwinCritic:
  """SAC's networks on raw observations: a tanh-Gaussian actor with state-dependent scale
  and an ensemble of Q networks (one stacked parameter set, vmapped), optionally LayerNorm'd
  and optionally symmetrized: Q_sym(s, a) = ½(Q(s, a) + Q(g_s s, g_a a))."""

  policy: Functional
  q: Functional
  num_q: int
  reflection: Reflection | None = None
  symmetrize: bool = False

  @classmethod
  def create(cls, obs_size: int, action_size: int, policy_config: PolicyConfig,
             q_hidden: Sequence[int], q_activation: str, q_layer_norm: bool, num_q: int = 2,
             reflection: Reflection | None = None, symmetrize: bool = False):
    if symmetrize and reflection is None:
      raise ValueError("a symmetrized network needs the task's reflection")
    if policy_config.squash != "tanh" or policy_config.std != "state_dependent":
      raise ValueError("SAC's actor is a tanh-Gaussian with state-dependent scale: use "
                       "PolicyConfig(squash='tanh', std='state_dependent')")
    policy = Functional(lambda r: GaussianPolicy(obs_size, action_size, policy_config, r))
    q = Functional(lambda r: MLP(obs_size + action_size, tuple(q_hidden), 1,
                                 activation=q_activation, out_scale=1.0, rngs=r,
                                 layer_norm=q_layer_norm))
    return cls(policy, q, num_q, reflection, symmetrize)

  def init(self, key: jax.Array, obs_size: int) -> dict:
    k_pi, k_q = jax.random.split(key)
    return dict(policy=self.policy.init(k_pi),
                q=jax.vmap(self.q.init)(jax.random.split(k_q, self.num_q)),
                normalizer=Normalizer.create(obs_size))

  def distribution(self, params: dict, obs: jax.Array):
    return policy_distribution(self.policy, params["policy"], params["normalizer"], obs,
                               self.reflection if self.symmetrize else None)

  def sample(self, params: dict, obs: jax.Array, key: jax.Array):
    """(action, log π(action), loc, scale), reparameterized."""
    loc, scale = self.distribution(params, obs)
    u = loc + scale * jax.random.normal(key, loc.shape, loc.dtype)
    return jnp.tanh(u), tanh_gaussian_log_prob(u, loc, scale), loc, scale

  def q_values(self, q_params, normalizer: Normalizer, obs: jax.Array, action: jax.Array):
    """[num_q, *batch] Q values at raw observations."""
    def one(p, o, a):
      return jax.vmap(lambda pi: self.q.apply(pi, jnp.concatenate([normalizer(o), a], -1)))(p)[..., 0]
    q = one(q_params, obs, action)
    if self.symmetrize:
      g = self.reflection
      q = 0.5 * (q + one(q_params, g.reflect_obs(obs), g.reflect_action(action)))
    return q

  def act(self, params: dict, obs: jax.Array, key: jax.Array | None):
    """Samples (or, with key None, takes tanh of the mode): (action, extras)."""
    if key is None:
      return jnp.tanh(self.distribution(params, obs)[0]), {}
    action, log_prob, _, _ = self.sample(params, obs, key)
    return action, dict(log_prob=log_prob)


def make_actor_twin_critic(observation_size: int, action_size: int, config,
                           reflection: Reflection | None) -> ActorTwinCritic:
  """SAC's default `network_factory`: the networks a SACConfig describes (`policy`, `q_hidden`,
  `q_activation`, `q_layer_norm`, `num_q`), hard-equivariant when `config.reflex.symmetrize`."""
  return ActorTwinCritic.create(observation_size, action_size, config.policy, config.q_hidden,
                                config.q_activation, config.q_layer_norm, config.num_q,
                                reflection, symmetrize=_symmetrize(config))
