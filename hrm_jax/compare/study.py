"""Running the comparison: each cell (task, objective, architecture) trains `seeds` models
vmapped in one program, in compiled blocks of steps, evaluating held-out loss and exact match
every `blocks_per_eval` blocks against the training FLOPs spent so far.

Budgets (`match`): under "flops" the HRM's `schedule.steps` set the budget, the training
FLOPs of its run (hrm_jax.model.flops.train_flops: forward through every call, backward
through the calls of the gradient window); each other architecture takes as many steps as
that buffers, rounded to whole blocks. Under "params" every architecture takes the HRM's
steps. All read the same rows in the same per-seed order.

A cell is resumable: after every evaluation its state and curves are checkpointed (Orbax,
`cells/<task>/<objective>/<arch>.ckpt`), and a finished cell is its `<arch>.json`, which a
rerun skips.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from hrm_jax.compare import data as data_lib
from hrm_jax.compare.config import (OBJECTIVES, CompareConfig, arch_config, batch_size,
                                    bp_steps, cells, fingerprint)
from hrm_jax.compare.train import evaluate, init_cell, row_orders, train_block
from hrm_jax.model.flops import parameter_count, train_flops
from hrm_jax.train.optimizer import adam_atan2, learning_rate_schedule
from runkit.checkpoints import Checkpoints
from runkit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Plan:
  """One architecture's run on one task: `blocks` compiled blocks of `block_steps` steps,
  the gradient window and training FLOPs (per seed) of each block."""
  block_steps: int
  windows: tuple[int, ...]
  block_flops: tuple[float, ...]

  @property
  def steps(self) -> int:
    return self.block_steps * len(self.windows)


def _plan(config: CompareConfig, arch: str, objective: str, task: str, steps: int) -> Plan:
  blocks = config.evals * config.blocks_per_eval
  block = max(1, round(steps / blocks))
  seq_len = config.tasks[task].seq_len
  model = arch_config(config, arch, objective, seq_len)
  tokens = batch_size(config, task) * seq_len
  # A block's window is that of its first update: a block is one compiled program.
  windows = tuple(bp_steps(config, arch, b * block + 1) for b in range(blocks))
  flops = tuple(block * tokens * train_flops(model, seq_len, w) for w in windows)
  return Plan(block, windows, flops)


def plan(config: CompareConfig, arch: str, objective: str, task: str) -> Plan:
  """The run of `arch` on `task` under the config's budget."""
  hrm = _plan(config, "hrm", objective, task, config.schedule.steps)
  if config.match == "params" or arch == "hrm":
    return _plan(config, arch, objective, task, hrm.steps)
  one_step = _plan(config, arch, objective, task, config.evals * config.blocks_per_eval)
  per_step = sum(one_step.block_flops) / one_step.steps
  return _plan(config, arch, objective, task, round(sum(hrm.block_flops) / per_step))


@functools.lru_cache(maxsize=None)
def _optimizer(*args):
  """One optimizer object per setting: the compiled blocks take it as a static argument, so
  cells of one architecture and row length (several tasks) share their programs."""
  lr, warmup, steps, schedule, min_ratio, b1, b2, weight_decay = args
  return adam_atan2(learning_rate_schedule(lr, warmup, steps, schedule, min_ratio), b1, b2,
                    weight_decay)


def cell_path(config: CompareConfig, task: str, objective: str, arch: str) -> str:
  return os.path.join(config.out_dir, "cells", task, objective, arch)


def _gather(rows: dict, labels: str, order_SnB: np.ndarray) -> dict:
  """[n, S, B, T] per field: the rows each seed reads in this block."""
  order_nSB = np.swapaxes(order_SnB, 0, 1)
  fields = {k: rows[k] for k in ("tokens", "segment_ids", "positions", "prefix_lengths")}
  fields["labels"] = rows[labels]
  return {k: jnp.asarray(v[order_nSB]) for k, v in fields.items()}


