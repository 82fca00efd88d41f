"""W&B logging (offline) and the CSV mirrors of both halves' metric files."""

import csv
import os

import numpy as np
import pytest

from runkit import wandb_log
from runkit.errors import ConfigError

wandb = pytest.importorskip("wandb")


class FakeRun:
  """Records what a W&B run is given."""

  def __init__(self, name="run", **kwargs):
    self.name, self.kwargs, self.logged, self.finished = name, kwargs, [], False

  def log(self, values, step):
    self.logged.append((step, dict(values)))

  def finish(self):
    self.finished = True


def _offline_runs(directory):
  return sorted(d for d in os.listdir(os.path.join(directory, "wandb"))
                if d.startswith("offline-run-"))


def test_hrm_metric_writer_mirrors_lines_to_csv_and_the_wandb_run(tmp_path):
  from hrm_jax.train.metrics import MetricWriter  # pylint: disable=import-outside-toplevel
  run = FakeRun()
  writer = MetricWriter(str(tmp_path), tensorboard=False, wandb_run=run)
  writer.write(10, {"loss": 2.5})
  writer.write(20, {"loss": 2.0, "eval/loss": 2.2})  # an evaluation line adds a column
  writer.close()
  with open(tmp_path / "metrics.csv", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert [r["step"] for r in rows] == ["10", "20"] and rows[0]["eval/loss"] == ""
  assert float(rows[1]["eval/loss"]) == 2.2
  assert run.logged == [(10, {"loss": 2.5}), (20, {"loss": 2.0, "eval/loss": 2.2})]
  assert run.finished


def test_reflex_metric_log_gives_each_variant_and_seed_its_wandb_run(tmp_path, monkeypatch):
  from reflex_jax.run import logging as run_logging  # pylint: disable=import-outside-toplevel
  runs = {}
  monkeypatch.setattr(run_logging.wandb_log, "start",
                      lambda directory, name, **kw: runs.setdefault(name, FakeRun(name, **kw)))
  log = run_logging.MetricLog(str(tmp_path), tensorboard=False,
                              wandb={"project": "test", "mode": "offline", "config": {}})
  log.write(1, 100, ["baseline", "reflex"], [0, 1],
            {"episode_return": np.arange(4.0).reshape(2, 2)})
  log.close()
  assert sorted(runs) == ["baseline_seed0", "baseline_seed1", "reflex_seed0", "reflex_seed1"]
  assert runs["reflex_seed1"].logged == [(100, {"episode_return": 3.0})]
  assert runs["reflex_seed1"].kwargs["group"] == os.path.normpath(str(tmp_path))
  assert all(r.finished for r in runs.values())


def test_offline_runs_are_written_under_the_run_directory(tmp_path):
  run = wandb_log.start(str(tmp_path), "smoke", {"lr": 1e-3}, project="test")
  run.log({"loss": 1.0}, step=1)
  run.finish()
  assert len(_offline_runs(tmp_path)) == 1


def test_a_bad_mode_is_refused_before_anything_runs():
  with pytest.raises(ConfigError, match="wandb mode 'cloud'; choose one of"):
    wandb_log.start("/tmp", "x", {}, project="p", mode="cloud")
  from reflex_jax.run import config as run_config  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="wandb_mode 'cloud'"):
    run_config.load_config(overrides=["wandb=true", "wandb_mode=cloud"])
  from hrm_jax.train.config import load_config  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="log.wandb_mode='cloud' is invalid"):
    load_config([], ["log.wandb=true", "log.wandb_mode=cloud"])
