"""The report's statistics."""

import zlib

import numpy as np

from reflex_jax.run.report import default_threshold, steps_to_threshold


def test_steps_to_threshold_takes_the_first_crossing_per_seed():
  returns_LS = np.array([[0.0, 1.0], [np.nan, 5.0], [9.0, 2.0], [10.0, 3.0]])
  steps = np.array([10, 20, 30, 40])
  np.testing.assert_array_equal(steps_to_threshold(returns_LS, steps, 5.0), [30, 20])
  assert np.isinf(steps_to_threshold(returns_LS, steps, 11.0)).all()


def test_default_threshold_works_for_negative_returns():
  # [logs, variants, seeds]: from about -10 to a best final mean of -2
  returns = np.array([[[np.nan, np.nan], [np.nan, np.nan]],
                      [[-10.0, -10.0], [-10.0, -10.0]],
                      [[-4.0, -4.0], [-2.0, -2.0]]])
  threshold = default_threshold(returns)
  assert threshold == -10.0 + 0.8 * 8.0
  assert -4.0 < threshold <= -2.0  # reachable by the better variant


def test_iqm_ignores_the_outer_quartiles_and_the_bootstrap_brackets_it():
  from reflex_jax.run.report import iqm, stratified_bootstrap_iqm
  x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0])
  assert iqm(x) == np.mean([2.0, 3.0, 4.0, 5.0])
  scores = np.random.default_rng(0).normal(0.5, 0.1, (4, 5))
  point, low, high = stratified_bootstrap_iqm(scores)
  assert low < point < high and high - low < 0.2


def test_area_under_curve_rewards_learning_sooner():
  from reflex_jax.run.report import area_under_curve
  steps = np.array([0, 10, 20])
  early = np.array([[0.0], [10.0], [10.0]])
  late = np.array([[0.0], [0.0], [10.0]])
  assert area_under_curve(early, steps)[0] == 7.5 and area_under_curve(late, steps)[0] == 2.5
  leading_nan = np.array([[np.nan], [4.0], [4.0]])  # no episode had finished at the first log
  assert area_under_curve(leading_nan, steps)[0] == 4.0


def _fake_results(env, algo, gain, seeds=5, kind="axial"):
  # zlib.crc32, not hash(): str hashes are salted per process, so the data would change.
  rng = np.random.default_rng(zlib.crc32(f"{env}/{algo}".encode()))
  steps = [100, 200, 300]
  curves, final = {}, {}
  for v, scale in (("baseline", 1.0), ("reflex", 1.0 + gain)):
    curve = np.outer([10.0, 50.0, 100.0], np.ones(seeds)) * scale + rng.normal(0, 1, (3, seeds))
    curves[v] = curve.tolist()
    final[v] = (curve[-1] + 5).tolist()
  return {"env": env, "algo": algo, "kind": kind, "variants": ["baseline", "reflex"],
          "seeds": list(range(seeds)), "env_steps": steps,
          "curves": {"episode_return": curves,
                     "policy_symmetry_error": {v: [[0.1] * seeds] * 3 for v in curves}},
          "final": {"eval/return": final}, "timing": {}}


def test_report_writes_curves_tables_gains_and_the_cross_task_iqm(tmp_path):
  import json
  from reflex_jax.run.report import aggregate, find_experiments, write_report
  for env, gain in (("brax/a", 0.2), ("brax/b", 0.3)):
    for algo in ("ppo", "sac"):
      d = tmp_path / env.replace("/", "_") / algo
      d.mkdir(parents=True)
      (d / "results.json").write_text(json.dumps(_fake_results(env, algo, gain)))
  dirs = find_experiments(str(tmp_path))
  assert len(dirs) == 4
  text = write_report(dirs, str(tmp_path))
  assert (tmp_path / "curves.png").stat().st_size > 10_000 and (tmp_path / "curves.pdf").exists()
  assert "reflex vs baseline: eval return +" in text and "## Across tasks" in text
  rows = aggregate([json.loads((tmp_path / "brax_a" / a / "results.json").read_text())
                    for a in ("ppo", "sac")])
  reflex = next(r for r in rows if r["variant"] == "reflex" and r["algo"] == "ppo")
  baseline = next(r for r in rows if r["variant"] == "baseline" and r["algo"] == "ppo")
  assert reflex["iqm"] > baseline["iqm"] and reflex["p_improvement"] > 0.9
  assert reflex["p_low"] <= reflex["p_improvement"] <= reflex["p_high"] <= 1.0
  assert (tmp_path / "profiles.png").stat().st_size > 10_000 and "profiles.png" in text


def test_performance_profile_counts_runs_above_each_threshold():
  from reflex_jax.run.report import performance_profile
  scores_TS = np.array([[0.0, 0.5, 1.0, 1.5], [0.2, 0.4, 0.6, 0.8]])
  taus = np.array([-1.0, 0.45, 0.9, 2.0])
  frac, low, high = performance_profile(scores_TS, taus)
  np.testing.assert_allclose(frac, [1.0, 5 / 8, 2 / 8, 0.0])
  assert np.all(low <= frac) and np.all(frac <= high)
  assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0  # no resample changes these
  assert high[1] > low[1]  # seeds differ within each task: the band has width


