"""Figures and tables from finished experiments (run directories with results.json).

    python -m reflex_jax.run.report runs/grid          # every experiment under runs/grid

Writes `curves.png` / `curves.pdf` (training return, mean and 95 % bootstrap CI over seeds)
and `report.md`: per task and algorithm, final evaluation return, area under the learning
curve and steps to a return threshold for each variant, with the Reflex gain in %; and across
tasks the interquartile mean (IQM) of normalized scores with stratified-bootstrap 95 % CIs,
the average probability of improvement with its interval, and performance profiles
(`profiles.png`), as rliable (Agarwal et al., 2021) defines them. rliable itself is not a
dependency: rliable 1.2.0 requires arch < 8, and arch 7 fails to import with pandas 3.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

from reflex_jax.run.experiment import load_results
from runkit import plots
from runkit.stats import BOOTSTRAP, bootstrap_ci, mean_ci, probability_of_improvement_ci, win_rate

LABELS = {"baseline": "baseline", "reflex": "Reflex"}


# --- statistics -------------------------------------------------------------------------------

def iqm(x, axis=-1):
  """Interquartile mean: the mean of the middle 50 % (robust to outlier seeds and tasks)."""
  from scipy import stats  # pylint: disable=import-outside-toplevel
  return stats.trim_mean(x, 0.25, axis=axis)


def resample_within_tasks(scores_TS: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """BOOTSTRAP stratified resamples [BOOTSTRAP, T, S]: seeds drawn with replacement within
  each task (rliable's stratified bootstrap)."""
  scores_TS = np.asarray(scores_TS, np.float64)
  idx = rng.integers(0, scores_TS.shape[1], (BOOTSTRAP,) + scores_TS.shape)
  return np.take_along_axis(scores_TS[None], idx, axis=2)


def stratified_bootstrap_iqm(scores_TS: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
  """IQM over all (task, seed) scores and its 95 % CI, resampling seeds within each task."""
  point = float(iqm(np.ravel(scores_TS)))
  resampled = resample_within_tasks(scores_TS, np.random.default_rng(seed)).reshape(BOOTSTRAP, -1)
  low, high = np.percentile(iqm(resampled, axis=1), [2.5, 97.5])
  return point, float(low), float(high)


def steps_to_threshold(returns_LS: np.ndarray, env_steps_L: np.ndarray,
                       threshold: float) -> np.ndarray:
  """Per seed, the first logged env step whose training return reaches `threshold` (inf if never)."""
  reached = np.nan_to_num(np.asarray(returns_LS, np.float64), nan=-np.inf) >= threshold
  first = np.argmax(reached, axis=0)
  return np.where(reached.any(axis=0), np.asarray(env_steps_L)[first], np.inf)


def default_threshold(returns_LVS: np.ndarray) -> float:
  """80 % of the way from the first logged mean return to the best variant's final mean;
  unlike 80 % of the best return, this works for negative returns too."""
  means_LV = np.nanmean(np.asarray(returns_LVS, np.float64), axis=-1)
  start = next((float(np.nanmean(m)) for m in means_LV if np.isfinite(m).any()), 0.0)
  best = float(np.nanmax(means_LV[-1]))
  return start + 0.8 * (best - start)


def area_under_curve(returns_LS: np.ndarray, env_steps_L: np.ndarray) -> np.ndarray:
  """Per seed, the mean training return over the run (trapezoid over env steps, divided by
  the span): higher means it learned sooner, not only better. Intervals before the first
  finished episode count from the first measured return."""
  r = np.asarray(returns_LS, np.float64)
  first = np.nanmean(np.where(np.isfinite(r), r, np.nan), axis=0)
  r = np.stack([fill_leading(r[:, s], first[s]) for s in range(r.shape[1])], axis=1)
  steps = np.asarray(env_steps_L, np.float64)
  if steps.size < 2:
    return r[-1]
  return np.trapezoid(r, steps, axis=0) / (steps[-1] - steps[0])


def sample_efficiency(baseline_LS: np.ndarray, variant_LS: np.ndarray, env_steps_L: np.ndarray,
                      seed: int = 0) -> dict:
  """Steps each side takes to reach the baseline's final mean training return, and the
  sample-efficiency ratio (baseline's mean steps / the variant's; > 1: the variant gets there
  sooner) with a 95 % bootstrap interval resampling each side's seeds. A seed that never gets
  there counts as the whole budget (so the ratio is conservative), and `reached` says how
  many did."""
  steps = np.asarray(env_steps_L, np.float64)
  target = float(np.nanmean(np.asarray(baseline_LS, np.float64)[-1]))
  hits = {}
  for name, r_LS in (("baseline", baseline_LS), ("variant", variant_LS)):
    hit = steps_to_threshold(r_LS, steps, target)
    hits[name] = (np.where(np.isfinite(hit), hit, steps[-1]), int(np.isfinite(hit).sum()))
  (b, b_reached), (v, v_reached) = hits["baseline"], hits["variant"]
  rng = np.random.default_rng(seed)
  b_boot = b[rng.integers(0, b.size, (BOOTSTRAP, b.size))].mean(1)
  v_boot = v[rng.integers(0, v.size, (BOOTSTRAP, v.size))].mean(1)
  low, high = np.percentile(b_boot / v_boot, [2.5, 97.5])
  return dict(target=target, baseline_steps=b, variant_steps=v, baseline_reached=b_reached,
              variant_reached=v_reached, ratio=float(b.mean() / v.mean()), low=float(low),
              high=float(high))


def fill_leading(x: np.ndarray, fallback: float) -> np.ndarray:
  """Leading NaNs take the first measured value (forward-filled after that)."""
  out = x.copy()
  finite = np.flatnonzero(np.isfinite(out))
  if finite.size == 0:
    return np.full_like(out, fallback)
  out[:finite[0]] = out[finite[0]]
  for i in range(finite[0] + 1, out.size):
    if not np.isfinite(out[i]):
      out[i] = out[i - 1]
  return out


# --- one experiment ---------------------------------------------------------------------------

def summarize(results: dict, threshold: float | None = None) -> dict:
  """Per variant: final eval return, final training return, AUC, steps to threshold (with
  the count of seeds reaching it) and symmetry errors; gains of each Reflex variant over the
  baseline in % of |baseline|."""
  steps = np.asarray(results["env_steps"])
  curves = results["curves"]["episode_return"]
  returns_LVS = np.stack([np.asarray(curves[v], np.float64) for v in results["variants"]], 1)
  if threshold is None:
    threshold = default_threshold(returns_LVS)
  rows = {}
  for v in results["variants"]:
    r_LS = np.asarray(curves[v], np.float64)
    hit = steps_to_threshold(r_LS, steps, threshold)
    rows[v] = dict(
        eval_return=np.asarray(results["final"]["eval/return"][v], np.float64),
        final_return=r_LS[-1], auc=area_under_curve(r_LS, steps), steps_to_threshold=hit,
        reached=int(np.isfinite(hit).sum()),
        policy_symmetry_error=_last(results, "policy_symmetry_error", v),
        value_symmetry_error=_last(results, "value_symmetry_error", v))
  gains = {}
  if "baseline" in rows:
    for v in rows:
      if v != "baseline":
        gains[v] = {k: _gain(np.nanmean(rows[v][k]), np.nanmean(rows["baseline"][k]))
                    for k in ("eval_return", "auc")}
        gains[v]["p_improvement"] = {k: probability_of_improvement_ci(
            rows[v][k], rows["baseline"][k]) for k in ("eval_return", "final_return", "auc")}
        gains[v]["sample_efficiency"] = sample_efficiency(
            np.asarray(curves["baseline"], np.float64), np.asarray(curves[v], np.float64), steps)
  peer = results.get("peer")
  if peer:
    rows["brax.training"] = dict(eval_return=np.asarray(peer["final"], np.float64),
                                 seeds=len(peer["seeds"]))
  return dict(threshold=threshold, rows=rows, gains=gains, env_steps=int(steps[-1]),
              seeds=len(results["seeds"]))


def _last(results, name, variant) -> float:
  curve = results["curves"].get(name, {}).get(variant)
  return float(np.nanmean(curve[-1])) if curve is not None else np.nan


def _gain(value: float, baseline: float) -> float:
  return 100.0 * (value - baseline) / abs(baseline) if baseline else np.nan


def format_experiment(results: dict, threshold: float | None = None) -> str:
  """A markdown table of one experiment (what `python -m reflex_jax.train` prints)."""
  s = summarize(results, threshold)
  lines = [f"**{title(results)}** ({results['kind'] or 'no reflection'}), "
           f"{results['algo'].upper()}: {s['seeds']} seeds per variant, {s['env_steps']:,} env "
           f"steps each; threshold {s['threshold']:.1f}", "",
           "| variant | eval return | final train return | AUC | steps to threshold (reached) "
           "| policy sym err | value sym err |", "|---|---:|---:|---:|---:|---:|---:|"]
  for v, row in s["rows"].items():
    if "steps_to_threshold" not in row:  # the peer: final evaluation only
      lines.append(f"| {v} ({row['seeds']} seeds) | {_pm(row['eval_return'])} | — | — | — | — "
                   "| — |")
      continue
    hits = row["steps_to_threshold"][np.isfinite(row["steps_to_threshold"])]
    lines.append(
        f"| {v} | {_pm(row['eval_return'])} | {_pm(row['final_return'])} | {_pm(row['auc'])} | "
        f"{_pm(hits, ',.0f') if hits.size else '—'} ({row['reached']}/{s['seeds']}) | "
        f"{row['policy_symmetry_error']:.3f} | {row['value_symmetry_error']:.3f} |")
  for v, g in s["gains"].items():
    p, p_low, p_high = g["p_improvement"]["eval_return"]
    e = g["sample_efficiency"]
    more = ", ".join(f"{q:.2f} [{lo:.2f}, {hi:.2f}] on {name}" for name, (q, lo, hi) in (
        ("final train return", g["p_improvement"]["final_return"]),
        ("AUC", g["p_improvement"]["auc"])))
    lines.append(
        f"\n{v} vs baseline: eval return {g['eval_return']:+.1f} %, AUC {g['auc']:+.1f} %, "
        f"P({v} > baseline) {p:.2f} [{p_low:.2f}, {p_high:.2f}] on eval return, {more}; "
        f"steps to the baseline's "
        f"final return {e['target']:.1f}: {_pm(e['variant_steps'], ',.0f')} "
        f"({e['variant_reached']}/{s['seeds']}) vs {_pm(e['baseline_steps'], ',.0f')} "
        f"({e['baseline_reached']}/{s['seeds']}), sample-efficiency ratio {e['ratio']:.2f} "
        f"[{e['low']:.2f}, {e['high']:.2f}]")
  if "brax.training" in s["rows"] and "baseline" in s["rows"]:
    ours, theirs = s["rows"]["baseline"]["eval_return"], s["rows"]["brax.training"]["eval_return"]
    p, low, high = probability_of_improvement_ci(ours[np.isfinite(ours)],
                                                 theirs[np.isfinite(theirs)])
    lines.append(f"\nbaseline vs brax.training (the peer, same settings and budget): eval "
                 f"return {_gain(np.nanmean(ours), np.nanmean(theirs)):+.1f} %, "
                 f"P(baseline > brax.training) {p:.2f} [{low:.2f}, {high:.2f}]")
  return "\n".join(lines)


def title(results: dict) -> str:
  """The task, and "(equalized)" when it ran on the equalized model."""
  return results["env"] + (" (equalized)" if results.get("model") == "equalized" else "")


def _pm(x, fmt: str = ".1f") -> str:
  mean, ci = mean_ci(x)
  return f"{mean:{fmt}} ± {ci:{fmt}}" if np.isfinite(mean) else "—"


# --- across experiments -----------------------------------------------------------------------

def normalized_scores(results: dict) -> dict[str, np.ndarray]:
  """Per variant, each seed's eval return mapped so 0 is the task's first logged mean training
  return (an untrained policy) and 1 the best variant's mean eval return in this experiment."""
  curves = results["curves"]["episode_return"]
  start = np.mean([fill_leading(np.nanmean(np.asarray(curves[v], np.float64), axis=1), 0.0)[0]
                   for v in results["variants"]])
  finals = {v: np.asarray(results["final"]["eval/return"][v], np.float64)
            for v in results["variants"]}
  best = max(np.nanmean(x) for x in finals.values())
  span = best - start if best != start else 1.0
  return {v: (x - start) / span for v, x in finals.items()}


def aggregate(all_results: list[dict]) -> list[dict]:
  """IQM of normalized scores across tasks per (algo, variant), with stratified-bootstrap CIs;
  also the probability of improvement P(reflex > baseline) over paired task seeds."""
  out = []
  for algo in sorted({r["algo"] for r in all_results}):
    experiments = [r for r in all_results if r["algo"] == algo]
    variants = [v for v in experiments[0]["variants"]
                if all(v in r["variants"] for r in experiments)]
    scores = [normalized_scores(r) for r in experiments]
    num_seeds = min(len(r["seeds"]) for r in experiments)
    for v in variants:
      scores_TS = np.stack([s[v][:num_seeds] for s in scores])
      point, low, high = stratified_bootstrap_iqm(scores_TS)
      row = dict(algo=algo, variant=v, tasks=len(experiments), iqm=point, low=low, high=high,
                 mean=float(np.mean(scores_TS)))
      if v != "baseline" and "baseline" in variants:
        base_TS = np.stack([s["baseline"][:num_seeds] for s in scores])
        row["p_improvement"], row["p_low"], row["p_high"] = \
            stratified_probability_of_improvement(scores_TS, base_TS)
      out.append(row)
  return out


def stratified_probability_of_improvement(x_TS: np.ndarray, y_TS: np.ndarray,
                                          seed: int = 0) -> tuple[float, float, float]:
  """rliable's average probability of improvement: P(X > Y) per task over all seed pairs
  (ties count half), averaged over tasks; with its 95 % interval from resampling each side's
  seeds within each task."""
  rng = np.random.default_rng(seed)
  samples = win_rate(resample_within_tasks(x_TS, rng), resample_within_tasks(y_TS, rng))
  low, high = np.percentile(samples.mean(axis=-1), [2.5, 97.5])
  return float(win_rate(x_TS, y_TS).mean()), float(low), float(high)


def performance_profile(scores_TS: np.ndarray, taus: np.ndarray,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """rliable's score distribution (performance profile): for each threshold τ the fraction of
  (task, seed) runs with normalized score > τ, with a 95 % stratified-bootstrap band
  (seeds resampled within each task). Returns (fraction, low, high), each shaped like taus."""
  scores_TS = np.asarray(scores_TS, np.float64)
  frac = lambda s: np.mean(s.reshape(s.shape[:-2] + (-1,))[..., None, :] > taus[:, None],
                           axis=-1)
  resampled = resample_within_tasks(scores_TS, np.random.default_rng(seed))
  low, high = np.percentile(frac(resampled), [2.5, 97.5], axis=0)
  return frac(scores_TS), low, high


def plot_profiles(all_results: list[dict], path_stem: str) -> list[str]:
  """One panel per algorithm: each variant's performance profile over the tasks (fraction of
  runs above a normalized score τ, with its 95 % band). PNG and PDF; returns their paths."""
  algos = sorted({r["algo"] for r in all_results})
  fig, axes = plots.panel_grid(len(algos), 4.2, 3.2)
  for ax, algo in zip(axes, algos):
    experiments = [r for r in all_results if r["algo"] == algo]
    scores = [normalized_scores(r) for r in experiments]
    num_seeds = min(len(r["seeds"]) for r in experiments)
    variants = [v for v in experiments[0]["variants"] if all(v in s for s in scores)]
    everything = np.concatenate([s[v][:num_seeds] for s in scores for v in variants])
    taus = np.linspace(min(0.0, np.nanmin(everything)), max(1.0, np.nanmax(everything)), 101)
    for v in variants:
      frac, low, high = performance_profile(np.stack([s[v][:num_seeds] for s in scores]), taus)
      line, = ax.plot(taus, frac, label=LABELS.get(v, v))
      ax.fill_between(taus, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    n = len(experiments)
    ax.set_title(f"{algo.upper()} · {n} task{'s' * (n != 1)}", fontsize=9)
    ax.set_xlabel("normalized score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return plots.save(fig, axes, len(algos), path_stem)


def format_aggregate(rows: list[dict]) -> str:
  lines = ["| algo | variant | tasks | IQM normalized score [95 % CI] | mean | "
           "P(variant > baseline) [95 % CI] |", "|---|---|---:|---:|---:|---:|"]
  for r in rows:
    p = (f"{r['p_improvement']:.2f} [{r['p_low']:.2f}, {r['p_high']:.2f}]"
         if "p_improvement" in r else "—")
    lines.append(f"| {r['algo'].upper()} | {r['variant']} | {r['tasks']} | {r['iqm']:.3f} "
                 f"[{r['low']:.3f}, {r['high']:.3f}] | {r['mean']:.3f} | {p} |")
  return "\n".join(lines)


def plot_curves(all_results: list[dict], path_stem: str) -> list[str]:
  """One panel per (task, algorithm): training return vs env steps per variant, mean line and
  95 % bootstrap band over seeds. Writes PNG and PDF; returns their paths."""
  import matplotlib.ticker  # pylint: disable=import-outside-toplevel
  fig, axes = plots.panel_grid(len(all_results), 4.2, 3.2)
  for ax, results in zip(axes, all_results):
    steps = np.asarray(results["env_steps"])
    for v in results["variants"]:
      r_LS = np.asarray(results["curves"]["episode_return"][v], np.float64)
      mean = np.nanmean(r_LS, axis=1)
      low, high = bootstrap_ci(r_LS, np.nanmean)
      line, = ax.plot(steps, mean, label=LABELS.get(v, v))
      ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(f"{title(results)} · {results['algo'].upper()}", fontsize=9)
    ax.set_xlabel("env steps")
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))  # 200k, not 200000
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return plots.save(fig, axes, len(all_results), path_stem)


def find_experiments(root: str) -> list[str]:
  """Run directories under `root` (itself included) that hold a finished experiment."""
  found = sorted({os.path.dirname(p) for p in
                  glob.glob(os.path.join(root, "**", "results.json"), recursive=True)})
  return found


def write_report(run_dirs: list[str], out_dir: str) -> str:
  """curves.png/.pdf and report.md in `out_dir`; returns the markdown."""
  if not run_dirs:
    raise FileNotFoundError("no finished experiments (results.json) to report")
  all_results = [load_results(d) for d in run_dirs]
  os.makedirs(out_dir, exist_ok=True)
  plot_curves(all_results, os.path.join(out_dir, "curves"))
  parts = ["# Reflex report", "", "![learning curves](curves.png)", ""]
  parts += [format_experiment(r) + "\n" for r in all_results]
  if len({title(r) for r in all_results}) > 1:
    parts += ["## Across tasks", "",
              "Scores: eval return normalized per task and algorithm (0: the first logged "
              "return, 1: the best variant's mean eval return); IQM with stratified-bootstrap "
              "95 % CIs over seeds; P(variant > baseline) averaged over tasks, with its "
              "stratified-bootstrap interval.", "", format_aggregate(aggregate(all_results)),
              "", "Performance profiles (the fraction of runs above each normalized score, "
              "with 95 % stratified-bootstrap bands):", "", "![performance profiles]"
              "(profiles.png)"]
    plot_profiles(all_results, os.path.join(out_dir, "profiles"))
  text = "\n".join(parts) + "\n"
  with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
    f.write(text)
  return text


# --- one variant against another run's ------------------------------------------------------

def compare_runs(a: str, b: str) -> str:
  """A markdown table of two runs of one task, each given as RUN_DIR:VARIANT (e.g. the same
  baseline under two settings; VARIANT `brax.training` is the run's peer.json, evaluation
  only): eval return, final training return and AUC with 95 % t-intervals, and P(A > B) on
  each with its bootstrap interval."""
  rows = []
  for spec in (a, b):
    run_dir, _, variant = spec.rpartition(":")
    if not run_dir:
      raise ValueError(f"{spec!r}: give RUN_DIR:VARIANT")
    summary = summarize(load_results(run_dir))["rows"]
    if variant not in summary:
      raise ValueError(f"{run_dir} has variants {sorted(summary)}, not {variant!r}")
    rows.append((spec, summary[variant]))
  none = np.array([])
  lines = ["| run:variant | eval return | final train return | AUC |", "|---|---:|---:|---:|"]
  lines += [f"| {spec} | {_pm(r['eval_return'])} | {_pm(r.get('final_return', none))} | "
            f"{_pm(r.get('auc', none))} |" for spec, r in rows]
  for name, key in (("eval return", "eval_return"), ("final train return", "final_return"),
                    ("AUC", "auc")):
    if key not in rows[0][1] or key not in rows[1][1]:
      continue  # the peer logs evaluations only
    p, low, high = probability_of_improvement_ci(rows[0][1][key], rows[1][1][key])
    lines.append(f"{chr(10) if key == 'eval_return' else ''}P(first > second), {name}: "
                 f"{p:.2f} [{low:.2f}, {high:.2f}]")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.run.report", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("root", nargs="?",
                      help="a run directory or a directory of them (e.g. a grid)")
  parser.add_argument("--out", default=None, help="where to write (default: root)")
  parser.add_argument("--compare", nargs=2, metavar="RUN_DIR:VARIANT",
                      help="instead: one variant of one run against another's (e.g. a setting's "
                      "A/B), printed as a table")
  args = parser.parse_args(argv)
  if args.compare:
    try:
      print(compare_runs(*args.compare))
    except (ValueError, OSError) as error:
      parser.error(str(error))
    return 0
  if not args.root:
    parser.error("give a run directory (or --compare A B)")
  try:
    print(write_report(find_experiments(args.root), args.out or args.root))
  except FileNotFoundError as error:
    parser.error(f"{args.root}: {error}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
