"""brax.training's PPO and SAC run on the settings of one of our configs: the peer that our
baseline must match (learning: `run.peer`; speed: `bench/ppo_throughput.py`,
`bench/sac_throughput.py`).

The batch mapping is docs/reflex_published_hparams.md's, read backwards. brax collects
k = batch_size·num_minibatches / num_envs consecutive unrolls of `unroll_length` steps per
update; ours collects one unroll of k·unroll_length. So ours (N envs, U steps, M minibatches)
is brax's (N envs, u steps, batch_size = (U/u)·N/M sequences, M minibatches) for any u that
divides U; brax publishes u (5 for ant, 10 for humanoid, 30 for the DMC tasks).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax

from reflex_jax import ppo, sac
from reflex_jax.envs import Env, compat

# Our max_grad_norm at or above this is brax's None (no clipping): PPOConfig needs a float.
NO_CLIP = 1e6


def _native(sim: Env) -> tuple[object, dict]:
  """(the very simulator object ours steps, brax.training's wrap argument for it)."""
  compat.patch_brax_training()  # brax 0.14 on jax 0.11
  kwargs = {}
  if sim.env_id.startswith("playground/"):
    from mujoco_playground import wrapper  # pylint: disable=import-outside-toplevel
    kwargs["wrap_env_fn"] = wrapper.wrap_for_brax_training
  return sim._env, kwargs  # pylint: disable=protected-access


def _activation(name: str):
  return getattr(jax.nn, name)


def ppo_kwargs(config: ppo.PPOConfig, brax_unroll_length: int | None = None) -> dict:
  """brax.training.agents.ppo.train's arguments for `config` (no environment, seed, progress).
  `brax_unroll_length`: brax's u (default: ours, i.e. k = 1). Raises ValueError for a config
  brax cannot express."""
  from brax.training.agents.ppo import networks  # pylint: disable=import-outside-toplevel
  u = brax_unroll_length or config.unroll_length
  if config.unroll_length % u or (config.unroll_length // u * config.num_envs) % config.num_minibatches:
    raise ValueError(f"brax unroll_length {u} does not map ours (num_envs {config.num_envs}, "
                     f"unroll_length {config.unroll_length}, num_minibatches "
                     f"{config.num_minibatches}): u must divide unroll_length and "
                     "(unroll_length/u)·num_envs must divide by num_minibatches")
  if config.policy.squash != "tanh" or config.policy.std != "state_dependent":
    raise ValueError("brax's PPO policy is a tanh-Gaussian with state-dependent scale; set "
                     "ppo.policy.squash=tanh and ppo.policy.std=state_dependent")
  if config.value_clip is not None or config.lr_schedule != "constant":
    raise ValueError("brax's PPO has no value clipping and a constant learning rate")
  if config.policy.activation != config.value_activation:
    raise ValueError("brax's PPO networks share one activation; set ppo.policy.activation "
                     f"({config.policy.activation}) = ppo.value_activation "
                     f"({config.value_activation})")
  k = config.unroll_length // u
  return dict(
      num_timesteps=config.num_timesteps, episode_length=config.episode_length or 1000,
      action_repeat=config.action_repeat or 1, num_envs=config.num_envs,
      num_eval_envs=config.num_eval_envs, unroll_length=u,
      batch_size=k * config.num_envs // config.num_minibatches,
      num_minibatches=config.num_minibatches, num_updates_per_batch=config.num_epochs,
      learning_rate=config.learning_rate, entropy_cost=config.entropy_coef,
      discounting=config.gamma, gae_lambda=config.gae_lambda,
      clipping_epsilon=config.clip_epsilon, vf_loss_coefficient=config.value_coef,
      normalize_advantage=config.normalize_advantages,
      normalize_observations=config.normalize_observations,
      reward_scaling=config.reward_scaling,
      max_grad_norm=None if config.max_grad_norm >= NO_CLIP else config.max_grad_norm,
      deterministic_eval=True,  # as our eval/return
      max_devices_per_host=1,  # brax splits the envs over devices; ours compares on one
      network_factory=functools.partial(
          networks.make_ppo_networks, policy_hidden_layer_sizes=config.policy.hidden,
          value_hidden_layer_sizes=config.value_hidden,
          activation=_activation(config.value_activation)))


def sac_kwargs(config: sac.SACConfig) -> dict:
  """brax.training.agents.sac.train's arguments for `config` (no environment, seed,
  progress). brax fixes what ours sets: target entropy −0.5·|A|, α's learning rate 3e-4."""
  from brax.training.agents.sac import networks  # pylint: disable=import-outside-toplevel
  if config.num_q != 2 or config.max_grad_norm is not None:
    raise ValueError("brax's SAC has two critics and no gradient clipping")
  return dict(
      num_timesteps=config.num_timesteps, episode_length=config.episode_length or 1000,
      action_repeat=config.action_repeat or 1, num_envs=config.num_envs,
      num_eval_envs=config.num_eval_envs, batch_size=config.batch_size,
      grad_updates_per_step=config.grad_updates_per_step,
      min_replay_size=config.learning_starts, max_replay_size=config.buffer_size,
      learning_rate=config.learning_rate, discounting=config.gamma, tau=config.tau,
      reward_scaling=config.reward_scaling, normalize_observations=config.normalize_observations,
      max_devices_per_host=1,  # brax splits the envs over devices; ours compares on one
      network_factory=functools.partial(
          networks.make_sac_networks, hidden_layer_sizes=config.q_hidden,
          activation=_activation(config.q_activation),
          state_dependent_std=config.policy.std == "state_dependent",
          q_network_layer_norm=config.q_layer_norm),
      deterministic_eval=True)  # as our eval/return


def train(sim: Env, algo: str, kwargs: dict, seed: int,
          progress_fn: Callable[[int, dict], None] | None = None):
  """brax.training's `train` of `algo` on `sim` with `kwargs` (ppo_kwargs / sac_kwargs, which
  callers may edit, e.g. num_evals); brax's (make_policy, params, metrics)."""
  # pylint: disable=import-outside-toplevel
  if algo == "ppo":
    from brax.training.agents.ppo.train import train as brax_train
  elif algo == "sac":
    from brax.training.agents.sac.train import train as brax_train
  else:
    raise ValueError(f"brax.training has no {algo!r} peer here; choose ppo or sac")
  native, wrap = _native(sim)
  return brax_train(environment=native, seed=seed, progress_fn=progress_fn or (lambda *_: None),
                    **wrap, **kwargs)