def test_stratified_probability_of_improvement_averages_tasks():
  from reflex_jax.run.report import stratified_probability_of_improvement
  x = np.array([[2.0, 3.0], [0.0, 0.0]])  # task 0: always better; task 1: always worse
  y = np.array([[1.0, 1.0], [1.0, 1.0]])
  p, low, high = stratified_probability_of_improvement(x, y)
  assert p == 0.5 and low == high == 0.5  # resampling seeds cannot change an all-or-none task
  p, low, high = stratified_probability_of_improvement(np.array([[1.0, 3.0]]),
                                                       np.array([[2.0, 2.0]]))
  assert p == 0.5 and low == 0.0 and high == 1.0


def test_fake_results_are_the_same_in_every_process():
  # The report tests compare variants on this data: it must not depend on PYTHONHASHSEED.
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  code = ("import json; from tests.reflex.test_report import _fake_results; "
          "print(json.dumps(_fake_results('brax/a', 'ppo', 0.2)))")
  outputs = {subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, check=True,
                            env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=root)).stdout
             for seed in ("1", "2")}
  assert len(outputs) == 1


def test_sample_efficiency_counts_steps_to_the_baselines_final_return():
  from reflex_jax.run.report import sample_efficiency
  steps = np.array([100, 200, 300, 400])
  baseline = np.array([[0.0, 0.0], [2.0, 1.0], [5.0, 3.0], [10.0, 10.0]])  # final mean 10
  faster = np.array([[0.0, 0.0], [10.0, 4.0], [12.0, 11.0], [12.0, 12.0]])  # at 200 and 300
  e = sample_efficiency(baseline, faster, steps)
  assert e["target"] == 10.0
  np.testing.assert_array_equal(e["baseline_steps"], [400, 400])
  np.testing.assert_array_equal(e["variant_steps"], [200, 300])
  assert e["ratio"] == 400 / 250 and e["low"] <= e["ratio"] <= e["high"]
  never = np.zeros((4, 2))  # a seed that never gets there counts as the whole budget
  e = sample_efficiency(baseline, never, steps)
  assert e["variant_reached"] == 0 and e["ratio"] == 1.0


def test_report_adds_the_peer_row_model_label_and_per_task_intervals(tmp_path):
  import json
  from reflex_jax.run.report import write_report
  results = _fake_results("brax/a", "ppo", 0.5)
  results["model"] = "equalized"
  d = tmp_path / "cell"
  d.mkdir()
  (d / "results.json").write_text(json.dumps(results))
  (d / "peer.json").write_text(json.dumps({"peer": "brax.training", "seeds": [0, 1, 2],
                                            "final": [100.0, 110.0, 120.0]}))
  text = write_report([str(d)], str(tmp_path))
  assert "brax/a (equalized)" in text
  assert "| brax.training (3 seeds) | 110.0 ± " in text
  ours = np.mean(results["final"]["eval/return"]["baseline"])
  assert f"eval return {100 * (ours - 110) / 110:+.1f} %" in text
  baseline = np.asarray(results["final"]["eval/return"]["baseline"])
  wins = np.mean([float(b > t) + 0.5 * float(b == t) for b in baseline for t in (100, 110, 120)])
  assert f"P(baseline > brax.training) {wins:.2f} [" in text
  assert "P(reflex > baseline) 1.00 [" in text and "sample-efficiency ratio" in text
  assert "on final train return, 1.00 [" in text and "] on AUC;" in text


def test_compare_runs_tables_one_variant_against_another_runs(tmp_path, capsys):
  import json
  import pytest
  from reflex_jax.run.report import main
  for name, gain in (("a", 0.5), ("b", 0.0)):
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps(_fake_results("brax/x", "ppo", gain)))
  assert main(["--compare", f"{tmp_path / 'a'}:reflex", f"{tmp_path / 'b'}:reflex"]) == 0
  out = capsys.readouterr().out
  assert out.count("| ") >= 8 and "P(first > second), eval return: 1.00 [" in out
  assert "P(first > second), AUC: 1.00 [" in out
  with pytest.raises(SystemExit):
    main(["--compare", f"{tmp_path / 'a'}:nope", f"{tmp_path / 'b'}:reflex"])
  assert "not 'nope'" in capsys.readouterr().err
  # The peer (evaluation only) as the second side
  (tmp_path / "b" / "peer.json").write_text(json.dumps({"peer": "brax.training", "seeds": [0, 1],
                                                        "final": [0.0, 1e6]}))
  assert main(["--compare", f"{tmp_path / 'a'}:baseline", f"{tmp_path / 'b'}:brax.training"]) == 0
  out = capsys.readouterr().out
  assert "P(first > second), eval return: 0.50 [" in out and "AUC" not in out.split("|")[-1]
  assert f"| {tmp_path / 'b'}:brax.training | 500000.0 ± " in out
