"""The Grain pipeline: packing invariants, mixture weights and caps, exact iterator resume."""

import collections
import dataclasses
import json
import re
import sys

import grain
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hrm_jax.data.layout import IGNORE
from hrm_jax.data.pipeline import DataConfig, EpochMixture, make_dataset, open_sources, pack_rows
from hrm_jax.data.synthetic import Record
from hrm_jax.data.tokenizer import ByteTokenizer


def _samples(lengths_and_prefixes):
  out = []
  for i, (n, prefix) in enumerate(lengths_and_prefixes):
    tokens = (np.arange(n, dtype=np.int32) + 1000 * (i + 1)).astype(np.int32)
    labels = np.where(np.arange(n) >= prefix - 1, tokens + 1, IGNORE).astype(np.int32)
    out.append({"tokens": tokens, "labels": labels,
                "prefix_lengths": np.full(n, prefix, np.int32)})
  return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 24), st.integers(1, 10)), min_size=1, max_size=30),
       st.integers(1, 4))
def test_packing_keeps_every_token_once_with_its_positions_segments_and_labels(spec, bins):
  spec = [(n, min(p, n)) for n, p in spec]
  samples = _samples(spec)
  rows = list(pack_rows(grain.MapDataset.source(samples).to_iter_dataset(), 24, bins, seed=0))
  seen = {}
  for row in rows:
    assert all(row[k].shape == (24,) for k in row)
    pad = row["segment_ids"] == 0
    assert np.all(row["labels"][pad] == IGNORE) and np.all(row["tokens"][pad] == 0)
    for seg in np.unique(row["segment_ids"][~pad]):
      where = np.flatnonzero(row["segment_ids"] == seg)
      assert np.all(np.diff(where) == 1), "a sample is contiguous in its row"
      tokens = row["tokens"][where]
      sample_index = int(tokens[0]) // 1000 - 1
      assert sample_index not in seen, "no sample is packed twice"
      seen[sample_index] = True
      expected = samples[sample_index]
      np.testing.assert_array_equal(tokens, expected["tokens"])
      np.testing.assert_array_equal(row["labels"][where], expected["labels"])
      np.testing.assert_array_equal(row["positions"][where], np.arange(len(where)))
      np.testing.assert_array_equal(row["prefix_lengths"][where], expected["prefix_lengths"])
  assert sorted(seen) == list(range(len(samples))), "no sample is lost"


def _records(name, n):
  return [Record(f"{name} q{i}", f"{name} a{i}", ("direct",), name) for i in range(n)]


def test_mixture_applies_weights_and_caps_with_a_fresh_subset_each_epoch():
  big, small = _records("big", 100), _records("small", 5)
  mix = EpochMixture([big, small], weights=[1.0, 3.0], caps=[20, None], seed=0, num_epochs=3)
  assert mix.epoch_length == 20 + 15
  epochs = [[mix[e * mix.epoch_length + i] for i in range(mix.epoch_length)] for e in range(3)]
  for epoch in epochs:
    counts = collections.Counter(r.task for r in epoch)
    assert counts == {"big": 20, "small": 15}
    small_counts = collections.Counter(r.instruction for r in epoch if r.task == "small")
    assert set(small_counts.values()) == {3}, "weight 3 repeats every small example 3 times"
    assert len({r.instruction for r in epoch if r.task == "big"}) == 20, "a cap takes distinct examples"
  first, second = ({r.instruction for r in e if r.task == "big"} for e in epochs[:2])
  assert first != second, "the capped subset changes between epochs"
  assert len({r.task for r in epochs[0][:10]}) == 2, "sources are shuffled together"
  again = EpochMixture([big, small], [1.0, 3.0], [20, None], seed=0, num_epochs=3)
  assert [again[i] for i in range(len(again))] == sum(epochs, []), "reproducible"


def test_mixture_rejects_an_empty_mix():
  with pytest.raises(ValueError, match="empty"):
    EpochMixture([_records("a", 3)], [0.0], [None], seed=0, num_epochs=1)


def _config(**changes):
  base = DataConfig(sources=[{"kind": "synthetic", "size": 500, "seed": 3}], seq_len=64,
                    batch_size=4, packing_bins=4, num_epochs=None, seed=7)
  return dataclasses.replace(base, **changes)


