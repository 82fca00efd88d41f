"""Generation from a trained model, prompted as the paper evaluates (§5): BOQ + condition
tokens + prompt + EOQ, PrefixLM over the prompt, stop at EOA.

`generate` prefills every prompt in one pass (bidirectional over the prompt), then decodes
token by token with one KV cache per (module call, layer): N·(T+1) calls × layers per stack,
preallocated at static shapes. Prefill and the decode `while_loop` are one compiled program
for the batch; rows with prompts of different lengths decode at their own positions.
`recompute_generate` re-runs the whole sequence for every token: the reference the cached
path is tested against, and the baseline of bench/hrm_decode.py.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hrm_jax.data.layout import prompt_tokens
from hrm_jax.data.tokenizer import EOA, PAD
from hrm_jax.model.attention import Segments

PROMPT_BUCKET = 16  # prompts pad to a multiple of this, so few lengths compile


@dataclasses.dataclass(frozen=True)
class Sampling:
  """temperature 0 is greedy; otherwise softmax(logits / temperature) restricted to the
  top_k tokens (0: all) and to the smallest set whose probability reaches top_p."""
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0

  def __post_init__(self):
    if self.temperature < 0 or self.top_k < 0 or not 0.0 < self.top_p <= 1.0:
      raise ValueError(f"bad sampling settings {self}: need temperature >= 0, top_k >= 0, "
                       "0 < top_p <= 1")


def sample(logits_BV: jax.Array, key: jax.Array, sampling: Sampling) -> jax.Array:
  """Next tokens [B] from float32 logits."""
  if sampling.temperature == 0.0:
    return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
  logits = logits_BV / sampling.temperature
  if sampling.top_k:
    kth = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if sampling.top_p < 1.0:
    sorted_desc = jnp.sort(logits, axis=-1)[:, ::-1]
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    # Keep a token if the probability mass before it is below top_p (the first always stays).
    keep = (jnp.cumsum(probs, axis=-1) - probs) < sampling.top_p
    cutoff = jnp.min(jnp.where(keep, sorted_desc, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "sampling",
                                             "return_logits", "cache_dtype", "stop_token"))
def _cached_decode(graphdef, state, tokens_BP, lengths_B, limits_B, key, *, max_new_tokens: int,
                   sampling: Sampling, return_logits: bool, cache_dtype, stop_token):
  model = nnx.merge(graphdef, state)
  b, p = tokens_BP.shape
  cache = model.init_cache(b, p + max_new_tokens, cache_dtype)
  logits_BPV, cache = model.cached_logits(tokens_BP, jnp.zeros((b,), jnp.int32), lengths_B,
                                          cache)
  last_BV = jnp.take_along_axis(logits_BPV, (lengths_B - 1)[:, None, None], axis=1)[:, 0]
  out_BG = jnp.full((b, max_new_tokens), PAD, jnp.int32)
  seen = jnp.zeros((b, max_new_tokens, last_BV.shape[-1]) if return_logits else (0,),
                   jnp.float32)

  def step(carry):
    i, out, seen, logits, done, cache, key = carry
    key, k = jax.random.split(key)
    token = jnp.where(done, PAD, sample(logits, k, sampling))
    out = out.at[:, i].set(token)
    if return_logits:
      seen = seen.at[:, i].set(logits)
    done = done | (i + 1 >= limits_B)
    if stop_token is not None:
      done = done | (token == stop_token)
    # The next logits: one token per row at its own position (finished rows compute along,
    # masked out above; a static batch keeps one compiled program).
    logits, cache = model.cached_logits(token[:, None], lengths_B + i, lengths_B, cache)
    return i + 1, out, seen, logits[:, 0], done, cache, key

  def running(carry):
    i, done = carry[0], carry[4]
    return (i < max_new_tokens) & ~jnp.all(done)

  carry = (jnp.zeros((), jnp.int32), out_BG, seen, last_BV, limits_B <= 0, cache, key)
  _, out_BG, seen, _, _, _, _ = jax.lax.while_loop(running, step, carry)
  return out_BG, seen


def _batch(prompts, max_new_tokens, bucket: int = PROMPT_BUCKET, max_width: int | None = None):
  if not prompts or any(len(p) == 0 for p in prompts):
    raise ValueError("every prompt needs at least one token")
  longest = max(map(len, prompts))
  width = max(longest, min(-(-longest // bucket) * bucket, max_width or longest))
  buffer = np.full((len(prompts), width), PAD, np.int32)
  for row, prompt in zip(buffer, prompts):
    row[:len(prompt)] = prompt
  limits = np.broadcast_to(np.asarray(max_new_tokens, np.int32), (len(prompts),)).copy()
  return buffer, np.array([len(p) for p in prompts], np.int32), limits


def generate(model, prompts: list[list[int]], *, max_new_tokens: int | list[int] = 64,
             sampling: Sampling = Sampling(), seed: int = 0, cache_dtype=None,
             return_logits: bool = False, stop_token: int | None = EOA):
  """Generated token ids per prompt (up to, not including, `stop_token`), with a KV cache.

  max_new_tokens: one limit, or one per prompt. return_logits: also the float32 logits
  [B, max_new_tokens, V] each new token was chosen from (zeros after a row stops).
  stop_token None: always generate max_new_tokens (benchmarks).
  """
  limit = int(np.max(max_new_tokens))
  buffer, lengths, limits = _batch(prompts, max_new_tokens,
                                   max_width=model.config.max_position_embeddings - limit)
  if buffer.shape[1] + limit > model.config.max_position_embeddings:
    raise ValueError(f"prompt of {buffer.shape[1]} positions (padded) + {limit} new tokens "
                     f"exceeds max_position_embeddings {model.config.max_position_embeddings}")
  graphdef, state = nnx.split(model)
  out, logits = _cached_decode(graphdef, state, jnp.asarray(buffer), jnp.asarray(lengths),
                               jnp.asarray(limits), jax.random.key(seed),
                               max_new_tokens=limit, sampling=sampling,
                               return_logits=return_logits, cache_dtype=cache_dtype,
                               stop_token=stop_token)
  tokens = [_until(list(row[:n]), stop_token) for row, n in zip(np.asarray(out), limits)]
  return (tokens, np.asarray(logits)) if return_logits else tokens


def _until(tokens: list[int], stop_token: int | None) -> list[int]:
  return tokens[:tokens.index(stop_token)] if stop_token in tokens else tokens


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "stop_token"))
def _recompute_greedy(graphdef, state, tokens_BT, prompt_lengths_B, limits_B, *,
                      max_new_tokens: int, stop_token):
  model = nnx.merge(graphdef, state)
  b, t = tokens_BT.shape
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
    done = done | (length - prompt_lengths_B >= limits_B)
    return tokens, length, done | (nxt == stop_token) if stop_token is not None else done

  tokens, _, _ = jax.lax.while_loop(lambda carry: jnp.any(~carry[2]), step,
                                    (tokens_BT, prompt_lengths_B, limits_B <= 0))
  return tokens


def recompute_generate(model, prompts: list[list[int]], *, max_new_tokens: int | list[int] = 64,
                       stop_token: int | None = EOA) -> list[list[int]]:
  """Greedy generation re-running the full sequence for every token (no cache)."""
  limit = int(np.max(max_new_tokens))
  buffer, lengths, limits = _batch(prompts, max_new_tokens, bucket=1)
  width = buffer.shape[1] + limit
  if width > model.config.max_position_embeddings:
    raise ValueError(f"prompt of {buffer.shape[1]} tokens + {limit} new tokens exceeds "
                     f"max_position_embeddings {model.config.max_position_embeddings}")
  full = np.full((len(prompts), width), PAD, np.int32)
  full[:, :buffer.shape[1]] = buffer
  graphdef, state = nnx.split(model)
  out = np.asarray(_recompute_greedy(graphdef, state, jnp.asarray(full), jnp.asarray(lengths),
                                     jnp.asarray(limits), max_new_tokens=limit,
                                     stop_token=stop_token))
  return [_until(list(row[n:n + m]), stop_token) for row, n, m in zip(out, lengths, limits)]


def greedy_answers(model, tokenizer, instructions, tags=(), *, max_new_tokens: int = 64,
                   length: int | None = None) -> list[str]:
  """Decoded greedy responses (up to EOA) for a batch of instructions.
  length: the longest prompt + answer allowed (default: the model's maximum)."""
  prompts = [prompt_tokens(tokenizer, text, tags) for text in instructions]
  longest = max(map(len, prompts))
  if length is not None and longest + max_new_tokens > length:
    raise ValueError(f"prompt of {longest} tokens + {max_new_tokens} new exceeds {length}")
  return [tokenizer.decode(t) for t in generate(model, prompts, max_new_tokens=max_new_tokens)]
