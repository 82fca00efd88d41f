"""The driver every algorithm shares around its update: the environment and its reflection
(resolved once per training), the trainer's common setup, the device mesh over environments,
the grid of runs (Reflex weights × seeds, vmapped into one program), the host loop (one
compiled call per logging interval) and the final evaluation. What an algorithm must provide
to be driven is written down in `reflex_jax.algorithms`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reflex_jax import envs, regularizer
from reflex_jax.envs import Env
from reflex_jax.envs.base import all_finite
from reflex_jax.evaluate import evaluate
from reflex_jax.networks import NetworkFactory
from reflex_jax.regularizer import ReflexConfig
from reflex_jax.symmetry import Reflection, registry
from runkit.errors import NonFiniteError  # shared with HRM; callers catch driver.NonFiniteError


def simulator(env, equalize_asymmetries: bool, privileged_critic: bool = False) -> Env:
  """The single environment to train on: built from an id, or the user's own (an Env, or a
  brax or Playground environment object, which is wrapped). privileged_critic: the task's
  option (Playground locomotion); other tasks refuse it by name."""
  if isinstance(env, str):
    options = {"privileged_critic": True} if privileged_critic else {}
    return envs.make_simulator(env, equalize_asymmetries=equalize_asymmetries, **options)
  if privileged_critic:
    raise ValueError("privileged_critic needs an environment id (it chooses the observation "
                     "the environment is built with)")
  return envs.from_native(env)


def wrap(sim: Env, config, num_envs: int, auto_reset: bool) -> Env:
  """Time limit, action repeat, auto-reset, batching (and the optional non-finite mask)
  from an algorithm's config."""
  return envs.wrap(sim, num_envs=num_envs, episode_length=config.episode_length,
                   action_repeat=config.action_repeat, auto_reset=auto_reset,
                   mask_nonfinite=config.mask_nonfinite)


def resolve_reflection(env: Env, reflex: ReflexConfig | None = None,
                       reflection: Reflection | None = None) -> Reflection | None:
  """A training's reflection, resolved once (by `TrainerBase`): the one passed wins, else the
  task's registered one, else None (no symmetry metrics). Reflex (`reflex` set) requires one:
  NoReflectionError saying why the task has none. Checked against the env's sizes."""
  if reflection is None:
    reflection = _registered_reflection(env, required=reflex is not None)
  if reflection is not None:
    reflection.check_sizes(env.observation_size, env.action_size, name=env.env_id)
  return reflection


def _registered_reflection(env: Env, required: bool) -> Reflection | None:
  try:
    spec = registry.get(env.env_id)
  except registry.UnknownEnvironmentError as e:
    if not required:
      return None
    raise registry.NoReflectionError(
        f"{env.env_id} has no registered reflection; pass reflection= to use Reflex") from e
  if required:
    spec.require()  # NoReflectionError with the registry's reason
  return spec.reflection(env.mj_model, env.observation_size) if spec.has_reflection else None


def env_sharding(num_envs: int, num_devices: int | None) -> NamedSharding | None:
  """Environments split over devices (None on one device)."""
  devices = jax.devices()
  n = num_devices or max(d for d in range(1, len(devices) + 1)
                         if num_envs % d == 0 and len(devices) % d == 0)
  if n > len(devices) or num_envs % n:
    raise ValueError(f"num_devices={n}: need at most {len(devices)} devices and num_envs "
                     f"({num_envs}) divisible by it")
  if n == 1:
    return None
  return NamedSharding(Mesh(np.asarray(devices[:n]), ("envs",)), PartitionSpec("envs"))


def constrain(tree, sharding: NamedSharding | None):
  if sharding is None:
    return tree
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)


