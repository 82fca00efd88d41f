"""The training loop: build or restore the sharded state, feed packed batches, switch between
the compiled bp_steps variants on schedule, log, evaluate and checkpoint.

Running the same command again after a crash (even SIGKILL) resumes from the last
checkpoint: parameters, optimizer state, EMA, step and the data iterator's position, so the
loss curve continues as if uninterrupted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from hrm_jax.data.pipeline import make_dataset
from hrm_jax.model import build
from hrm_jax.model.flops import train_flops
from hrm_jax.model.hrm import Buffer
from hrm_jax.train import sharding
from hrm_jax.data.tokenizer import load_tokenizer
from hrm_jax.train.checkpoint import Checkpoints, checkpoint_directory, has_checkpoints
from hrm_jax.train.config import (FREE_ON_RESUME, NOT_FREE_ON_RESUME, ConfigError, TrainConfig,
                                  config_changes, describe_changes, free_on_resume, load_config,
                                  model_config, to_yaml)
from hrm_jax.train.devices import peak_flops
from hrm_jax.train.metrics import MetricWriter
from hrm_jax.train.optimizer import adam_atan2, learning_rate_schedule
from hrm_jax.train.step import TrainState, eval_step, train_step
from runkit import wandb_log
from runkit.errors import NonFiniteError  # shared with Reflex; callers catch loop.NonFiniteError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
  state: TrainState
  graphdef: nnx.GraphDef
  buffers: nnx.State
  history: list[dict]

  def model(self, ema: bool = True):
    """The trained model (EMA weights by default, as the paper evaluates)."""
    params = self.state.ema if ema else self.state.params
    return nnx.merge(self.graphdef, params, self.buffers)


def learning_rates(config: TrainConfig) -> optax.Schedule:
  """The run's learning rate of update k (1 for the first)."""
  opt = config.optimizer
  return learning_rate_schedule(opt.learning_rate, opt.warmup_steps, config.schedule.steps,
                                opt.schedule, opt.lr_min_ratio)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformationExtraArgs:
  opt = config.optimizer
  return adam_atan2(learning_rates(config), opt.b1, opt.b2, opt.weight_decay)


def initial_state(config: TrainConfig):
  """(graphdef, params, buffers, optimizer, init) of a run: init(params) → TrainState. The
  parameters and buffers (z_L_init) are those of `config.init`'s source if it names one, so
  a warm-started run also resumes and evaluates with its source's buffers."""
  graphdef, params, buffers = nnx.split(build(model_config(config), rngs=nnx.Rngs(config.seed)),
                                        nnx.Param, Buffer)
  if config.init.from_run or config.init.from_hf:
    params, buffers = _warm_start(config, params, buffers)
  optimizer = make_optimizer(config)

  def init(p):
    return TrainState(jnp.zeros((), jnp.int32), p, optimizer.init(p), p,
                      jnp.full((), -1, jnp.int32))

  return graphdef, params, buffers, optimizer, init


def _warm_start(config: TrainConfig, params, buffers):
  """The source's (params, buffers), checked to have this run's shapes."""
  init = config.init
  source = init.from_run or init.from_hf
  try:
    if init.from_run:
      model, _, _ = load_trained_step(init.from_run, ema=init.weights == "ema")
    else:
      from hrm_jax.model import hf_io  # pylint: disable=import-outside-toplevel
      _, model = hf_io.load_hf(init.from_hf)
  except (OSError, ValueError, KeyError) as error:
    key = "init.from_run" if init.from_run else "init.from_hf"
    raise ConfigError(f"{key}={source!r}: {error}") from None
  _, got_params, got_buffers = nnx.split(model, nnx.Param, Buffer)
  for name, ours, theirs in (("parameter", params, got_params), ("buffer", buffers, got_buffers)):
    want = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(ours)}
    got = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(theirs)}
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    if differ:
      k, ours_cfg = differ[0], model_config(config)
      fields = "; ".join(f"{f.name} is {getattr(model.config, f.name)} there, "
                         f"{getattr(ours_cfg, f.name)} here"
                         for f in dataclasses.fields(ours_cfg)
                         if getattr(model.config, f.name) != getattr(ours_cfg, f.name))
      raise ConfigError(
          f"init: {source!r} does not fit this run's model ({fields}): {name} {k} is "
          f"{got.get(k)} there, {want.get(k)} here ({len(differ)} differ); set model.preset and "
          "the model fields to the source's sizes")
  cast = lambda ref, value: jnp.asarray(value, ref.dtype)
  return (jax.tree.map(cast, params, got_params), jax.tree.map(cast, buffers, got_buffers))


