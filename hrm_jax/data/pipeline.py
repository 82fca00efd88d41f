"""The Grain input pipeline: mixture → per-epoch shuffle → sample layout → first-fit packing
→ per-host batches → worker prefetch.

Everything before packing is random access (a `grain.MapDataset`), so the iterator's state is
small (a position in the stream and the packer's buffer) and a restored iterator continues
exactly: no example is lost or repeated within an epoch.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

import grain
from absl import flags as absl_flags
import jax
import numpy as np
from grain import experimental as grain_experimental

from hrm_jax.data import sources as sources_lib
from hrm_jax.data.config import DataConfig
from hrm_jax.data.layout import (IGNORE, EmptyResponseError, InstructionTooLongError,
                                  make_sample)
from hrm_jax.data.tokenizer import PAD, load_tokenizer

log = logging.getLogger(__name__)


class EpochMixture:
  """Random access to the mixed stream: index i lies in epoch i // epoch_length.

  Each epoch takes from source s a random subset of min(len_s, cap_s) examples, repeated
  `weight_s` times (the fractional part as a further random subset), and shuffles all of
  them together, seeded by (seed, epoch): reproducible on any host, at any position.
  """

  def __init__(self, sources, weights, caps, seed: int, num_epochs: int | None):
    if not sources:
      raise ValueError("DataConfig.sources is empty: give at least one source")
    self._sources, self._seed = list(sources), seed
    self._takes = []
    for source, weight, cap in zip(self._sources, weights, caps):
      if weight < 0 or (cap is not None and cap < 0):
        raise ValueError(f"source weight and cap must be non-negative, got {weight}, {cap}")
      available = len(source) if cap is None else min(len(source), cap)
      self._takes.append((available, int(round(weight * available))))
    self.epoch_length = sum(take for _, take in self._takes)
    if self.epoch_length == 0:
      raise ValueError("the data mixture is empty: every source has 0 examples after caps "
                       "and weights")
    self._num_epochs = num_epochs if num_epochs is not None else 1_000_000
    self._cached_epoch, self._table = None, None

  def __len__(self) -> int:
    return self.epoch_length * self._num_epochs

  def _epoch_table(self, epoch: int) -> np.ndarray:
    """[epoch_length, 2] (source, index) pairs of one epoch."""
    if epoch != self._cached_epoch:
      rng = np.random.default_rng([self._seed, epoch])
      parts = []
      for s, (source, (available, take)) in enumerate(zip(self._sources, self._takes)):
        subset = rng.permutation(len(source))[:available] if available < len(source) \
            else np.arange(available)
        copies = np.concatenate([subset] * (take // max(available, 1))
                                + [rng.permutation(subset)[:take % max(available, 1)]])
        parts.append(np.stack([np.full(take, s), copies], axis=1))
      table = np.concatenate(parts)
      self._table, self._cached_epoch = table[rng.permutation(len(table))], epoch
    return self._table

  def __getitem__(self, index: int):
    epoch, position = divmod(int(index), self.epoch_length)
    source, item = self._epoch_table(epoch)[position]
    return self._sources[source][int(item)]


DROPPED = collections.Counter()  # per process: (source task, reason) → records dropped


@dataclasses.dataclass(frozen=True)
class Tokenize:
  """Record → the spec's sample (response-only labels; an over-long response is truncated).
  Records that cannot make a sample (empty response, instruction longer than the row)
  become None, are counted in DROPPED and logged: the 1st, 10th, 100th … of each kind."""
  tokenizer: Any
  max_length: int

  def __call__(self, record):
    try:
      sample = make_sample(self.tokenizer, record.instruction, record.response, record.tags,
                           max_length=self.max_length)
    except (EmptyResponseError, InstructionTooLongError) as error:
      key = (record.task, type(error).__name__)
      DROPPED[key] += 1
      if str(DROPPED[key]).strip("0") == "1":
        log.warning("dropped %d record(s) of %r so far: %s", DROPPED[key], record.task, error)
      return None
    n = len(sample.tokens)
    return {"tokens": sample.tokens, "labels": sample.labels,
            "prefix_lengths": np.full(n, sample.prefix_length, np.int32)}


def pack_rows(samples: grain.IterDataset, seq_len: int, bins: int, seed: int) -> grain.IterDataset:
  """First-fit packing into rows of `seq_len`: per token the sample's segment id (1, 2, …;
  0 is padding), position (restarting at 0 per sample) and prefix length."""
  lengths = {"tokens": seq_len, "labels": seq_len, "prefix_lengths": seq_len}
  packed = grain_experimental.FirstFitPackIterDataset(
      samples, length_struct=lengths, num_packing_bins=bins, seed=seed, shuffle_bins=True,
      padding_struct={"tokens": PAD, "labels": IGNORE, "prefix_lengths": 0})
  return packed.map(_row_fields)


def _row_fields(packed: dict) -> dict:
  return {"tokens": packed["tokens"], "labels": packed["labels"],
          "segment_ids": packed["tokens_segment_ids"], "positions": packed["tokens_positions"],
          "prefix_lengths": packed["prefix_lengths"]}


def open_sources(config: DataConfig):
  """(sources, weights, caps) from the config's source dicts."""
  opened, weights, caps = [], [], []
  for spec in config.sources:
    spec = dict(spec)
    weights.append(float(spec.pop("weight", 1.0)))
    caps.append(spec.pop("cap", None))
    if spec.get("kind") != "synthetic":
      spec.setdefault("on_error", config.on_error)
    opened.append(sources_lib.open_source(spec))
  return opened, weights, caps