def test_the_mixture_takes_weight_and_cap_and_leaves_name_to_the_source(monkeypatch):
  """`name` is no mixture key: a tfds source gets it as its dataset, another kind refuses it."""
  with pytest.raises(ValueError, match="synthetic source: unknown key 'name'"):
    open_sources(_config(sources=[{"kind": "synthetic", "size": 5, "name": "mix"}]))
  opened = []

  class FakeTfds:  # tensorflow_datasets.data_source, recording the dataset asked for
    @staticmethod
    def data_source(name, split, data_dir):
      opened.append((name, split, data_dir))
      return [{"q": b"1 + 1?", "a": b"2"}] * 3

  monkeypatch.setitem(sys.modules, "tensorflow_datasets", FakeTfds)
  sources, weights, caps = open_sources(_config(sources=[
      {"kind": "tfds", "name": "gsm8k", "split": "train", "instruction_key": "q",
       "response_key": "a", "weight": 2, "cap": 1}]))
  assert opened == [("gsm8k", "train", None)] and sources[0].task == "gsm8k"
  assert (weights, caps) == ([2.0], [1])


def test_batches_have_the_row_layout_and_labels_only_on_responses():
  batch = next(iter(make_dataset(_config())))
  assert set(batch) == {"tokens", "labels", "segment_ids", "positions", "prefix_lengths"}
  assert all(v.shape == (4, 64) and v.dtype == np.int32 for v in batch.values())
  labelled = batch["labels"] != IGNORE
  # A labelled position is never inside its sample's instruction (except EOQ, which predicts
  # the first response token).
  assert np.all(batch["positions"][labelled] >= batch["prefix_lengths"][labelled] - 1)
  assert np.all(batch["segment_ids"][labelled] > 0)


def test_restored_iterator_continues_exactly():
  dataset = make_dataset(_config())
  reference = iter(dataset)
  for _ in range(3):
    next(reference)
  state = reference.get_state()
  expected = [next(reference) for _ in range(4)]
  resumed = iter(make_dataset(_config()))
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def _instructions_read(config, process_index, process_count) -> list[int]:
  """The example numbers of every sample in the host's batches over its whole epoch."""
  tokenizer = ByteTokenizer()
  seen = []
  for batch in make_dataset(config, process_index=process_index, process_count=process_count):
    for tokens, segments in zip(batch["tokens"], batch["segment_ids"]):
      for segment in np.unique(segments[segments > 0]):
        text = tokenizer.decode(tokens[segments == segment])
        seen.append(int(re.search(r"example (\d+)\?", text).group(1)))
  return seen


def test_hosts_read_disjoint_examples(tmp_path):
  count = 60
  path = tmp_path / "numbered.jsonl"
  path.write_text("".join(json.dumps({"instruction": f"example {i}?", "response": f"answer {i}"})
                          + "\n" for i in range(count)))
  config = _config(sources=[{"kind": "jsonl", "path": str(path)}], num_epochs=1, batch_size=4)
  first = next(iter(make_dataset(config, process_index=0, process_count=2)))
  assert first["tokens"].shape == (2, 64)
  hosts = [_instructions_read(config, i, 2) for i in range(2)]
  for seen in hosts:
    assert len(seen) == len(set(seen)), "a host reads each example once per epoch"
  assert not set(hosts[0]) & set(hosts[1]), "no example is read by both hosts"
  # Only what the last partial batch of each host drops is missing.
  assert len(set(hosts[0]) | set(hosts[1])) >= count - 2 * 2 * 64 // 20
  with pytest.raises(ValueError, match="divide evenly"):
    make_dataset(_config(batch_size=3), process_index=0, process_count=2)


def test_worker_processes_resume_exactly():
  dataset = make_dataset(_config(worker_count=2))
  reference = iter(dataset)
  for _ in range(3):
    next(reference)
  state = reference.get_state()
  expected = [next(reference) for _ in range(3)]
  reference.close()
  resumed = iter(make_dataset(_config(worker_count=2)))
  resumed.set_state(state)
  got = [next(resumed) for _ in range(3)]
  resumed.close()
  for want, have in zip(expected, got):
    np.testing.assert_array_equal(have["tokens"], want["tokens"])
