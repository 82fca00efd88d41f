"""SAC and Reflex-SAC: the whole run compiled as scans over an on-device replay buffer.

    make_policy, params, metrics = reflex_jax.sac.train("brax/ant", SACConfig(), seed=[0, 1])

Prefill: `learning_starts` environment steps with uniform random actions (one scan).
Then each iteration steps every environment once with the policy, inserts the transitions
and runs `grad_updates_per_step` updates (scan); one host call per logging interval runs
`iterations_per_log` iterations (scan). Runs (Reflex weights × seeds) are vmapped.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from reflex_jax import checks, driver, regularizer
from reflex_jax.envs import Env, EnvState
from reflex_jax.networks import NetworkFactory, PolicyConfig, make_actor_twin_critic
from reflex_jax.sac import losses, replay
from reflex_jax.symmetry import Reflection


@dataclasses.dataclass(frozen=True)
class SACConfig:
  """SAC hyperparameters. Steps count environment steps (× action_repeat), as in brax."""

  num_timesteps: int = 500_000  # env steps per run (the experiment's `steps` sets it)
  num_envs: int = 32  # environments stepped in parallel per run
  grad_updates_per_step: int = 8     # updates per iteration (one step of every env): UTD × num_envs
  batch_size: int = 256  # transitions per gradient update
  buffer_size: int = 1_000_000       # transitions
  learning_starts: int = 10_000      # env steps with random actions before learning
  learning_rate: float = 3e-4        # actor, critics and temperature
  gamma: float = 0.99  # the discount
  tau: float = 0.005                 # Polyak averaging of the target critics
  init_alpha: float = 1.0  # the temperature α at the start
  target_entropy: float | None = None  # None: −|A|
  reward_scaling: float = 1.0  # rewards are multiplied by this before learning
  normalize_observations: bool = True  # running mean/std normalization of observations
  # the actor: hidden sizes, activation, std (state_dependent or learned), squash
  policy: PolicyConfig = PolicyConfig(hidden=(256, 256), activation="relu",
                                      std="state_dependent", squash="tanh")
  q_hidden: tuple[int, ...] = (256, 256)  # each Q network's hidden sizes
  q_activation: str = "relu"  # the Q networks' activation
  q_layer_norm: bool = False  # LayerNorm after each hidden layer of the Q networks
  num_q: int = 2  # Q networks in the ensemble (the target takes their minimum)
  max_grad_norm: float | None = None  # global gradient-norm clip; None: none
  episode_length: int | None = None  # None: the task's own (Playground) or 1000
  action_repeat: int | None = None  # each action applied this many times; None: the task's or 1
  equalize_asymmetries: bool = False  # the exactly mirror-symmetric model (registry fixes)
  mask_nonfinite: bool = False       # end episodes at NaN/inf simulator steps (envs.NonFiniteMask)
  num_logs: int = 10  # host calls (progress, metrics) over the run
  num_eval_envs: int = 16  # episodes for the final evaluation
  reflex: regularizer.ReflexConfig | None = None  # None: plain SAC; w0 is reflex.weight
  num_devices: int | None = None  # shard envs over this many devices; None: all that divide

  def __post_init__(self):
    for name in ("num_timesteps", "num_envs", "grad_updates_per_step", "batch_size",
                 "buffer_size", "num_logs", "num_eval_envs", "num_q"):
      if getattr(self, name) < 1:
        raise ValueError(f"SACConfig.{name} must be positive, got {getattr(self, name)}")
    if not 0.0 < self.tau <= 1.0:
      raise ValueError(f"SACConfig.tau must be in (0, 1], got {self.tau}")
    if self.learning_starts < 0:
      raise ValueError(f"SACConfig.learning_starts must be >= 0, got {self.learning_starts}")
    checks.in_unit_interval(self, "gamma")
    checks.positive(self, "learning_rate", "init_alpha", "reward_scaling", "max_grad_norm",
                    "episode_length", "action_repeat", "num_devices")
    if self.buffer_size < self.num_envs:
      raise ValueError(f"SACConfig.buffer_size {self.buffer_size} holds less than one step of "
                       f"{self.num_envs} envs")

  @property
  def steps_per_iteration(self) -> int:
    return self.num_envs * (self.action_repeat or 1)

  def budget(self) -> driver.Budget:
    """The env steps a run takes: the prefill in whole iterations, then at least one
    iteration per logging interval, the same number in each."""
    repeat = f" × action repeat {self.action_repeat}" if (self.action_repeat or 1) > 1 else ""
    prefill = -(-self.learning_starts // self.steps_per_iteration) * self.steps_per_iteration
    return driver.Budget(self.num_timesteps, prefill, self.steps_per_iteration * self.num_logs,
                         f"{self.num_envs} envs{repeat} × {self.num_logs} logs",
                         ("num_envs", "num_logs"))


@struct.dataclass
class TrainState:
  params: dict               # policy, q, target_q, log_alpha, normalizer
  opt_state: dict            # per part: policy, q, alpha
  buffer: replay.ReplayBuffer
  env_state: EnvState
  key: jax.Array
  iteration: jax.Array       # iterations after prefill
  reflex_weight: jax.Array


class Trainer(driver.TrainerBase):
  """The pure functions of one run: `init`, `prefill`, `train_chunk`."""

  def __init__(self, env: Env, config: SACConfig, reflection: Reflection | None,
               iterations_per_log: int, total_iterations: int, prefill_iterations: int, *,
               regularize: bool | None = None,
               network_factory: NetworkFactory = make_actor_twin_critic):
    super().__init__(env, config, reflection, network_factory, regularize)
    self.iterations_per_log, self.total_iterations = iterations_per_log, total_iterations
    self.prefill_iterations = prefill_iterations
    clip = ([optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm else [])
    self.optimizer = optax.chain(*clip, optax.adam(config.learning_rate))
    self.target_entropy = (-float(env.action_size) if config.target_entropy is None
                           else config.target_entropy)

  def init(self, key: jax.Array, reflex_weight: jax.Array) -> TrainState:
    k_net, k_env, k_train = jax.random.split(key, 3)
    net_params = self.net.init(k_net, self.env.observation_size)
    params = dict(net_params, target_q=net_params["q"],
                  log_alpha=jnp.log(jnp.asarray(self.config.init_alpha, jnp.float32)))
    opt_state = {part: self.optimizer.init(params[key_])
                 for part, key_ in (("policy", "policy"), ("q", "q"), ("alpha", "log_alpha"))}
    env_state = self.shard_envs(self.env.reset(k_env))
    example = self._transition(env_state, jnp.zeros((self.config.num_envs, self.env.action_size)),
                               env_state)
    # A buffer larger than the run's transitions would never fill: cap it (memory, checkpoints).
    run_transitions = (self.prefill_iterations + self.total_iterations) * self.config.num_envs
    buffer = replay.create(example, min(self.config.buffer_size, run_transitions))
    return TrainState(params, opt_state, buffer, env_state, k_train, jnp.zeros((), jnp.int32),
                      jnp.asarray(reflex_weight, jnp.float32))

  @staticmethod
  def _transition(state: EnvState, action, nxt: EnvState) -> dict:
    # next_obs is the observation the action led to, before any auto-reset.
    return dict(obs=state.obs, action=action, reward=nxt.reward,
                terminated=nxt.terminated.astype(jnp.float32),
                next_obs=nxt.metrics["final_obs"] if "final_obs" in nxt.metrics else nxt.obs)

  def _env_step(self, state: TrainState, action) -> tuple[TrainState, dict]:
    nxt = self.shard_envs(self.env.step(state.env_state, action))
    params = state.params
    if self.config.normalize_observations:
      params = dict(params, normalizer=params["normalizer"].update(state.env_state.obs))
    buffer = replay.insert(state.buffer, self._transition(state.env_state, action, nxt))
    m = nxt.metrics
    episodes = dict(episodes=m["completed"].sum(),
                    return_sum=(m["completed"] * m["completed_return"]).sum(),
                    length_sum=(m["completed"] * m["completed_length"]).sum(),
                    reward=nxt.reward.mean())
    if self.config.mask_nonfinite:
      episodes["masked_steps"] = m["masked"].sum()
    return state.replace(params=params, buffer=buffer, env_state=nxt), episodes

  def prefill(self, state: TrainState) -> TrainState:
    """`learning_starts` env steps with uniform random actions, no learning."""
    def step(state, _):
      key, k = jax.random.split(state.key)
      action = jax.random.uniform(k, (self.config.num_envs, self.env.action_size),
                                  minval=-1.0, maxval=1.0)
      state, _ = self._env_step(state.replace(key=key), action)
      return state, None
    return jax.lax.scan(step, state, None, length=self.prefill_iterations)[0]

  def _update(self, carry, key, *, buffer: replay.ReplayBuffer, weight: jax.Array):
    """One gradient update of the critics, the actor and the temperature. The buffer is a
    closure constant of the update scan, not part of its carry (no per-update copies)."""
    params, opt_state = carry
    c, net = self.config, self.net
    k_batch, k_critic, k_actor = jax.random.split(key, 3)
    batch = replay.sample(buffer, k_batch, c.batch_size)
    if c.reflex is not None and c.reflex.augment:
      batch = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), batch,
                           losses.mirrored(batch, self.net.reflection))
    alpha = jnp.exp(params["log_alpha"])

    (_, critic_metrics), q_grads = jax.value_and_grad(losses.critic_loss, has_aux=True)(
        params["q"], params, params["target_q"], batch, k_critic, alpha, weight, net=net,
        gamma=c.gamma, reward_scaling=c.reward_scaling, reflex=c.reflex,
        regularize=self.regularize)
    q_updates, q_opt = self.optimizer.update(q_grads, opt_state["q"], params["q"])
    q_params = optax.apply_updates(params["q"], q_updates)

    (_, (actor_metrics, log_prob)), policy_grads = jax.value_and_grad(
        losses.actor_loss, has_aux=True)(params["policy"], dict(params, q=q_params), batch,
                                         k_actor, alpha, weight, net=net, reflex=c.reflex,
                                         regularize=self.regularize)
    policy_updates, policy_opt = self.optimizer.update(policy_grads, opt_state["policy"],
                                                       params["policy"])
    alpha_grad = jax.grad(losses.alpha_loss)(params["log_alpha"], log_prob, self.target_entropy)
    alpha_updates, alpha_opt = self.optimizer.update(alpha_grad, opt_state["alpha"],
                                                     params["log_alpha"])
    target_q = optax.incremental_update(q_params, params["target_q"], c.tau)
    params = dict(params, q=q_params, target_q=target_q,
                  policy=optax.apply_updates(params["policy"], policy_updates),
                  log_alpha=optax.apply_updates(params["log_alpha"], alpha_updates))
    metrics = dict(critic_metrics, **actor_metrics, alpha=alpha,
                   critic_grad_norm=optax.tree.norm(q_grads),
                   actor_grad_norm=optax.tree.norm(policy_grads))
    return (params, dict(q=q_opt, policy=policy_opt, alpha=alpha_opt)), metrics

  def _iteration(self, state: TrainState, _) -> tuple[TrainState, dict]:
    c, g = self.config, self.net.reflection
    key, k_act, k_updates = jax.random.split(state.key, 3)
    action, _ = self.net.act(state.params, state.env_state.obs, k_act)
    obs = state.env_state.obs
    state, episodes = self._env_step(state.replace(key=key), action)
    env_steps = (self.prefill_iterations + state.iteration) * c.steps_per_iteration
    total = (self.prefill_iterations + self.total_iterations) * c.steps_per_iteration
    weight = (regularizer.weight(state.reflex_weight, env_steps, total, c.reflex.schedule)
              if c.reflex is not None else jnp.zeros(()))
    (params, opt_state), m = jax.lax.scan(
        functools.partial(self._update, buffer=state.buffer, weight=weight),
        (state.params, state.opt_state), jax.random.split(k_updates, c.grad_updates_per_step))
    metrics = jax.tree.map(jnp.mean, m)
    metrics.update(episodes)
    if g is not None:  # the measured symmetry, logged for every run
      loc, _ = self.net.distribution(params, obs)
      loc_m, _ = self.net.distribution(params, g.reflect_obs(obs))
      q = self.net.q_values(params["q"], params["normalizer"], obs, action)[0]
      q_m = self.net.q_values(params["q"], params["normalizer"], g.reflect_obs(obs),
                              g.reflect_action(action))[0]
      metrics.update(regularizer.symmetry_errors(g, loc, loc_m, q, q_m))
    return state.replace(params=params, opt_state=opt_state,
                         iteration=state.iteration + 1), metrics

  def train_chunk(self, state: TrainState) -> tuple[TrainState, dict]:
    """`iterations_per_log` iterations; losses averaged, episodes summed."""
    state, m = jax.lax.scan(self._iteration, state, None, length=self.iterations_per_log)
    out = driver.summarize_chunk(m)
    out["buffer_size"] = replay.size(state.buffer)
    return state, out


def make_trainer(env: str | Env, config: SACConfig, reflection: Reflection | None = None, *,
                 regularize: bool | None = None,
                 network_factory: NetworkFactory = make_actor_twin_critic
                 ) -> tuple[Env, Trainer]:
  """(the single simulator, the Trainer) for `config`: prefill iterations, then iterations
  rounded so every logging interval runs the same number."""
  sim = driver.simulator(env, config.equalize_asymmetries)
  train_env = driver.wrap(sim, config, config.num_envs, auto_reset=True)
  prefill = -(-config.learning_starts // config.steps_per_iteration)
  remaining = max(-(-config.num_timesteps // config.steps_per_iteration) - prefill,
                  config.num_logs)
  per_log = -(-remaining // config.num_logs)
  return sim, Trainer(train_env, config, reflection, per_log, per_log * config.num_logs, prefill,
                      regularize=regularize, network_factory=network_factory)


def train(env: str | Env, config: SACConfig = SACConfig(), seed: int | Sequence[int] = 0, *,
          reflex_weight: float | Sequence[float] | None = None,
          reflection: Reflection | None = None,
          progress_fn: Callable[[int, dict], None] | None = None,
          checkpoints=None, progress_bar: bool = True,
          network_factory: NetworkFactory = make_actor_twin_critic):
  """Trains SAC (Reflex-SAC when `config.reflex` is set) → (make_policy, params, metrics).

  Arguments, run grid, checkpoints and outputs as in `reflex_jax.ppo.train`; the replay
  buffer is part of the checkpointed state. metrics add the SAC losses, α, Q statistics and
  `gradient_updates_per_second`. network_factory: as for PPO, with ActorTwinCritic's
  interface (`sample`, `q_values`); default networks.make_actor_twin_critic.
  """
  grid = driver.RunGrid.create(seed, reflex_weight, config.reflex, "SAC")
  config.budget().check("num_timesteps", notify=True)
  sim, trainer = make_trainer(env, config, reflection, regularize=grid.regularize,
                              network_factory=network_factory)

  def init():
    state = driver.run_once(jax.vmap(trainer.init), grid.keys, grid.weights)
    return jax.jit(jax.vmap(trainer.prefill), donate_argnums=0)(state)

  first_steps = trainer.prefill_iterations * config.steps_per_iteration
  policy_factory = driver.make_policy(trainer.net)
  evaluation = driver.FinalEvaluation(sim, config, policy_factory, grid, progress_bar)
  state, metrics, compile_seconds, train_seconds = driver.drive(
      init, trainer.train_chunk, grid, config.num_logs,
      trainer.iterations_per_log * config.steps_per_iteration, first_steps=first_steps,
      progress_fn=progress_fn, checkpoints=checkpoints, progress_bar=progress_bar,
      evaluation=evaluation)
  metrics.update(evaluation(state.params))
  iterations = trainer.total_iterations
  seconds = max(train_seconds, 1e-9)
  metrics.update(
      compile_seconds=compile_seconds, train_seconds=train_seconds,
      env_steps_per_second=iterations * config.steps_per_iteration * len(grid.weights) / seconds,
      gradient_updates_per_second=iterations * config.grad_updates_per_step
      * len(grid.weights) / seconds,
      total_env_steps=first_steps + iterations * config.steps_per_iteration)
  return policy_factory, grid.reshape(state.params), metrics