def make_dataset(config: DataConfig, *, process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
  """This host's stream of packed batches: dicts of [batch_size / hosts, seq_len] int32."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if config.batch_size % process_count:
    raise ValueError(f"DataConfig.batch_size {config.batch_size} must divide evenly over "
                     f"{process_count} hosts")
  if config.on_error not in ("report", "fail"):
    raise ValueError(f"DataConfig.on_error={config.on_error!r}; choose 'report' or 'fail'")
  opened, weights, caps = open_sources(config)
  stream = grain.MapDataset.source(EpochMixture(opened, weights, caps, config.seed,
                                                config.num_epochs))
  stream = stream[process_index::process_count]  # each host reads its own examples
  tokenizer = load_tokenizer(config.tokenizer)
  tokenize = Tokenize(tokenizer, config.seq_len)
  _require_a_fitting_record(stream, tokenize)
  samples = stream.map(tokenize).filter(_is_sample)
  rows = pack_rows(samples.to_iter_dataset(), config.seq_len, config.packing_bins,
                   config.seed)
  batches = rows.batch(config.batch_size // process_count, drop_remainder=True)
  if config.worker_count > 0:
    # Grain reads absl flags in its workers (with jaxlib ≥ 0.11, the worker-profiling flag);
    # outside absl.app nobody parses them, so accept their defaults instead of failing.
    if not absl_flags.FLAGS.is_parsed():
      absl_flags.FLAGS.mark_as_parsed()
    batches = batches.mp_prefetch(grain.multiprocessing.MultiprocessingOptions(
        num_workers=config.worker_count, per_worker_buffer_size=config.prefetch_buffer_size))
  return batches


def _require_a_fitting_record(stream: grain.MapDataset, tokenize: Tokenize,
                              probe: int = 1000) -> None:
  """Fails at start when none of the first `probe` records (a random sample: the mixture is
  shuffled) makes a sample: the packer would otherwise wait forever for one."""
  before = DROPPED.copy()
  try:
    if any(tokenize(stream[i]) is not None for i in range(min(len(stream), probe))):
      return
    reasons = ", ".join(f"{n} {reason} ({task})" for (task, reason), n in
                        (DROPPED - before).most_common())
  finally:
    DROPPED.clear()
    DROPPED.update(before)  # the probe's drops are counted again when training reads them
  raise ValueError(f"no record fits a row of data.seq_len={tokenize.max_length}: the first "
                   f"{min(len(stream), probe)} records were all dropped ({reasons}); raise "
                   "data.seq_len or check the data")


def _is_sample(sample) -> bool:
  return sample is not None