class TrainerBase:
  """What every algorithm's Trainer sets up alike: the env and config, the network (from
  `network_factory`, given the reflection resolved here; the network is where the
  reflection is held), whether the program computes the Reflex terms, and the env sharding.

  `regularize`: regularizer.regularizes of the runs' weights (`RunGrid.regularize`); default:
  of config.reflex.weight."""

  def __init__(self, env: Env, config, reflection: Reflection | None,
               network_factory: NetworkFactory, regularize: bool | None = None):
    self.env, self.config = env, config
    reflection = resolve_reflection(env, config.reflex, reflection)
    privileged = ({"policy_observation_size": env.policy_observation_size}
                  if env.policy_observation_size != env.observation_size else {})
    self.net = network_factory(env.observation_size, env.action_size, config, reflection,
                               **privileged)
    if getattr(self.net, "reflection", None) is not reflection:
      raise TypeError("network_factory must keep the reflection it is given as the network's "
                      "`reflection` (the Reflex terms and symmetry metrics read it there)")
    self.regularize = (regularizer.regularizes(config.reflex, getattr(config.reflex, "weight", 0))
                       if regularize is None else regularize)
    self._env_sharding = env_sharding(config.num_envs, config.num_devices)

  def shard_envs(self, tree):
    """`tree` (env states or a batch over envs) constrained to the env sharding."""
    return constrain(tree, self._env_sharding)


def summarize_chunk(m: dict) -> dict:
  """Per-step metrics of one logging interval → losses averaged, episodes summed, and the
  mean completed-episode return/length (NaN until an episode has finished: no fake zeros)."""
  m = dict(m)
  episodes = m.pop("episodes").sum()
  masked = m.pop("masked_steps").sum() if "masked_steps" in m else None
  return_sum, length_sum = m.pop("return_sum").sum(), m.pop("length_sum").sum()
  out = jax.tree.map(jnp.mean, m)
  out["episodes"] = episodes
  out["episode_return"] = jnp.where(episodes > 0, return_sum / episodes, jnp.nan)
  out["episode_length"] = jnp.where(episodes > 0, length_sum / episodes, jnp.nan)
  if masked is not None:
    out["masked_steps"] = masked
  return out


# Programs that run once per training (`init`): on CPU most of their compile time is LLVM
# optimizing code that then runs for well under a second, and at -O0 they compile in about
# half the time (bench/first_run.py). Not for the training chunk or the evaluation: their
# run time at -O0 is several times longer.
RUN_ONCE_COMPILER_OPTIONS = {"cpu": {"xla_backend_optimization_level": 0}}


def run_once(fn: Callable, *args):
  """jax.jit(fn)(*args), compiled for a single call (RUN_ONCE_COMPILER_OPTIONS)."""
  options = RUN_ONCE_COMPILER_OPTIONS.get(jax.default_backend())
  return jax.jit(fn).lower(*args).compile(compiler_options=options)(*args)


def make_policy(net) -> Callable:
  """`make_policy(params, deterministic=False, extras=False)` → policy(obs, key) → action
  (one run's params), for any network with `act(params, obs, key | None)`. extras=True gives
  brax.training's form, (action, {}), so brax evaluation code (`act, _ = policy(obs, key)`)
  runs unchanged."""
  def policy_factory(params, deterministic: bool = False, extras: bool = False):
    def policy(obs, key=None):
      action = net.act(params, obs, None if deterministic else key)[0]
      return (action, {}) if extras else action
    return policy
  return policy_factory