def load_trained(run_dir: str, *, ema: bool = True, step: int | None = None):
  """(model, TrainConfig) from a training run directory (config.yaml + checkpoints/): the EMA
  weights by default, as the paper evaluates; the latest readable checkpoint unless `step`."""
  model, config, _ = load_trained_step(run_dir, ema=ema, step=step)
  return model, config


def load_trained_step(run_dir: str, *, ema: bool = True, step: int | None = None):
  """`load_trained` plus the step it loaded: (model, TrainConfig, step)."""
  config_path = os.path.join(run_dir, "config.yaml")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{run_dir} is not a training run (no config.yaml)")
  config = load_config([config_path])
  graphdef, params, buffers, _, init = initial_state(config)
  checkpoints = Checkpoints(checkpoint_directory(run_dir, config.log.checkpoint_dir), keep=1,
                            async_save=False)
  if checkpoints.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {checkpoints.directory}")
  # Placed on this process's first device, whatever mesh the run was trained on (e.g. a pod
  # slice, evaluated on one GPU).
  here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=here),
                        jax.eval_shape(init, params))
  try:
    if step is None:
      step, state, _ = checkpoints.restore_latest(target)
    else:
      state, _ = checkpoints.restore(target, step)
  finally:
    checkpoints.close()
  return nnx.merge(graphdef, state.ema if ema else state.params, buffers), config, step


@dataclasses.dataclass
class Program:
  """What the loop (and the preflight check) builds from a config before the first step: the
  mesh, the model as (graphdef, params, buffers), the optimizer, the train state's shardings
  and one jitted step per bp_steps value."""
  config: TrainConfig
  mesh: jax.sharding.Mesh
  graphdef: nnx.GraphDef
  params: nnx.State
  buffers: nnx.State  # replicated on the mesh
  optimizer: optax.GradientTransformation
  init: Callable
  state_shardings: TrainState

  @classmethod
  def build(cls, config: TrainConfig, devices=None) -> "Program":
    try:
      mesh = sharding.make_mesh(config.mesh, devices)
    except ValueError as error:
      raise ConfigError(f"mesh: {error}") from None
    rows_devices = mesh.shape["data"] * mesh.shape["fsdp"]
    if config.data.batch_size % rows_devices:
      raise ConfigError(
          f"data.batch_size={config.data.batch_size} does not divide over the {rows_devices} "
          f"devices that split the batch (mesh data={mesh.shape['data']} × fsdp="
          f"{mesh.shape['fsdp']}); use a multiple of {rows_devices}")
    graphdef, params, buffers, optimizer, init = initial_state(config)
    state_shardings = sharding.parameter_shardings(jax.eval_shape(init, params), mesh)
    return cls(config, mesh, graphdef, params, jax.device_put(buffers, sharding.replicated(mesh)),
               optimizer, init, state_shardings)

  def initial(self) -> TrainState:
    return jax.jit(self.init, out_shardings=self.state_shardings)(
        jax.device_put(self.params, self.state_shardings.params))

  def abstract_state(self) -> TrainState:
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        jax.eval_shape(self.init, self.params), self.state_shardings)

  @functools.cache
  def step(self, bp_steps: int):
    """The jitted step (buffers, state, batch) → (state, metrics); the state is donated."""
    fn = functools.partial(train_step, self.graphdef, self.optimizer, bp_steps=bp_steps,
                           accumulation=self.config.schedule.accumulation,
                           ema_decay=self.config.optimizer.ema_decay)
    return jax.jit(fn, donate_argnums=(1,), out_shardings=(self.state_shardings,
                                                           sharding.replicated(self.mesh)))

  __hash__ = object.__hash__  # functools.cache keys on the instance


