"""Data that cannot make a single training row fails at start with the reason."""

import pytest

from hrm_jax.data import pipeline
from hrm_jax.data.pipeline import DataConfig, make_dataset


def test_a_row_too_short_for_every_record_is_an_error_not_a_hang():
  config = DataConfig(sources=[{"kind": "synthetic", "size": 50, "seed": 3}], seq_len=4,
                      batch_size=2)
  before = pipeline.DROPPED.copy()
  with pytest.raises(ValueError) as error:
    make_dataset(config)
  message = str(error.value)
  # The stream repeats the 50 records epoch after epoch: the probe reads 1,000 of it.
  assert message.startswith("no record fits a row of data.seq_len=4: the first 1000 records "
                            "were all dropped (")
  assert "InstructionTooLongError" in message and "raise data.seq_len" in message
  assert pipeline.DROPPED == before  # the probe leaves the drop counts as they were


def test_data_that_fits_starts_without_touching_the_drop_counts():
  before = pipeline.DROPPED.copy()
  dataset = make_dataset(DataConfig(sources=[{"kind": "synthetic", "size": 50, "seed": 3}],
                                    seq_len=64, batch_size=2))
  assert pipeline.DROPPED == before  # only reading the stream counts its drops
  assert next(iter(dataset))["tokens"].shape == (2, 64)
