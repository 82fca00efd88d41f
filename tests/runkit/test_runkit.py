"""runkit, what both halves share: configs name the bad key, a metric file killed mid-write
reads back, a damaged newest checkpoint is skipped; the halves' error names are its classes."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from runkit import config, metrics
from runkit.checkpoints import CheckpointError, Checkpoints
from runkit.errors import ConfigError, NonFiniteError
from tests.helpers import corrupt_arrays


def test_both_halves_raise_the_shared_classes():
  from hrm_jax.train import config as hrm_config, loop  # pylint: disable=import-outside-toplevel
  from reflex_jax import driver  # pylint: disable=import-outside-toplevel
  from reflex_jax.run import config as run_config  # pylint: disable=import-outside-toplevel
  assert run_config.ConfigError is hrm_config.ConfigError is ConfigError
  assert driver.NonFiniteError is loop.NonFiniteError is NonFiniteError


@dataclasses.dataclass
class Section:
  rate: float = 0.1

  def __post_init__(self):
    if self.rate < 0:
      raise ValueError(f"Section.rate must be >= 0, got {self.rate}")


@dataclasses.dataclass
class Schema:
  name: str = "default"
  section: Section = dataclasses.field(default_factory=Section)


def test_layers_merge_in_order_and_a_bad_key_or_value_is_named(tmp_path):
  path = tmp_path / "c.yaml"
  path.write_text("name: file\nsection: {rate: 0.5}\n")
  layers = [*config.yaml_layers([path]), {"name": "dict"},
            config.override_layer(["section.rate=0.7"])]
  assert config.build(Schema, layers) == Schema("dict", Section(0.7))
  with pytest.raises(ConfigError, match=r"'rat' not in 'Section'.*\(key: section.rat\)$"):
    config.build(Schema, [config.override_layer(["section.rat=1"])])
  with pytest.raises(ConfigError, match=r"\(key: section.rate\)$"):
    config.build(Schema, [config.override_layer(["section.rate=fast"])])
  # A dataclass's own check, renamed to the key as written.
  with pytest.raises(ConfigError, match=r"^section.rate must be >= 0, got -1.0$"):
    config.build(Schema, [config.override_layer(["section.rate=-1"])],
                 sections={"Section.": "section."})
  with pytest.raises(ConfigError, match=r"overrides must be key=value, got \['rate'\]"):
    config.override_layer(["rate"])


def test_a_torn_last_metric_line_is_dropped(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  metrics.write_metrics(path, [{"step": 1}])
  metrics.write_metrics(path, [{"step": 2, "note": "é"}], append=True)
  with open(path, "ab") as f:
    f.write('{"step": 3, "note": "é'.encode()[:-1])  # killed mid-write, inside a character
  assert metrics.read_metrics(path) == [{"step": 1}, {"step": 2, "note": "é"}]
  metrics.write_metrics(path, [{"step": 1}])  # a rewrite replaces the whole file
  assert metrics.read_metrics(path) == [{"step": 1}]


def test_a_non_finite_metric_is_written_as_json_null(tmp_path):
  path = tmp_path / "metrics.jsonl"
  metrics.write_metrics(str(path), [{"step": 1, "loss": float("nan"), "grad_norm": float("inf"),
                                     "lr": 0.5}])
  strict = lambda token: pytest.fail(f"{token} is not JSON")  # what jq and browsers enforce
  assert json.loads(path.read_text(), parse_constant=strict) == {
      "step": 1, "loss": None, "grad_norm": None, "lr": 0.5}


def test_a_bad_metric_line_before_the_last_is_named(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
  with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON metric line"):
    metrics.read_metrics(str(path))


ABSTRACT = {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}


def _checkpoints(directory) -> Checkpoints:
  return Checkpoints(str(directory), json_item="extra", keep=3)


def _save(checkpoints: Checkpoints, step: int) -> None:
  checkpoints.save(step, {"w": jnp.full((3,), float(step))}, {"step": step})


def test_a_damaged_newest_checkpoint_is_skipped_and_set_aside_only_when_asked(tmp_path,
                                                                               caplog):
  checkpoints = _checkpoints(tmp_path)
  for step in (1, 2):
    _save(checkpoints, step)
  checkpoints.close()
  corrupt_arrays(tmp_path / "2")
  checkpoints = _checkpoints(tmp_path)
  with pytest.raises(CheckpointError, match=r"checkpoint step 2 in .* cannot be read"):
    checkpoints.restore(ABSTRACT, 2)
  state, extra = checkpoints.restore(ABSTRACT)  # reading only: nothing is moved
  assert extra == {"step": 1} and np.all(state["w"] == 1.0)
  assert checkpoints.latest_step() == 2 and "checkpoint step 2" in caplog.text
  step, state, extra = checkpoints.restore_latest(ABSTRACT, set_aside=True)
  assert step == 1 and extra == {"step": 1} and "restored step 1" in caplog.text
  assert (tmp_path / "unreadable.2").is_dir() and checkpoints.latest_step() == 1
  _save(checkpoints, 2)  # the resumed run writes that step again
  checkpoints.close()
  assert _checkpoints(tmp_path).restore_latest(ABSTRACT)[0] == 2


def test_no_readable_checkpoint_names_the_steps(tmp_path):
  checkpoints = _checkpoints(tmp_path)
  with pytest.raises(FileNotFoundError, match="no checkpoint in"):
    checkpoints.restore_latest(ABSTRACT)
  _save(checkpoints, 1)
  checkpoints.close()
  corrupt_arrays(tmp_path / "1")
  with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*: steps \[1\]"):
    _checkpoints(tmp_path).restore_latest(ABSTRACT, set_aside=True)
  assert not (tmp_path / "unreadable.1").exists()  # nothing to resume from: nothing moved
