"""One optimizer step: response-only loss, gradient accumulation, AdamATan2, EMA.

Pure functions over an explicit `TrainState`; the model enters as (graphdef, parameters,
buffers) so the step is one `jax.jit` program per bp_steps value (nnx.jit would add Python
overhead per call). A non-finite loss or gradient skips the update and records the step, so
the loop can stop with a clear message while the last checkpoint stays good.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from hrm_jax.data.layout import IGNORE
from hrm_jax.model.attention import Segments
from hrm_jax.train.optimizer import ema_update


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
  step: jax.Array            # int32 scalar: optimizer steps taken
  params: Any                # nnx.State of the model's Params (fp32 master weights)
  opt_state: Any
  ema: Any                   # parameter EMA, used for evaluation and export
  nonfinite_step: jax.Array  # int32: the first step whose loss/gradient was not finite, or -1


def segments_of(batch: dict) -> Segments:
  return Segments(batch["segment_ids"], batch["positions"], batch["prefix_lengths"])


def loss_sums(model, batch: dict, bp_steps: int | None):
  """(Σ CE over labelled tokens in fp32, number of labelled tokens)."""
  labels_BT = batch["labels"]
  chunk = model.config.loss_chunk
  if not chunk or chunk >= labels_BT.shape[1]:
    return _cross_entropy_sums(model(batch["tokens"], segments_of(batch), bp_steps=bp_steps),
                               labels_BT)
  z_BTD = model.hidden(batch["tokens"], segments_of(batch), bp_steps=bp_steps)
  return _chunked_head_sums(model, z_BTD, labels_BT, chunk)


def _cross_entropy_sums(logits_NV, labels_N):
  labelled_N = labels_N != IGNORE
  ce_N = optax.softmax_cross_entropy_with_integer_labels(
      logits_NV, jnp.where(labelled_N, labels_N, 0))
  return jnp.sum(jnp.where(labelled_N, ce_N, 0.0)), jnp.sum(labelled_N)


def _chunked_head_sums(model, z_BTD, labels_BT, chunk: int):
  """The loss sums of `loss_sums`, with the head applied to `chunk` positions of every row at
  a time. Each chunk is checkpointed, so the backward keeps only z and recomputes that chunk's
  logits: the [B, T, V] logits and their gradient are never whole."""
  b, t, d = z_BTD.shape
  n = -(-t // chunk)
  pad = n * chunk - t  # padded positions are unlabelled
  z_BTD = jnp.pad(z_BTD, ((0, 0), (0, pad), (0, 0)))
  labels_BT = jnp.pad(labels_BT, ((0, 0), (0, pad)), constant_values=IGNORE)
  # [n, B, chunk, …]: rows keep their sharding; the chunks are the scan's steps.
  z_nBCD = jnp.swapaxes(z_BTD.reshape(b, n, chunk, d), 0, 1)
  labels_nBC = jnp.swapaxes(labels_BT.reshape(b, n, chunk), 0, 1)

  @jax.checkpoint
  def chunk_sums(z_BCD, labels_BC):
    logits_NV = model.lm_head(z_BCD.reshape(-1, d)).astype(jnp.float32)  # 2-D: see mlp.py
    return _cross_entropy_sums(logits_NV, labels_BC.reshape(-1))

  def add(carry, xs):
    ce, count = chunk_sums(*xs)
    return (carry[0] + ce, carry[1] + count), None

  (ce_sum, count), _ = jax.lax.scan(
      add, (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)), (z_nBCD, labels_nBC))
  return ce_sum, count


def skip_mask(model, params, bp_steps: int | None):
  """A pytree of Python bools over `params`: True for the parameters outside the gradient
  window at `bp_steps` (model.gradient_free), which the optimizer and the EMA leave alone."""
  outside = model.gradient_free(bp_steps)
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[0], "key", None) in outside, params)


def _microbatches(batch: dict, count: int) -> dict:
  """[rows, …] → [count, rows / count, …], microbatch m = rows m, m + count, …: rows are
  sharded over devices in contiguous blocks, so every microbatch takes the same number of rows
  from each device's block and no rows move between devices."""
  rows = batch["tokens"].shape[0]
  if rows % count:
    raise ValueError(f"batch of {rows} rows does not split into {count} accumulation steps")
  return jax.tree.map(lambda x: jnp.swapaxes(x.reshape(rows // count, count, *x.shape[1:]), 0, 1),
                      batch)


def train_step(graphdef, optimizer: optax.GradientTransformation, buffers, state: TrainState,
               batch: dict, *, bp_steps: int | None, accumulation: int, ema_decay: float):
  """Loss = Σ CE / global labelled-token count over the whole batch (all microbatches)."""

  def summed_loss(params, micro):
    return loss_sums(nnx.merge(graphdef, params, buffers), micro, bp_steps)

  grad_fn = jax.value_and_grad(summed_loss, has_aux=True)

  def accumulate(carry, micro):
    grads, loss_sum, count = carry
    (micro_loss, micro_count), micro_grads = grad_fn(state.params, micro)
    return (jax.tree.map(jnp.add, grads, micro_grads), loss_sum + micro_loss,
            count + micro_count), None

  zeros = jax.tree.map(jnp.zeros_like, state.params)
  (grad_sums, loss_sum, count), _ = jax.lax.scan(
      accumulate, (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)),
      _microbatches(batch, accumulation))
  denominator = jnp.maximum(count, 1).astype(jnp.float32)
  grads = jax.tree.map(lambda g: g / denominator, grad_sums)
  loss = loss_sum / denominator
  grad_norm = optax.tree.norm(grads)

  skip = skip_mask(nnx.merge(graphdef, state.params, buffers), state.params, bp_steps)
  updates, opt_state = optax.with_extra_args_support(optimizer).update(
      grads, state.opt_state, state.params, skip=skip)
  params = optax.apply_updates(state.params, updates)
  ema = ema_update(state.ema, params, ema_decay, skip)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  keep_if_bad = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(
      step=state.step + 1,
      params=keep_if_bad(params, state.params),
      opt_state=keep_if_bad(opt_state, state.opt_state),
      ema=keep_if_bad(ema, state.ema),
      nonfinite_step=jnp.where((state.nonfinite_step < 0) & ~finite, state.step,
                               state.nonfinite_step))
  metrics = {"loss": loss, "grad_norm": grad_norm, "labelled_tokens": count,
             "tokens": jnp.sum(batch["segment_ids"] > 0)}
  return new_state, metrics


def eval_step(graphdef, buffers, params, batch: dict):
  """(Σ CE, labelled count) with full backprop semantics (forward only)."""
  return loss_sums(nnx.merge(graphdef, params, buffers), batch, None)
