"""The data section of a training config: sources and their mixture, tokenizer, row shape,
workers. Apart from the pipeline so that reading a config (the CLIs, plan, estimate) does not
import Grain."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class DataConfig:
  """`sources`: one dict per source, `kind` and its options (see sources.open_source) plus the
  mixture keys: `weight` (copies per epoch; 10 repeats GSM8K ten times, 0.5 takes half) and
  `cap` (at most this many examples per epoch, a fresh random subset each epoch). Every other
  key is the source's own (a tfds source's `name` is its dataset)."""
  # The training data: one dict per source, {kind, its options, weight, cap} (above).
  sources: list[dict[str, Any]] = dataclasses.field(
      default_factory=lambda: [{"kind": "synthetic", "size": 200_000}])
  tokenizer: str = "byte"  # "byte" or a path to a tokenizer.json
  seq_len: int = 256  # tokens per packed row
  batch_size: int = 32  # global rows per optimizer step, split across hosts
  packing_bins: int = 16  # first-fit candidates: more bins → less padding
  num_epochs: int | None = None  # passes over the data; None: repeat forever
  seed: int = 0  # shuffling and mixture sampling
  worker_count: int = 0  # >0: tokenize and pack in that many worker processes
  prefetch_buffer_size: int = 2  # batches prepared ahead of the training step
  on_error: str = "report"  # malformed records: "report" (count and warn) or "fail"
