"""A comparison task's data: training rows packed as the training pipeline packs them, and a
held-out test split of one sample per row.

Both come from the built-in generator (`hrm_jax.data.synthetic`) with the task's difficulty
options, train and test from different seeds; a training record whose instruction is also a
test instruction is dropped, so the test split is held out exactly. The arrays are cached in
the study's directory (`data/<task>.npz`, keyed by everything that makes them).
"""

from __future__ import annotations

import hashlib
import json
import os

import grain
import numpy as np

from hrm_jax.data import synthetic
from hrm_jax.data.layout import IGNORE, make_sample
from hrm_jax.data.pipeline import pack_rows
from hrm_jax.data.tokenizer import PAD, ByteTokenizer

FIELDS = ("tokens", "labels", "segment_ids", "positions", "prefix_lengths")
TRAIN_SEED, TEST_SEED = 1, 2


def _records(task: str, options: dict, seed: int, count: int, skip=frozenset()):
  """`count` distinct records of `task` whose instructions are not in `skip`."""
  seen, out = set(skip), []
  records = synthetic.stream(seed, (task,), {task: options} if options else None)
  for drawn, record in enumerate(records):
    if len(out) == count:
      return out
    if drawn > 20 * count + 1000:
      raise ValueError(f"task {task!r} with options {options}: {drawn} draws gave only "
                       f"{len(out)} distinct examples of the {count} asked for (the options "
                       "allow few); ask for fewer or widen the options")
    if record.instruction not in seen:
      seen.add(record.instruction)
      out.append(record)
  return out


def _sample(tokenizer, record, seq_len: int) -> dict:
  sample = make_sample(tokenizer, record.instruction, record.response, record.tags)
  if len(sample.tokens) > seq_len:
    raise ValueError(f"a {record.task!r} example takes {len(sample.tokens)} tokens, more than "
                     f"the task's seq_len {seq_len}; raise it")
  n = len(sample.tokens)
  return {"tokens": sample.tokens, "labels": sample.labels,
          "prefix_lengths": np.full(n, sample.prefix_length, np.int32)}


def _pad(sample: dict, seq_len: int) -> dict:
  n = len(sample["tokens"])
  grow = lambda x, fill: np.concatenate([x, np.full(seq_len - n, fill, np.int32)])
  return {"tokens": grow(sample["tokens"], PAD), "labels": grow(sample["labels"], IGNORE),
          "segment_ids": grow(np.ones(n, np.int32), 0),
          "positions": grow(np.arange(n, dtype=np.int32), 0),
          "prefix_lengths": grow(sample["prefix_lengths"], 0)}


def full_labels(rows: dict) -> np.ndarray:
  """The next-token labels of every position of each sample (instruction included): where
  the response-only labels ignore a token inside a sample, its label is the next token."""
  seg, tokens, labels = rows["segment_ids"], rows["tokens"], rows["labels"]
  next_tokens = np.concatenate([tokens[:, 1:], np.full_like(tokens[:, :1], PAD)], 1)
  next_seg = np.concatenate([seg[:, 1:], np.zeros_like(seg[:, :1])], 1)
  inside = (labels == IGNORE) & (seg > 0) & (next_seg == seg)
  return np.where(inside, next_tokens, labels).astype(np.int32)


def build(task: str, options: dict, seq_len: int, train_size: int, test_size: int,
          packing_bins: int = 16) -> dict[str, dict[str, np.ndarray]]:
  """{"train": packed rows, "test": one sample per row}, each a dict of [rows, seq_len]
  int32 arrays (FIELDS; train also `full_labels`)."""
  tokenizer = ByteTokenizer()
  test = _records(task, options, TEST_SEED, test_size)
  train = _records(task, options, TRAIN_SEED, train_size, {r.instruction for r in test})
  samples = [_sample(tokenizer, r, seq_len) for r in train]
  # Read in this thread: prefetch threads only add overhead for records already in memory.
  stream = grain.MapDataset.source(samples).to_iter_dataset(
      grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  packed = list(pack_rows(stream, seq_len, packing_bins, seed=TRAIN_SEED))
  train_rows = {k: np.stack([np.asarray(row[k], np.int32) for row in packed]) for k in FIELDS}
  train_rows["full_labels"] = full_labels(train_rows)
  test_rows = [_pad(_sample(tokenizer, r, seq_len), seq_len) for r in test]
  return {"train": train_rows,
          "test": {k: np.stack([row[k] for row in test_rows]) for k in FIELDS}}


def load(cache_dir: str, name: str, **spec) -> dict[str, dict[str, np.ndarray]]:
  """`build(**spec)`, cached at cache_dir/<name>.npz under a key of the spec."""
  key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
  path = os.path.join(cache_dir, f"{name}-{key}.npz")
  if os.path.exists(path):
    with np.load(path) as stored:
      out: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
      for field, value in stored.items():
        split, key_ = field.split("/", 1)
        out[split][key_] = value
      return out
  data = build(**spec)
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"  # shards may build the same task at once
  np.savez_compressed(tmp, **{f"{s}/{k}": v for s, d in data.items() for k, v in d.items()})
  os.replace(tmp, path)
  return data
