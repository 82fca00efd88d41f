"""Evaluating a model on a benchmark: batched generation with the KV cache under the
authors' context budget, scoring, and a prediction cache that makes an interrupted evaluation
resume where it stopped.

    model, tokenizer = load_model("runs/hrm/tiny")          # a training run (EMA weights)
    model, tokenizer = load_model("hf/HRM-Text-1B")         # or a Hugging Face directory
    model, tokenizer, identity = load_model_and_identity("runs/hrm/tiny")
    result = evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, cache_path="gsm8k.jsonl",
                      cache_key=identity)

Budget, as the authors' SimpleEngine (simple_inference_engine.inference_generate): a prompt of
L tokens (BOQ + tags + text + EOQ) gets min(max_new_tokens, max_context - L) new tokens; one of
max_context tokens or more is not generated for: its answer is "" (scored invalid) and it is
counted in `overlong_prompts`. max_context is the benchmark's, capped at the model's
max_position_embeddings. Sampled benchmarks (temperature > 0) draw from a seed per batch, and
their batches are planned over all items, cached or not, so a resumed run reproduces the
uninterrupted one.

Cached predictions carry the model's identity (`cache_key`: its path, checkpoint step and a
hash of its config and weights files) and the generation settings (context, new tokens,
temperature; seed and batch size when sampling); a cache written for another model or other
settings is refused (StaleCacheError), never reused under the wrong name.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import tqdm

from hrm_jax.data.layout import prompt_tokens
from hrm_jax.data.tokenizer import ByteTokenizer, load_tokenizer
from hrm_jax.eval.benchmarks import Benchmark, Item
from hrm_jax.generate import Sampling, generate

LIMIT_BUCKET = 128  # compiled new-token lengths round up to this: few distinct programs


class StaleCacheError(ValueError):
  """A prediction cache written for another model (or other generation settings)."""


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


def generation_settings(model, benchmark: Benchmark, *, max_context: int | None = None,
                        max_new_tokens: int | None = None, temperature: float | None = None,
                        seed: int = 0, batch_size: int = 16) -> dict:
  """The settings that decide a benchmark's outputs: the benchmark's defaults, overridden by
  the arguments; max_context capped at the model's max_position_embeddings. Seed and batch
  size only matter (and only appear) when sampling."""
  context = min(max_context or benchmark.max_context, model.config.max_position_embeddings)
  new = benchmark.max_new_tokens if max_new_tokens is None else max_new_tokens
  temperature = benchmark.temperature if temperature is None else temperature
  if context < 2 or (new is not None and new < 1) or temperature < 0 or batch_size < 1:
    raise ValueError(f"bad generation settings: max_context {context}, max_new_tokens {new}, "
                     f"temperature {temperature}, batch_size {batch_size}")
  settings = {"max_context": context, "max_new_tokens": new, "temperature": temperature}
  if temperature > 0:
    settings |= {"seed": seed, "batch_size": batch_size}
  return settings


def new_token_limit(prompt_length: int, settings: dict) -> int:
  """How many tokens a prompt of this length may generate: min(max_new_tokens, max_context -
  prompt_length); 0 for an over-long prompt (prompt_length >= max_context)."""
  room = settings["max_context"] - prompt_length
  if room <= 0:
    return 0
  new = settings["max_new_tokens"]
  return room if new is None else min(new, room)


def _batches(entries: list[tuple[Item, list[int], int]], batch_size: int,
             max_positions: int) -> list[list[tuple[Item, list[int], int]]]:
  """Batches of similar prompt lengths, each within what one generate call holds: its longest
  prompt + its largest new-token limit <= max_positions."""
  batches, current, longest, top = [], [], 0, 0
  for entry in sorted(entries, key=lambda e: len(e[1])):
    length, limit = len(entry[1]), entry[2]
    if current and (len(current) == batch_size or
                    max(longest, length) + max(top, limit) > max_positions):
      batches.append(current)
      current, longest, top = [], 0, 0
    current.append(entry)
    longest, top = max(longest, length), max(top, limit)
  return batches + ([current] if current else [])


def generate_within(model, prompts: list[list[int]], limits: list[int], *,
                    sampling: Sampling = Sampling(), seed: int = 0) -> list[list[int]]:
  """`generate` with a new-token limit per prompt, the compiled length rounded up to
  LIMIT_BUCKET (where it fits) and each output cut back to its own limit: the same tokens as
  with the exact limits (a token depends only on those before it; the sampling key of a step
  does not depend on the limits), from far fewer compiled programs."""
  top = max(limits)
  room = model.config.max_position_embeddings - max(map(len, prompts))
  padded = list(limits)
  if top > LIMIT_BUCKET:
    padded[limits.index(top)] = max(top, min(-(-top // LIMIT_BUCKET) * LIMIT_BUCKET, room))
  outputs = generate(model, prompts, max_new_tokens=padded, sampling=sampling, seed=seed)
  return [output[:limit] for output, limit in zip(outputs, limits)]


def _batch_seed(seed: int, first_id: str) -> int:
  digest = hashlib.sha256(f"{seed}:{first_id}".encode()).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def evaluate(model, tokenizer, benchmark: Benchmark, items: list[Item], *,
             batch_size: int = 16, max_context: int | None = None,
             max_new_tokens: int | None = None, temperature: float | None = None,
             seed: int = 0, cache_path: str | None = None, cache_key: str | None = None,
             progress: bool = True) -> dict:
  """Scores every item (stop at EOA) → {benchmark, items, overlong_prompts, settings, summary,
  per_item}. The generation settings default to the benchmark's (see generation_settings).
  Items already in `cache_path` (JSONL of id, output, scores, overlong, model, settings) are
  not rerun; a cache of another `cache_key` (the model's identity) or other settings raises
  StaleCacheError."""
  settings = generation_settings(model, benchmark, max_context=max_context,
                                 max_new_tokens=max_new_tokens, temperature=temperature,
                                 seed=seed, batch_size=batch_size)
  ids = [item.id for item in items]
  if len(set(ids)) != len(ids):
    raise ValueError(f"{benchmark.name}: item ids repeat")
  done = _read_cache(cache_path, cache_key, settings)
  sampled = settings["temperature"] > 0
  sampling = Sampling(temperature=settings["temperature"])
  entries = []
  for item in items:
    if item.id in done and not sampled:
      continue  # greedy: cached items need no tokens; sampled: they keep their batch places
    tokens = prompt_tokens(tokenizer, item.prompt, item.tags)
    entries.append((item, tokens, new_token_limit(len(tokens), settings)))
  cache = open(cache_path, "a", encoding="utf-8") if cache_path else None

  def record(item: Item, text: str, overlong: bool) -> None:
    done[item.id] = {"id": item.id, "output": text, "scores": benchmark.score(item, text),
                     "overlong": overlong, "model": cache_key, "settings": settings}
    if cache is not None:
      cache.write(json.dumps(done[item.id]) + "\n")
      cache.flush()

  try:
    with tqdm.tqdm(total=len(items), initial=sum(i in done for i in ids), desc=benchmark.name,
                   disable=not progress) as bar:
      for item, _, limit in entries:
        if limit == 0 and item.id not in done:  # the authors answer "" without generating
          record(item, "", overlong=True)
          bar.update(1)
      for batch in _batches([e for e in entries if e[2] > 0], batch_size,
                            model.config.max_position_embeddings):
        if all(item.id in done for item, _, _ in batch):
          continue
        outputs = generate_within(model, [tokens for _, tokens, _ in batch],
                                  [limit for _, _, limit in batch], sampling=sampling,
                                  seed=_batch_seed(seed, batch[0][0].id) if sampled else 0)
        for (item, _, _), output in zip(batch, outputs):
          if item.id not in done:
            record(item, tokenizer.decode(output), overlong=False)
            bar.update(1)
  finally:
    if cache is not None:
      cache.close()
  scores = [done[item.id]["scores"] for item in items]
  return {"benchmark": benchmark.name, "items": len(items),
          "overlong_prompts": sum(bool(done[i].get("overlong")) for i in ids),
          "settings": settings, "summary": benchmark.aggregate(items, scores),
          "per_item": [dict(done[item.id], gold=item.gold) for item in items]}


def check_cache(path: str | None, cache_key: str | None, settings: dict) -> None:
  """Raises StaleCacheError if `path` holds predictions of another model or settings."""
  _read_cache(path, cache_key, settings)


def _describe(settings: dict | None) -> str:
  if not isinstance(settings, dict):
    return "unrecorded settings"
  return ", ".join(f"{key} {value}" for key, value in settings.items())


def _read_cache(path: str | None, cache_key: str | None, settings: dict) -> dict[str, dict]:
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
        got = (record.get("model"), record.get("settings"))
        if got != (cache_key, settings):
          raise StaleCacheError(
              f"{path} holds predictions of {got[0] or 'an unnamed model'} with "
              f"{_describe(got[1])}, not of {cache_key or 'an unnamed model'} with "
              f"{_describe(settings)}: use another output directory, or delete the file to "
              "evaluate anew")
        done[record["id"]] = record
  return done


NOT_RATES = ("count", "samples")  # summary numbers that are not fractions


def markdown_table(results: list[dict]) -> str:
  """One row per benchmark: its headline metrics in % (per-group values stay in the JSON)
  and the item count."""
  lines = ["| benchmark | items | metrics (%) |", "|---|---:|---|"]
  for r in results:
    metrics = ", ".join(f"{k} {100 * v:.1f}" for k, v in r["summary"].items()
                        if "/" not in k and k not in NOT_RATES and isinstance(v, (int, float))
                        and np.isfinite(v))
    lines.append(f"| {r['benchmark']} | {r['items']} | {metrics} |")
  return "\n".join(lines)
