"""Greedy answers from a trained model, prompted as the paper evaluates (§5): BOQ + condition
tokens + prompt + EOQ, PrefixLM over the prompt, stop at EOA.

Each new token re-runs the model over a fixed-length buffer, so the whole decode is one
compiled `while_loop` with static shapes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hrm_jax.data.tokenizer import BOQ, EOA, EOQ, PAD
from hrm_jax.model.attention import Segments


def prompt_tokens(tokenizer, instruction: str, tags=()) -> list[int]:
  return [BOQ, *tokenizer.condition_ids(tags), *tokenizer.encode(instruction), EOQ]


@functools.partial(nnx.jit, static_argnames=("max_new_tokens",))
def _greedy(model, tokens_BT, prompt_lengths_B, *, max_new_tokens: int):
  b, t = tokens_BT.shape
  limit_B = jnp.minimum(prompt_lengths_B + max_new_tokens, t)
  positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))

  def step(carry):
    tokens, length, done = carry
    segments = Segments(jnp.where(positions < length[:, None], 1, 0).astype(jnp.int32)
                        + (positions >= length[:, None]) * 2, positions,
                        jnp.broadcast_to(prompt_lengths_B[:, None], (b, t)))
    logits = model(tokens, segments)
    nxt = jnp.argmax(jnp.take_along_axis(logits, (length - 1)[:, None, None], axis=1)[:, 0],
                     axis=-1).astype(jnp.int32)
    nxt = jnp.where(done, PAD, nxt)
    tokens = jnp.where((positions == length[:, None]) & ~done[:, None], nxt[:, None], tokens)
    length = jnp.where(done, length, length + 1)
    return tokens, length, done | (nxt == EOA) | (length >= limit_B)

  def running(carry):
    return jnp.any(~carry[2])

  tokens, _, _ = jax.lax.while_loop(running, step, (tokens_BT, prompt_lengths_B,
                                                    prompt_lengths_B >= limit_B))
  return tokens


def greedy_answers(model, tokenizer, instructions, tags=(), *, max_new_tokens: int = 64,
                   length: int | None = None) -> list[str]:
  """Decoded responses (up to EOA) for a batch of instructions."""
  prompts = [prompt_tokens(tokenizer, text, tags) for text in instructions]
  longest = max(map(len, prompts))
  length = length or longest + max_new_tokens
  if longest + max_new_tokens > length:
    raise ValueError(f"prompt of {longest} tokens + {max_new_tokens} new exceeds {length}")
  buffer = np.full((len(prompts), length), PAD, np.int32)
  for row, prompt in zip(buffer, prompts):
    row[:len(prompt)] = prompt
  lengths = np.array([len(p) for p in prompts], np.int32)
  out = np.asarray(_greedy(model, jnp.asarray(buffer), jnp.asarray(lengths),
                           max_new_tokens=max_new_tokens))
  answers = []
  for row, n in zip(out, lengths):
    generated = list(row[n:])
    if EOA in generated:
      generated = generated[:generated.index(EOA)]
    answers.append(tokenizer.decode(generated))
  return answers
