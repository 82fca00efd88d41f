"""Evaluating a model on a benchmark: batched greedy generation with the KV cache, scoring,
and a prediction cache that makes an interrupted evaluation resume where it stopped.

    model, tokenizer = load_model("runs/hrm/tiny")          # a training run (EMA weights)
    model, tokenizer = load_model("hf/HRM-Text-1B")         # or a Hugging Face directory
    model, tokenizer, identity = load_model_and_identity("runs/hrm/tiny")
    result = evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, cache_path="gsm8k.jsonl",
                      cache_key=identity)

Cached predictions carry the model's identity (`cache_key`: its path, checkpoint step and a
hash of its config and weights files) and max_new_tokens; a cache written for another model
or length is refused (StaleCacheError), never reused under the wrong name.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import tqdm

from hrm_jax.data.tokenizer import ByteTokenizer, load_tokenizer
from hrm_jax.eval.benchmarks import Benchmark, Item
from hrm_jax.generate import generate, prompt_tokens


class StaleCacheError(ValueError):
  """A prediction cache written for another model (or max_new_tokens)."""


def load_model(path: str):
  """(model, tokenizer) from a training run directory (config.yaml + checkpoints/, EMA
  weights) or a Hugging Face HRM-Text directory (config.json + safetensors; its
  tokenizer.json when present, else the byte tokenizer)."""
  model, tokenizer, _ = load_model_and_identity(path)
  return model, tokenizer


def load_model_and_identity(path: str):
  """(model, tokenizer, identity): `identity` names exactly the weights loaded, for
  `evaluate(cache_key=...)`: the directory, the checkpoint step of a training run, and a hash
  of its config (and, for a Hugging Face directory, of its files' sizes and times)."""
  from hrm_jax.model import hf_io  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.loop import load_trained_step  # pylint: disable=import-outside-toplevel
  where = os.path.abspath(path)
  if os.path.exists(os.path.join(path, "config.yaml")):
    model, config, step = load_trained_step(path)
    identity = f"{where} step {step} config {_digest(os.path.join(path, 'config.yaml'))}"
    return model, load_tokenizer(config.data.tokenizer), identity
  if os.path.exists(os.path.join(path, hf_io.CONFIG_FILE)):
    _, model = hf_io.load_hf(path)
    tokenizer_file = os.path.join(path, "tokenizer.json")
    # Weights may be replaced in place: their sizes and modification times are part of it.
    stats = sorted((name, st.st_size, st.st_mtime_ns) for name in os.listdir(path)
                   if os.path.isfile(os.path.join(path, name))
                   for st in [os.stat(os.path.join(path, name))])
    identity = (f"{where} config {_digest(os.path.join(path, hf_io.CONFIG_FILE))} files "
                f"{hashlib.sha256(repr(stats).encode()).hexdigest()[:12]}")
    return model, (load_tokenizer(tokenizer_file) if os.path.exists(tokenizer_file)
                   else ByteTokenizer(vocab_size=model.config.vocab_size)), identity
  raise FileNotFoundError(f"{path}: neither a training run (config.yaml) nor a Hugging Face "
                          f"model directory ({hf_io.CONFIG_FILE})")


def _digest(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:12]


def _fit(tokens: list[int], keep_head: int, budget: int) -> tuple[list[int], bool]:
  """The prompt cut to `budget` tokens by dropping the oldest instruction tokens (k-shot
  examples come first), keeping BOQ + condition tokens; whether it was cut."""
  if len(tokens) <= budget:
    return tokens, False
  return tokens[:keep_head] + tokens[len(tokens) - (budget - keep_head):], True


def evaluate(model, tokenizer, benchmark: Benchmark, items: list[Item], *,
             batch_size: int = 16, max_new_tokens: int | None = None,
             cache_path: str | None = None, cache_key: str | None = None,
             progress: bool = True) -> dict:
  """Scores every item (greedy, stop at EOA) → {benchmark, items, truncated, summary,
  per_item}. Items already in `cache_path` (JSONL of id, output, scores, model,
  max_new_tokens) are not rerun; a cache of another `cache_key` (the model's identity) or
  max_new_tokens raises StaleCacheError."""
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  max_new = max_new_tokens or benchmark.max_new_tokens
  budget = model.config.max_position_embeddings - max_new
  if budget < 8:
    raise ValueError(f"max_new_tokens {max_new} leaves no room for a prompt in "
                     f"max_position_embeddings {model.config.max_position_embeddings}")
  ids = [item.id for item in items]
  if len(set(ids)) != len(ids):
    raise ValueError(f"{benchmark.name}: item ids repeat")
  done = _read_cache(cache_path, cache_key, max_new)
  todo = [item for item in items if item.id not in done]
  # Similar lengths batch together: less padding, fewer compiled shapes.
  prompts = {item.id: prompt_tokens(tokenizer, item.prompt, item.tags) for item in todo}
  todo.sort(key=lambda item: len(prompts[item.id]))
  truncated = 0
  cache = open(cache_path, "a", encoding="utf-8") if cache_path else None
  try:
    with tqdm.tqdm(total=len(items), initial=len(items) - len(todo), desc=benchmark.name,
                   disable=not progress) as bar:
      for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        fitted = [_fit(prompts[item.id], 1 + len(tokenizer.condition_ids(item.tags)), budget)
                  for item in batch]
        truncated += sum(cut for _, cut in fitted)
        outputs = generate(model, [tokens for tokens, _ in fitted], max_new_tokens=max_new)
        for item, output in zip(batch, outputs):
          text = tokenizer.decode(output)
          record = {"id": item.id, "output": text, "scores": benchmark.score(item, text),
                    "model": cache_key, "max_new_tokens": max_new}
          done[item.id] = record
          if cache is not None:
            cache.write(json.dumps(record) + "\n")
            cache.flush()
        bar.update(len(batch))
  finally:
    if cache is not None:
      cache.close()
  scores = [done[item.id]["scores"] for item in items]
  return {"benchmark": benchmark.name, "items": len(items), "truncated_prompts": truncated,
          "summary": benchmark.aggregate(items, scores),
          "per_item": [dict(done[item.id], gold=item.gold) for item in items]}


def check_cache(path: str | None, cache_key: str | None, max_new_tokens: int) -> None:
  """Raises StaleCacheError if `path` holds predictions of another model or length."""
  _read_cache(path, cache_key, max_new_tokens)


def _read_cache(path: str | None, cache_key: str | None, max_new: int) -> dict[str, dict]:
  if not path or not os.path.exists(path):
    return {}
  done = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        try:
          record = json.loads(line)
        except json.JSONDecodeError:
          continue  # a line cut by a crash mid-write: that item is simply redone
        got = (record.get("model"), record.get("max_new_tokens"))
        if got != (cache_key, max_new):
          raise StaleCacheError(
              f"{path} holds predictions of {got[0] or 'an unnamed model'} with max_new_tokens "
              f"{got[1]}, not of {cache_key or 'an unnamed model'} with max_new_tokens "
              f"{max_new}: use another output directory, or delete the file to evaluate anew")
        done[record["id"]] = record
  return done


def markdown_table(results: list[dict]) -> str:
  """One row per benchmark: its headline metrics in % (per-group values stay in the JSON)
  and the item count."""
  lines = ["| benchmark | items | metrics (%) |", "|---|---:|---|"]
  for r in results:
    metrics = ", ".join(f"{k} {100 * v:.1f}" for k, v in r["summary"].items()
                        if "/" not in k and k != "count" and isinstance(v, (int, float))
                        and np.isfinite(v))
    lines.append(f"| {r['benchmark']} | {r['items']} | {metrics} |")
  return "\n".join(lines)