def train(config: TrainConfig, *, devices=None, max_steps: int | None = None,
          extra_eval: Callable[[nnx.Module], dict] | None = None,
          allow_config_change: bool = False) -> TrainResult:
  """Trains (or resumes) the run in `config.log.dir`. `max_steps` stops early (tests);
  `extra_eval(model)` runs at each evaluation on the EMA model and its metrics are logged
  (e.g. exact-match accuracy from generated answers).

  Resuming a run whose config.yaml differs from `config` is refused (ConfigError listing
  each key, old → new) before anything is written, except for the keys in
  config.FREE_ON_RESUME: log.* (but log.checkpoint_dir), schedule.steps and mesh.*.
  `allow_config_change` continues with the other changes (learning rate, data, ...); a
  change in the model's parameter shapes is refused always: its checkpoints cannot load.
  A changed data stream (data.* but the SAME_DATA_STREAM keys) starts from its beginning.
  Every check (config, tokenizer, devices, data sources, log.dir) runs before config.yaml
  is written."""
  model_cfg = model_config(config)
  changed = _check_resume(config, model_cfg, allow_config_change)
  _check_vocabulary(config, model_cfg)
  program = Program.build(config, devices)
  mesh, graphdef, buffers = program.mesh, program.graphdef, program.buffers
  iterator = iter(_open_data(config.data, "data"))
  try:
    evaluate = _evaluator(config, graphdef, buffers, mesh)
    _write_config(config)
  except BaseException:
    iterator.close()
    raise

  checkpoints = Checkpoints(checkpoint_directory(config.log.dir, config.log.checkpoint_dir),
                            keep=config.log.keep, async_save=config.log.async_checkpoints)
  resume_step = None
  if checkpoints.latest_step() is None:
    state = program.initial()
  else:
    try:
      resume_step, state, data_state = checkpoints.restore_latest(program.abstract_state(),
                                                                  set_aside=True)
    except BaseException:
      iterator.close()
      checkpoints.close()
      raise
    new_stream = sorted(k for k in changed if k.startswith("data.") and k not in SAME_DATA_STREAM)
    if new_stream:  # a position in the old stream means nothing in another one
      log.warning("%s changed: the new data stream starts from its beginning", new_stream)
    else:
      iterator.set_state(data_state)
    log.info("resumed from step %d in %s", resume_step, checkpoints.directory)
  first = jax.process_index() == 0
  writer = MetricWriter(config.log.dir, tensorboard=config.log.tensorboard, enabled=first,
                        resume_step=resume_step, wandb_run=wandb_log.start(
                            config.log.dir, os.path.basename(os.path.normpath(config.log.dir)),
                            dataclasses.asdict(config), project=config.log.wandb_project,
                            mode=config.log.wandb_mode) if first and config.log.wandb else None)

  seq_len, rows = config.data.seq_len, config.data.batch_size
  peak = config.log.peak_flops or peak_flops(model_cfg.compute_dtype)
  total = config.schedule.steps if max_steps is None else min(max_steps, config.schedule.steps)
  start = int(state.step)
  history, pending, t0 = [], [], time.perf_counter()
  progress = _progress(config, start, total)
  try:
    for step in range(start, total):
      bp = model_cfg.window(config.schedule.bp_steps(step + 1))
      batch = sharding.put_batch(next(iterator), mesh)
      state, metrics = program.step(bp)(buffers, state, batch)
      pending.append(metrics)
      done = step + 1
      if done % config.log.every == 0 or done == total:
        pending = jax.device_get(pending)  # waits for the steps: time them after this
        line = _summarize(pending, time.perf_counter() - t0, rows * seq_len, bp,
                          train_flops(model_cfg, seq_len, bp), peak, len(mesh.devices.flat))
        _check_finite(state)
        if config.log.eval_every and (done % config.log.eval_every == 0 or done == total):
          line.update(evaluate(state))
          if extra_eval is not None:
            line.update(extra_eval(nnx.merge(graphdef, state.ema, buffers)))
        line["learning_rate"] = float(learning_rates(config)(done))
        writer.write(done, line)
        history.append({"step": done, **line})
        progress.update(done, line)
        pending, t0 = [], time.perf_counter()
      if done % config.log.checkpoint_every == 0 or done == total:
        _check_finite(state)
        checkpoints.save(done, state, iterator.get_state())
  finally:
    iterator.close()  # stops prefetch workers and frees their shared memory
    checkpoints.close()  # waits for a save in flight
    writer.close()
    progress.close()
  return TrainResult(state, graphdef, buffers, history)


