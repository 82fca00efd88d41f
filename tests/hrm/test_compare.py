"""`python -m hrm_jax.compare`: the budget plan, the data splits and labels, exact match as
greedy decoding would score it, and the tool end to end with an interrupted cell resumed."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import generate as generate_lib
from hrm_jax.compare import __main__ as cli
from hrm_jax.compare import config as config_lib
from hrm_jax.compare import data as data_lib
from hrm_jax.compare import study, train
from hrm_jax.data.layout import IGNORE
from hrm_jax.data.tokenizer import BOQ, EOQ, ByteTokenizer
from hrm_jax.model import Buffer, build
from hrm_jax.model.flops import train_flops
from runkit.errors import ConfigError
from runkit.stats import probability_of_improvement, probability_of_improvement_ci

TINY = ["model.hidden_size=32", "model.num_attention_heads=1", "model.head_dim=32",
        "model.num_layers_per_stack=1", "model.intermediate_size=64", "seeds=2",
        "batch_size=4", "evals=2", "blocks_per_eval=1", "eval_batch=8", "schedule.steps=4",
        "architectures=[hrm,transformer]", "objectives=[prefix_response,causal_full]",
        "tasks.add.task=addition", "tasks.add.options.digits=1", "tasks.add.options.cot=direct",
        "tasks.add.seq_len=32", "tasks.add.train_size=60", "tasks.add.test_size=16"]


def _config(tmp_path, *extra):
  return config_lib.load_config(overrides=[f"out_dir={tmp_path}", *TINY, *extra])


def test_flops_budget_is_matched_and_params_mode_matches_steps(tmp_path):
  config = _config(tmp_path, "architectures=[hrm,transformer,ut,trm,rins]", "schedule.steps=60",
                   "evals=3", "blocks_per_eval=2")
  hrm = study.plan(config, "hrm", "prefix_response", "add")
  # the staircase (2 → 5 over the first 12 updates) at each block's first update: 1, 11, 21, …
  assert hrm.steps == 60 and hrm.windows == (2, 4, 5, 5, 5, 5)
  budget = sum(hrm.block_flops)
  for arch in ("transformer", "ut", "trm", "rins"):
    p = study.plan(config, arch, "prefix_response", "add")
    model = config_lib.arch_config(config, arch, "prefix_response", 32)
    assert len(set(p.windows)) == 1  # the baselines' windows are fixed
    # FLOPs recounted from the model: within half a block of the HRM's budget
    per_block = p.block_steps * 4 * 32 * train_flops(model, 32, p.windows[0])
    assert sum(p.block_flops) == pytest.approx(len(p.windows) * per_block)
    assert abs(sum(p.block_flops) - budget) <= per_block / 2 + 1
  assert study.plan(config, "transformer", "prefix_response", "add").steps > 2 * hrm.steps
  params = _config(tmp_path, "match=params", "schedule.steps=60", "evals=3", "blocks_per_eval=2")
  assert study.plan(params, "transformer", "prefix_response", "add").steps == 60


def test_config_errors_name_the_key(tmp_path):
  for override, words in [("architectures=[hrm,lstm]", "architectures"),
                          ("objectives=[chat]", "objectives"), ("match=tokens", "match"),
                          ("tasks.add.test_size=12", "eval_batch"),
                          ("tasks.add.options.width=3", "tasks.add"),
                          ("objective_tasks=[mul]", "objective_tasks"), ("seeds=0", "seeds"),
                          ("objective_architectures=[ut]", "objective_architectures"),
                          ("tasks.add.batch_size=0", "tasks.add.batch_size")]:
    with pytest.raises(ConfigError, match=words):
      _config(tmp_path, override)


def test_splits_are_disjoint_and_labels_follow_the_objective():
  built = data_lib.build("sorting", {"length": [2, 3], "max_value": 10}, 48, 150, 32)
  train_rows, test = built["train"], built["test"]
  tok = ByteTokenizer()

  def instructions(rows):
    out = set()
    for r in range(rows["tokens"].shape[0]):
      for s in set(rows["segment_ids"][r].tolist()) - {0}:
        where = np.flatnonzero(rows["segment_ids"][r] == s)
        prefix = rows["prefix_lengths"][r, where[0]]
        out.add(tok.decode(rows["tokens"][r, where[:prefix]].tolist()))
    return out

  assert len(instructions(test)) == 32
  assert not instructions(train_rows) & instructions(test)
  assert len(instructions(train_rows)) == 150 and train_rows["tokens"].shape[1] == 48
  # full labels: every position of a sample predicts its next token; response labels agree
  seg, tokens, labels, full = (train_rows[k] for k in ("segment_ids", "tokens", "labels",
                                                       "full_labels"))
  for r in range(5):
    for i in range(47):
      if seg[r, i] and seg[r, i + 1] == seg[r, i]:
        assert full[r, i] == tokens[r, i + 1]
      if labels[r, i] != IGNORE:
        assert full[r, i] == labels[r, i]
    assert np.all(full[r][seg[r] == 0] == IGNORE)
  assert (full != IGNORE).sum() > 2 * (labels != IGNORE).sum()


def test_exact_match_is_what_greedy_decoding_writes(tmp_path):
  """A test row whose response is the model's own greedy output scores 1; one changed token
  scores 0. So exact match under teacher forcing equals greedy decoding's."""
  config = _config(tmp_path)
  model_config = config_lib.arch_config(config, "hrm", "prefix_response", 32).replace(
      vocab_size=512)
  model = build(model_config, rngs=nnx.Rngs(3))
  tok = ByteTokenizer()
  prompts = [[BOQ, *tok.encode(q), EOQ] for q in ("12+3", "7+45")]
  generated = generate_lib.generate(model, prompts, max_new_tokens=6, stop_token=None)
  rows = []
  for prompt, answer in zip(prompts, generated):
    tokens = np.asarray(prompt + answer[:-1], np.int32)
    labels = np.asarray([IGNORE] * (len(prompt) - 1) + answer, np.int32)
    rows.append(data_lib._pad({"tokens": tokens, "labels": labels,  # pylint: disable=protected-access
                               "prefix_lengths": np.full(len(tokens), len(prompt), np.int32)}, 32))
  test = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  wrong = {k: v.copy() for k, v in test.items()}
  last = np.flatnonzero(wrong["labels"][1] != IGNORE)[-1]
  wrong["labels"][1, last] = (wrong["labels"][1, last] + 1) % 512
  graphdef, params, buffers = nnx.split(model, nnx.Param, Buffer)
  stack = lambda tree: jax.tree.map(lambda x: x[None], tree)  # one seed
  for rows_, expected in ((test, 1.0), (wrong, 0.5)):
    got = train.evaluate(graphdef, stack(buffers), stack(params),
                         {k: jnp.asarray(v) for k, v in rows_.items()}, batch=2)
    assert float(got["exact_match"][0]) == expected