@dataclasses.dataclass(frozen=True)
class RunGrid:
  """Runs = Reflex weights × seeds, flattened to one vmapped axis; `shape` is how results
  are reshaped for the caller (an axis for each argument given as a sequence)."""
  keys: jax.Array
  seeds: np.ndarray
  weights: np.ndarray
  shape: tuple[int, ...]
  regularize: bool  # whether the program computes the Reflex terms (regularizer.regularizes)

  @classmethod
  def create(cls, seed, reflex_weight, reflex, algorithm: str) -> RunGrid:
    """`reflex_weight` None: `reflex.weight` (0 for a plain run, `reflex` None)."""
    reflex_enabled = reflex is not None
    if reflex_weight is not None and not reflex_enabled:
      raise ValueError(f"reflex_weight given but config.reflex is None (plain {algorithm}); "
                       f"set config.reflex = ReflexConfig() to train Reflex-{algorithm}")
    seeds = np.atleast_1d(np.asarray(seed, dtype=np.int64))
    weights = np.atleast_1d(np.asarray(
        (reflex.weight if reflex_enabled else 0.0) if reflex_weight is None else reflex_weight,
        dtype=np.float32))
    if not reflex_enabled:
      weights = np.zeros(1, np.float32)
    shape = (() if np.ndim(reflex_weight) == 0 else (weights.size,)) + \
        (() if np.ndim(seed) == 0 else (seeds.size,))
    run_seeds = np.tile(seeds, weights.size)
    return cls(jax.vmap(jax.random.key)(run_seeds), run_seeds, np.repeat(weights, seeds.size),
               shape, regularizer.regularizes(reflex, weights))

  def describe(self, run: int) -> str:
    """Names run `run` of the flattened grid: its seed and Reflex weight."""
    return f"run {run} (seed {self.seeds[run]}, reflex weight {self.weights[run]:g})"

  def reshape(self, tree):
    return jax.tree.map(lambda x: np.reshape(x, self.shape + np.shape(x)[1:]), tree)


BUDGET_TOLERANCE = 0.1  # a run may take up to 10 % more env steps than asked for (with a note)


