"""Config --help: every key of both halves described, with its choices (runkit.config_help)."""

import dataclasses
from typing import Literal

from runkit import config_help


@dataclasses.dataclass
class _Example:
  """An example.

  gamma: the discount, from the docstring.
  """
  alpha: int = 1  # beside the field
  # above the field,
  # in two lines
  beta: str = "x"
  gamma: float = 0.9
  mode: Literal["a", "b"] = "a"  # a Literal's values are its choices
  bare: int = 0


def test_descriptions_come_from_comments_beside_above_or_the_docstring():
  d = config_help.field_descriptions(_Example)
  assert d == {"alpha": "beside the field", "beta": "above the field, in two lines",
               "gamma": "the discount, from the docstring.",
               "mode": "a Literal's values are its choices"}
  assert config_help.literal_choices(_Example) == {"mode": ("a", "b")}
  text = config_help.describe(_Example(), {"": [_Example]}, {"beta": ("x", "y")})
  assert "  beta = x\n      above the field, in two lines. Choices: x, y." in text
  assert "Choices: a, b." in text and "  bare = 0" in text


def test_every_hrm_training_key_is_described_with_its_choices():
  from hrm_jax.train import __main__ as cli
  from hrm_jax.train.config import help_text
  text = help_text()
  keys = [line.split(" = ")[0].strip() for line in text.splitlines() if " = " in line
          and not line.startswith("      ")]
  assert not _undescribed(text), _undescribed(text)
  assert len(keys) > 60 and "schedule.bp_schedule" in keys and "data.sources" in keys
  for choice in ("Choices: staircase, fixed.", "Choices: B, L, XL, XXL, tiny.",
                 "Choices: constant, cosine.", "Choices: none, full, dots, dots_no_batch.",
                 "jsonl, parquet"):
    assert choice in " ".join(text.split())  # wrapping may break a line inside
  import contextlib
  import io
  import pytest
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
    cli.main(["--help"])
  assert "schedule.bp_schedule = staircase" in out.getvalue()


def _undescribed(text: str) -> list[str]:
  lines = text.splitlines()
  return [k for k, nxt in zip(lines, lines[1:] + [""])
          if not k.startswith("      ") and not nxt.startswith("      ")]


def test_every_reflex_experiment_key_is_described_with_its_choices():
  from reflex_jax.run import cli
  from reflex_jax.run.config import help_text
  text = help_text()
  assert not _undescribed(text), _undescribed(text)
  flat = " ".join(text.split())
  for key in ("ppo.num_minibatches = 8", "sac.num_q = 2", "reflex.actor_loss = mse",
              "variants = ['baseline', 'reflex']"):
    assert key in text
  for choice in ("Choices: ppo, sac.", "reflex_actor_only, reflex_critic_only",
                 "Choices: constant, linear.", "Choices: squashed, gaussian.",
                 "brax/walker2d"):
    assert choice in flat
  import contextlib
  import io
  import pytest
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
    cli.main(["--help"])
  assert "sac.grad_updates_per_step = 8" in out.getvalue()