def test_probability_of_improvement():
  assert probability_of_improvement([1, 2, 3], [0, 0]) == 1.0
  assert probability_of_improvement([0, 0], [0, 0]) == 0.5  # ties count half
  assert probability_of_improvement([1, 3], [2, 2]) == 0.5
  point, low, high = probability_of_improvement_ci([0.9, 0.8, 0.95, 0.7, 0.85], [0.1, 0.2, 0.15,
                                                                                0.3, 0.05])
  assert point == 1.0 and low == high == 1.0
  _, low, high = probability_of_improvement_ci([1, 0, 1, 0], [0, 1, 0, 1])
  assert low < 0.5 < high


@pytest.mark.long
def test_the_tool_end_to_end_resumes_an_interrupted_cell(tmp_path, monkeypatch, capsys):
  args = ["objective_tasks=[add]"]
  whole = tmp_path / "whole"
  assert cli.main([*TINY, f"out_dir={whole}", *args, "--no-progress"]) == 0
  for name in ("report.md", "results.json", "curves_exact_match.png", "curves_exact_match.pdf",
               "curves_loss.png", "curves_loss.pdf"):
    assert (whole / name).exists(), name
  report = capsys.readouterr().out
  assert "P(HRM > baseline)" in report and "| add | causal_full |" in report
  results = json.loads((whole / "results.json").read_text())
  cells = {(c["task"], c["objective"], c["architecture"]): c for c in results["cells"]}
  assert len(cells) == 4
  hrm = cells["add", "prefix_response", "hrm"]
  assert len(hrm["loss"]) == 2 and len(hrm["loss"][0]) == 2  # evals × seeds
  assert hrm["loss"][-1][0] != hrm["loss"][-1][1]  # the seeds differ
  assert hrm["flops"][-1] == pytest.approx(hrm["total_flops"])
  assert cells["add", "causal_full", "hrm"]["loss"] != hrm["loss"]

  # Interrupt the first cell after its first evaluation; the rerun resumes it and ends with
  # the same numbers as the uninterrupted run.
  broken = tmp_path / "broken"
  real = train.evaluate
  calls = {"n": 0}

  def interrupted(*a, **k):
    calls["n"] += 1
    if calls["n"] == 2:
      raise KeyboardInterrupt
    return real(*a, **k)

  monkeypatch.setattr(study, "evaluate", interrupted)
  with pytest.raises(KeyboardInterrupt):
    cli.main([*TINY, f"out_dir={broken}", *args, "--no-progress"])
  assert os.path.isdir(broken / "cells/add/prefix_response/hrm.ckpt")
  monkeypatch.setattr(study, "evaluate", real)
  assert cli.main([*TINY, f"out_dir={broken}", *args, "--no-progress"]) == 0
  again = json.loads((broken / "cells/add/prefix_response/hrm.json").read_text())
  for key in ("loss", "exact_match", "token_accuracy", "flops", "train_loss"):
    np.testing.assert_allclose(again[key], hrm[key], rtol=1e-6, err_msg=key)
  assert not os.path.exists(broken / "cells/add/prefix_response/hrm.ckpt")

  # A finished study with other settings is refused, not mixed in.
  with pytest.raises(SystemExit):
    cli.main([*TINY, f"out_dir={broken}", *args, "--no-progress", "optimizer.learning_rate=0.1"])
  assert "other settings" in capsys.readouterr().err