# data keys that leave the stream of batches as it was: its saved position stays valid.
# (Not data.worker_count: Grain's iterator state differs with and without worker processes.)
SAME_DATA_STREAM = ("data.on_error",)


def _check_resume(config: TrainConfig, model_cfg, allow_change: bool) -> dict:
  """Refuses to continue a run with checkpoints under another config (see `train`); the
  changes allowed by `allow_change` ({key: (old, new)}) when it continues."""
  path = os.path.join(config.log.dir, "config.yaml")
  if not os.path.exists(path):
    return {}
  try:
    old = load_config([path])
  except ConfigError as error:
    raise ConfigError(f"{path} (the run being resumed) does not load: {error}") from None
  if not has_checkpoints(checkpoint_directory(config.log.dir, old.log.checkpoint_dir)):
    return {}  # nothing to continue: a fresh start under the new config
  changes = config_changes(old, config)
  restricted = {k: v for k, v in changes.items() if not free_on_resume(k)}
  if not restricted:
    if changes:
      log.info("resuming with changed %s", describe_changes(changes))
    return {}
  model_keys = {k: v for k, v in restricted.items() if k.startswith("model.")}
  if model_keys and _parameter_shapes(model_config(old)) != _parameter_shapes(model_cfg):
    raise ConfigError(
        f"{config.log.dir} holds checkpoints of another model shape "
        f"({describe_changes(model_keys)}): they cannot be loaded into this one. Use a new "
        "log.dir for the new model (or restore the old model keys to continue the run)")
  if not allow_change:
    free = ", ".join(k + "*" if k.endswith(".") else k for k in FREE_ON_RESUME)
    raise ConfigError(
        f"the config differs from the run's {path}: {describe_changes(restricted)}. Pass "
        "--allow-config-change to continue the run with the new values, or use a new log.dir; "
        f"keys that may always change: {free} (not {', '.join(NOT_FREE_ON_RESUME)})")
  log.warning("continuing %s with a changed config: %s", config.log.dir,
              describe_changes(restricted))
  return restricted


def _parameter_shapes(model_cfg) -> dict:
  abstract = nnx.eval_shape(lambda: build(model_cfg, rngs=nnx.Rngs(0)))
  params = nnx.state(abstract, nnx.Param)
  return {jax.tree_util.keystr(k): (v.shape, str(v.dtype))
          for k, v in jax.tree_util.tree_leaves_with_path(params)}


def _check_vocabulary(config: TrainConfig, model_cfg) -> None:
  """A token id past the embedding table reads garbage (NaN), which would look like a
  learning-rate problem many steps later."""
  try:
    tokenizer = load_tokenizer(config.data.tokenizer)
  except (OSError, ValueError) as error:
    raise ConfigError(f"data.tokenizer: {error}") from None
  if tokenizer.num_tokens > model_cfg.vocab_size:
    raise ConfigError(
        f"data.tokenizer {config.data.tokenizer!r} has {tokenizer.num_tokens:,} tokens but the "
        f"model's vocab_size is {model_cfg.vocab_size:,}: set model.vocab_size="
        f"{tokenizer.vocab_size} (or more), or use a smaller tokenizer")