@dataclasses.dataclass(frozen=True)
class Budget:
  """The env steps a run takes when asked for `requested`: `first` (SAC's prefill), then the
  least whole multiple (at least one) of `step` that reaches the request. The trainers round
  this way so that every logging interval runs the same compiled chunk."""
  requested: int
  first: int                # env steps before the first logging interval (SAC's prefill)
  step: int                 # the granularity: one iteration in every logging interval
  unit: str                 # how `step` is made, e.g. "8 envs × unroll 32 × 3 logs"
  knobs: tuple[str, ...]    # the config keys that make `step` smaller

  @property
  def rounded(self) -> int:
    return self.first + max(1, -(-(self.requested - self.first) // self.step)) * self.step

  def check(self, name: str, prefix: str = "", *, notify: bool = False) -> int:
    """`rounded`; ValueError naming `name` (the key the user set) when that is more than
    BUDGET_TOLERANCE above the request. `notify`: print a one-line note to stderr when the
    budget is rounded at all. `prefix` goes before the knobs' names (e.g. "ppo.")."""
    rounded, requested = self.rounded, self.requested
    if rounded == requested:
      return rounded
    over = rounded / requested - 1
    prefill = f"the {self.first:,}-step prefill + " if self.first else ""
    fewer = " / ".join(prefix + k for k in self.knobs)
    if over > BUDGET_TOLERANCE:
      smallest = self.first + self.step
      if requested < smallest:
        raise ValueError(f"{name}={requested} is less than {prefill}one iteration of {self.unit} "
                         f"= {smallest:,}; ask for ≥ {smallest} or fewer {fewer}")
      raise ValueError(f"{name}={requested} would train {rounded:,} env steps (+{over:.0%}): a run "
                       f"takes {prefill}whole iterations of {self.unit} = {self.step:,}; ask for "
                       f"{rounded - self.step} or {rounded}, or fewer {fewer}")
    if notify:
      print(f"note: training {rounded:,} env steps, {over:.1%} more than the {requested:,} "
            f"asked for: {prefill}whole iterations of {self.unit} = {self.step:,}",
            file=sys.stderr, flush=True)
    return rounded


def drive(init_fn: Callable, chunk_fn: Callable, grid: RunGrid, num_logs: int, steps_per_log: int,
          first_steps: int = 0, progress_fn: Callable[[int, dict], None] | None = None,
          checkpoints=None, progress_bar: bool = False,
          evaluation: FinalEvaluation | None = None):
  """Runs `chunk_fn` (one logging interval of one run, vmapped over runs) `num_logs` times,
  from `init_fn()` (the vmapped initial state) or from the latest readable of `checkpoints`
  (a newer unreadable one is moved aside to `unreadable.<logs done>`, and trained again).

  After every interval the parameters, the environment states and the losses are checked:
  a NaN/inf raises `NonFiniteError` naming the step and the run, before anything is saved,
  so the last checkpoint stays good. `checkpoints` (a `run.checkpoint.RunCheckpoints`)
  saves the state and the metric history; a rerun continues exactly where it stopped.
  `evaluation` compiles beside the training program (both before the first interval).
  Returns (state, history {name: [num_logs, *grid.shape]}, compile_seconds, train_seconds).
  """
  def guarded(state):
    state, m = chunk_fn(state)
    m["params_finite"] = all_finite(state.params)
    m["env_state_finite"] = all_finite(state.env_state)
    return state, m

  history: dict[str, list] = {}
  done = 0
  with Ticking(tqdm.tqdm(desc="compiling the training program", bar_format="{desc}: {elapsed}",
                         disable=not progress_bar)):
    if checkpoints is not None and checkpoints.latest() is not None:
      state, history, done = checkpoints.restore(jax.eval_shape(init_fn), set_aside=True)
      print(f"resumed from {checkpoints.directory} after {done}/{num_logs} logging intervals "
            f"({first_steps + done * steps_per_log:,} env steps)", file=sys.stderr, flush=True)
    else:
      state = init_fn()
    t0 = time.perf_counter()
    if evaluation is not None:
      evaluation.compile_in_background(state.params)
    chunk = jax.jit(jax.vmap(guarded), donate_argnums=0).lower(state).compile()
    if evaluation is not None:  # not during training: its timing stays the training's own
      evaluation.wait_compiled()
    compile_seconds = time.perf_counter() - t0
  train_seconds = 0.0
  bar = tqdm.tqdm(total=first_steps + num_logs * steps_per_log,
                  initial=first_steps + done * steps_per_log, unit="steps", unit_scale=True,
                  dynamic_ncols=True, disable=not progress_bar, desc="training")
  try:
    with Ticking(bar):  # refreshes, then closes, the bar
      for i in range(done, num_logs):
        t0 = time.perf_counter()
        state, m = chunk(state)
        m = jax.device_get(m)
        train_seconds += time.perf_counter() - t0
        env_steps = first_steps + (i + 1) * steps_per_log
        _check_finite(m, grid, env_steps - steps_per_log, env_steps, checkpoints)
        m = {k: np.reshape(v, grid.shape) for k, v in m.items() if not k.endswith("_finite")}
        m["env_steps"] = np.asarray(env_steps)
        for k, v in m.items():
          history.setdefault(k, []).append(v)
        if checkpoints is not None:
          checkpoints.save(i + 1, state, history, force=i + 1 == num_logs)
        bar.set_postfix({"return": f"{np.nanmean(m['episode_return']):.1f}"}
                        if np.isfinite(m["episode_return"]).any() else {}, refresh=False)
        bar.update(steps_per_log)
        if progress_fn is not None:
          progress_fn(env_steps, m)
  finally:
    if checkpoints is not None:
      checkpoints.close()  # waits for a save in flight
  return state, {k: np.stack(v) for k, v in history.items()}, compile_seconds, train_seconds


class Ticking:
  """Refreshes a tqdm bar once a second from a thread while a long compiled call runs (the
  compilation, a logging interval of minutes), so its elapsed time shows the run is alive;
  closes it on exit. A disabled bar starts no thread."""

  def __init__(self, bar):
    self.bar, self.stop, self.thread = bar, threading.Event(), None

  def __enter__(self):
    if not self.bar.disable:
      self.thread = threading.Thread(target=self._tick, daemon=True)
      self.thread.start()
    return self.bar

  def _tick(self):
    while not self.stop.wait(1.0):
      self.bar.refresh()

  def __exit__(self, *exc):
    self.stop.set()
    if self.thread is not None:
      self.thread.join()
    self.bar.close()


def _check_finite(m: dict, grid: RunGrid, start: int, end: int, checkpoints) -> None:
  bad = {"parameters": ~m["params_finite"], "simulator state": ~m["env_state_finite"]}
  for k, v in m.items():
    if "loss" in k:
      bad[k] = ~np.isfinite(v)
  failed = {what: np.flatnonzero(np.reshape(b, -1)) for what, b in bad.items()}
  failed = {what: runs for what, runs in failed.items() if runs.size}
  if not failed:
    return
  what = ", ".join(failed)
  run_ids = sorted(set(np.concatenate(list(failed.values())).tolist()))
  names = ", ".join(grid.describe(r) for r in run_ids)
  kept = (f"; the last good checkpoint ({checkpoints.latest()} logging intervals) is kept in "
          f"{checkpoints.directory}" if checkpoints is not None and checkpoints.latest()
          else "")
  raise NonFiniteError(
      f"non-finite {what} between env steps {start:,} and {end:,} in {names}; "
      f"training stopped{kept}. Simulator NaNs can be masked with mask_nonfinite=True.")


class FinalEvaluation:
  """Deterministic and stochastic evaluation of every run in one program: {eval/return,
  eval/length, eval_stochastic/...} shaped like the grid. `drive` starts compiling it
  (`compile_in_background`) beside the training program's own compile, so a training waits
  for the longer of the two rather than their sum; `__call__` runs it on the final params."""

  def __init__(self, sim: Env, config, policy_factory: Callable, grid: RunGrid,
               progress_bar: bool = False):
    eval_env = wrap(sim, config, config.num_eval_envs, auto_reset=False)
    episode_steps = eval_env.env.episode_length  # EpisodeWrapper under the batch

    def run_eval(run_params, key):
      mode, sample = policy_factory(run_params, True), policy_factory(run_params, False)

      def one(deterministic):
        # The mode is a traced flag, vmapped: both evaluations share one trace and compile of
        # the environment step (the largest part of the program) instead of two.
        policy = lambda obs, k: jnp.where(deterministic, mode(obs), sample(obs, k))
        return evaluate(eval_env, policy, key, num_steps=episode_steps, deterministic=False)
      both = jax.vmap(one)(jnp.array([True, False]))
      return {tag: jax.tree.map(lambda x, i=i: x[i], both)
              for i, tag in enumerate(("eval", "eval_stochastic"))}

    self._program = jax.jit(jax.vmap(run_eval))
    self._keys = jax.vmap(jax.random.fold_in, (0, None))(grid.keys, 1)
    self._grid, self._progress_bar = grid, progress_bar
    self._compiled: concurrent.futures.Future | None = None

  def compile_in_background(self, params) -> None:
    """Starts compiling for params shaped (and sharded) like `params` in a thread; XLA
    compiles without holding Python's GIL."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), params)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="compile-evaluation")
    self._compiled = pool.submit(lambda: self._program.lower(abstract, self._keys).compile())
    pool.shutdown(wait=False)

  def wait_compiled(self) -> None:
    """Blocks until a background compile has finished (re-raising its error)."""
    if self._compiled is not None:
      self._compiled.result()

  def __call__(self, params) -> dict:
    with Ticking(tqdm.tqdm(desc="final evaluation (one episode per env)",
                           bar_format="{desc}: {elapsed}", disable=not self._progress_bar)):
      program = (self._compiled.result() if self._compiled is not None
                 else self._program.lower(params, self._keys).compile())
      result = jax.device_get(program(params, self._keys))
    return {f"{tag}/{k.removeprefix('eval_')}": np.reshape(v, self._grid.shape)
            for tag, values in result.items() for k, v in values.items()}


def final_evaluation(sim: Env, config, policy_factory: Callable, params, grid: RunGrid,
                     progress_bar: bool = False) -> dict:
  """FinalEvaluation compiled and run now, in the foreground."""
  return FinalEvaluation(sim, config, policy_factory, grid, progress_bar)(params)