def run_cell(config: CompareConfig, task: str, objective: str, arch: str, data: dict,
             bar: tqdm.tqdm | None = None) -> dict:
  """Trains one cell (resuming its checkpoint if any) and writes its results JSON."""
  spec = config.tasks[task]
  model = arch_config(config, arch, objective, spec.seq_len)
  p = plan(config, arch, objective, task)
  rows_per_step = batch_size(config, task)
  opt = config.optimizer
  optimizer = _optimizer(opt.learning_rate, opt.warmup_steps, p.steps, opt.schedule,
                         opt.lr_min_ratio, opt.b1, opt.b2, opt.weight_decay)
  seeds = list(range(config.seeds))
  cell = init_cell(model, seeds, optimizer)
  state, curves, done = cell.state_S, _empty_curves(), 0
  base = cell_path(config, task, objective, arch)
  checkpoints = Checkpoints(os.path.abspath(base + ".ckpt"), json_item="curves", keep=1,
                            async_save=False)
  stamp = fingerprint(config, task)
  if checkpoints.latest_step() is not None:
    done, state, saved = checkpoints.restore_latest(state, set_aside=True)
    if saved.get("fingerprint") != stamp:
      checkpoints.close()
      raise ConfigError(f"{base}.ckpt holds a cell trained with other settings; use another "
                        "out_dir, or delete it to start this cell again")
    curves = saved["curves"]
  if bar is not None:
    bar.update(done)
  test = {k: jnp.asarray(v) for k, v in data["test"].items()}
  orders = row_orders(len(data["train"]["tokens"]), p.steps, rows_per_step, seeds)
  labels = OBJECTIVES[objective][1]
  start = time.perf_counter()
  for block in range(done, len(p.windows)):
    batches = _gather(data["train"], labels,
                      orders[:, block * p.block_steps:(block + 1) * p.block_steps])
    state, loss_Sn = train_block(cell.graphdef, optimizer, cell.buffers_S, state, batches,
                                 bp_steps=p.windows[block], ema_decay=opt.ema_decay)
    if (block + 1) % config.blocks_per_eval == 0:
      measured = evaluate(cell.graphdef, cell.buffers_S, state.ema, test,
                          batch=config.eval_batch)
      curves["at_step"].append((block + 1) * p.block_steps)
      curves["flops"].append(float(sum(p.block_flops[:block + 1])))
      curves["train_loss"].append(np.asarray(loss_Sn).mean(1).tolist())
      for key, value in measured.items():
        curves[key].append(np.asarray(value).tolist())
      checkpoints.save(block + 1, state, {"fingerprint": stamp, "curves": curves})
      if bar is not None:
        bar.set_postfix_str(f"exact match {np.mean(curves['exact_match'][-1]):.2f}")
    if bar is not None:
      bar.update(1)
  nonfinite = np.asarray(state.nonfinite_step)
  checkpoints.close()
  result = dict(
      task=task, objective=objective, architecture=arch, seeds=seeds, fingerprint=stamp,
      match=config.match, steps=p.steps, block_steps=p.block_steps, windows=list(p.windows),
      seq_len=spec.seq_len, batch_size=rows_per_step,
      parameters=parameter_count(model), total_flops=float(sum(p.block_flops)),
      nonfinite_step=nonfinite.tolist(), wall_s=time.perf_counter() - start,
      model=dataclasses.asdict(model), **curves)
  os.makedirs(os.path.dirname(base), exist_ok=True)
  with open(base + ".json.tmp", "w", encoding="utf-8") as f:
    json.dump(result, f)
  os.replace(base + ".json.tmp", base + ".json")
  shutil.rmtree(base + ".ckpt", ignore_errors=True)
  return result


def _empty_curves() -> dict:
  return {k: [] for k in ("at_step", "flops", "train_loss", "loss", "exact_match",
                          "token_accuracy")}


def task_data(config: CompareConfig, task: str) -> dict:
  """The task's train rows and test split (cached in out_dir/data); a task whose examples do
  not fit its rows is a ConfigError naming it."""
  spec = config.tasks[task]
  try:
    return data_lib.load(os.path.join(config.out_dir, "data"), task, task=spec.task,
                         options=dict(spec.options), seq_len=spec.seq_len,
                         train_size=spec.train_size, test_size=spec.test_size)
  except ValueError as error:
    raise ConfigError(f"tasks.{task}: {error}") from None


def run_study(config: CompareConfig, shard: tuple[int, int] = (0, 1),
              progress: bool = True) -> list[dict]:
  """Every unfinished cell of this shard (cells i, i + n, …), in order; returns the results
  of the shard's cells."""
  index, count = shard
  mine = cells(config)[index::count]
  finished = {}
  for cell in mine:
    path = cell_path(config, *cell) + ".json"
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        finished[cell] = json.load(f)
      if finished[cell].get("fingerprint") != fingerprint(config, cell[0]):
        raise ConfigError(f"{path} was trained with other settings than this config's for "
                          f"task {cell[0]!r}; use another out_dir, or delete the cell to "
                          "train it again")
  todo = [c for c in mine if c not in finished]
  total = sum(len(plan(config, a, o, t).windows) for t, o, a in todo)
  datasets = {}
  for task in dict.fromkeys(t for t, _, _ in todo):  # every task's data before any training
    if progress:
      print(f"data: {task}", file=sys.stderr, flush=True)
    datasets[task] = task_data(config, task)
  results = []
  with tqdm.tqdm(total=total, unit="block", dynamic_ncols=True, disable=not progress) as bar:
    for task, objective, arch in mine:
      if (task, objective, arch) in finished:
        results.append(finished[task, objective, arch])
        continue
      bar.set_description(f"{task} · {objective} · {arch}")
      results.append(run_cell(config, task, objective, arch, datasets[task], bar))
  return results


def describe(config: CompareConfig) -> str:
  """One line per architecture: parameters, steps and training FLOPs on the first task."""
  task = next(iter(config.tasks))
  seq_len, objective = config.tasks[task].seq_len, config.objectives[0]
  lines = [f"budget on {task!r} (seq_len {seq_len}, {batch_size(config, task)} rows per step, "
           f"match={config.match}):"]
  for arch in config.architectures:
    p = plan(config, arch, objective, task)
    model = arch_config(config, arch, objective, seq_len)
    lines.append(f"  {arch:12s} {parameter_count(model) / 1e6:6.2f}M params  {p.steps:6d} steps  "
                 f"{sum(p.block_flops):.3g} FLOPs per seed  windows {sorted(set(p.windows))}")
  return "\n".join(lines)