def _open_data(data_config, key: str):
  """make_dataset with a bad source or tokenizer reported as a ConfigError naming `key`."""
  try:
    return make_dataset(data_config)
  except (OSError, ValueError) as error:
    raise ConfigError(f"{key}: {error}") from None


def _write_config(config: TrainConfig) -> None:
  try:
    os.makedirs(config.log.dir, exist_ok=True)
    with open(os.path.join(config.log.dir, "config.yaml"), "w", encoding="utf-8") as f:
      f.write(to_yaml(config))
  except OSError as error:
    raise ConfigError(f"log.dir {config.log.dir!r} is not writable: "
                      f"{error.strerror or error}") from None


def _summarize(fetched, seconds, tokens_per_step, bp, flops_per_token, peak, devices) -> dict:
  """One metric line from the host copies of the steps' metrics since the last line."""
  counts = np.array([m["labelled_tokens"] for m in fetched], np.float64)
  losses = np.array([m["loss"] for m in fetched], np.float64)
  tokens_per_s = tokens_per_step * len(fetched) / seconds
  line = {
      "loss": float(np.sum(losses * counts) / max(np.sum(counts), 1.0)),
      "grad_norm": float(fetched[-1]["grad_norm"]),
      "bp_steps": bp,
      "tokens_per_s": tokens_per_s,
      "packing_efficiency": float(sum(m["tokens"] for m in fetched)
                                  / (tokens_per_step * len(fetched))),
      "model_tflops_per_s": tokens_per_s * flops_per_token / 1e12,
  }
  if peak:
    line["mfu"] = tokens_per_s * flops_per_token / (peak * devices)
  return line


def _check_finite(state: TrainState) -> None:
  bad = int(state.nonfinite_step)
  if bad >= 0:
    raise NonFiniteError(
        f"non-finite loss or gradient at step {bad}; its update was skipped and training "
        "stopped. The last good checkpoint is kept; lower the learning rate or check the data.")


def _evaluator(config: TrainConfig, graphdef, buffers, mesh):
  """Loss on a fixed set of held-out batches, for the raw and the EMA parameters."""
  if not config.log.eval_every:
    return lambda state: {}
  eval_data = dataclasses.replace(config.data, sources=config.eval_sources, worker_count=0)
  it = iter(_open_data(eval_data, "eval_sources"))
  batches = [sharding.put_batch(next(it), mesh) for _ in range(config.log.eval_batches)]
  sums = jax.jit(functools.partial(eval_step, graphdef))

  def evaluate(state):
    out = {}
    for name, params in (("eval/loss", state.params), ("eval/loss_ema", state.ema)):
      total = count = 0.0
      for batch in batches:
        s, c = jax.device_get(sums(buffers, params, batch))
        total, count = total + float(s), count + float(c)
      out[name] = total / max(count, 1.0)
    return out
  return evaluate


class _progress:
  """tqdm bar with the latest loss, on the first host only."""

  def __init__(self, config: TrainConfig, start: int, total: int):
    self._bar = None
    if config.log.progress and jax.process_index() == 0:
      from tqdm import tqdm
      self._bar = tqdm(total=total, initial=start, desc="hrm", unit="step", dynamic_ncols=True)
    self._last = start

  def update(self, step: int, line: dict) -> None:
    if self._bar is not None:
      self._bar.update(step - self._last)
      self._bar.set_postfix(loss=f"{line['loss']:.3f}", bp=line["bp_steps"],
                            tok_s=f"{line['tokens_per_s']:.0f}")
    else:
      log.info("step %d %s", step, json.dumps(line))
    self._last = step

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
