"""One cell of the comparison: `seeds` copies of one architecture trained on the same task,
vmapped in one program (PureJaxRL style: the state is an explicit pytree with a leading seed
axis S, and a block of optimizer steps is one `lax.scan`).

The step itself is the training loop's (`hrm_jax.train.step.train_step`: response-only
loss over packed rows, AdamATan2, EMA), so what is compared is what `python -m
hrm_jax.train` trains. The data are device arrays of packed rows; each seed reads them in
its own shuffled order.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from hrm_jax.data.layout import IGNORE
from hrm_jax.model import Buffer, ModelConfig, build
from hrm_jax.train.step import TrainState, segments_of, train_step


@dataclasses.dataclass
class Cell:
  """A cell's models: the shared graph, and per seed (leading axis S) buffers and state."""
  graphdef: nnx.GraphDef
  buffers_S: nnx.State
  state_S: TrainState


def init_cell(config: ModelConfig, seeds: list[int],
              optimizer: optax.GradientTransformationExtraArgs) -> Cell:
  """Seed s initializes its model with nnx.Rngs(s); parameters and buffers are stacked."""
  parts = [nnx.split(build(config, rngs=nnx.Rngs(seed)), nnx.Param, Buffer) for seed in seeds]
  graphdef = parts[0][0]
  stack = lambda *xs: jnp.stack(xs)
  params_S = jax.tree.map(stack, *[p for _, p, _ in parts])
  buffers_S = jax.tree.map(stack, *[b for _, _, b in parts])
  # The EMA starts as a copy: the state is donated to each block, one buffer cannot be twice.
  state_S = jax.vmap(lambda p: TrainState(jnp.zeros((), jnp.int32), p, optimizer.init(p),
                                          jax.tree.map(jnp.copy, p),
                                          jnp.full((), -1, jnp.int32)))(params_S)
  return Cell(graphdef, buffers_S, state_S)


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer", "bp_steps", "ema_decay"),
                   donate_argnames=("state_S",))
def train_block(graphdef, optimizer, buffers_S, state_S: TrainState, batches_nS: dict, *,
                bp_steps: int, ema_decay: float):
  """n optimizer steps for every seed: step i of seed s trains on the rows
  batches_nS[field][i, s] ([n, S, B, T] per field, gathered on the host, so a block's
  program depends only on shapes and is shared by tasks of one row length). Returns
  (state_S, loss_Sn)."""
  step = functools.partial(train_step, graphdef, optimizer, bp_steps=bp_steps, accumulation=1,
                           ema_decay=ema_decay)

  def one_step(state_S, batch_S):
    state_S, metrics_S = jax.vmap(step)(buffers_S, state_S, batch_S)
    return state_S, metrics_S["loss"]

  state_S, loss_nS = jax.lax.scan(one_step, state_S, batches_nS)
  return state_S, loss_nS.T


@functools.partial(jax.jit, static_argnames=("graphdef", "batch"))
def evaluate(graphdef, buffers_S, params_S, test: dict, *, batch: int):
  """Per seed, on the held-out samples (one per row): mean cross-entropy of the response
  tokens, the fraction of responses whose every token is the argmax (exactly what greedy
  decoding would write: it feeds the same tokens back), and token accuracy. The loss is
  response-only under every objective, so the objectives are compared on one measure."""
  rows = test["tokens"].shape[0]
  chunks = jax.tree.map(lambda x: x.reshape(rows // batch, batch, *x.shape[1:]), test)

  def one_seed(buffers, params):
    model = nnx.merge(graphdef, params, buffers)

    def one_chunk(chunk):
      logits_BTV = model(chunk["tokens"], segments_of(chunk))
      labels_BT = chunk["labels"]
      labelled_BT = labels_BT != IGNORE
      safe_BT = jnp.where(labelled_BT, labels_BT, 0)
      ce_BT = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, safe_BT)
      right_BT = (jnp.argmax(logits_BTV, -1) == safe_BT) | ~labelled_BT
      return (jnp.sum(jnp.where(labelled_BT, ce_BT, 0.0)), jnp.sum(labelled_BT),
              jnp.sum(jnp.all(right_BT, -1)), jnp.sum(right_BT & labelled_BT))

    ce, count, exact, right = jax.tree.map(jnp.sum, jax.lax.map(one_chunk, chunks))
    count = jnp.maximum(count, 1)
    return {"loss": ce / count, "exact_match": exact / rows, "token_accuracy": right / count}

  return jax.vmap(one_seed)(buffers_S, params_S)


def row_orders(rows: int, steps: int, batch: int, seeds: list[int]) -> np.ndarray:
  """[S, steps, batch] row indices: per seed, epochs of its own random permutations."""
  need = steps * batch
  out = np.empty((len(seeds), need), np.int32)
  for s, seed in enumerate(seeds):
    rng = np.random.default_rng([seed, 7919])
    epochs = -(-need // rows)
    out[s] = np.concatenate([rng.permutation(rows) for _ in range(epochs)])[:need]
  return out.reshape(len(seeds), steps, batch)
