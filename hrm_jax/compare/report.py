"""The comparison's report from its cells' JSON: curves (PNG and PDF), markdown tables and one
results JSON.

  python -m hrm_jax.compare.report OUT_DIR

Curves: held-out response loss and exact match against training FLOPs per seed, mean and
95 % percentile-bootstrap band over seeds. Tables: final exact match per task and
architecture (mean ± 95 % t-interval, seeds reaching the threshold), the same for the
objectives, and P(HRM > baseline): the probability that a random HRM seed ends better than a
random baseline seed (rliable's probability of improvement; ties count half), with a 95 %
bootstrap interval, on final exact match and on final held-out loss (lower is better), and
its mean over tasks.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

from hrm_jax.compare.config import OBJECTIVES
from hrm_jax.model import ARCHITECTURES
from runkit import plots
from runkit.stats import bootstrap_ci, mean_ci, probability_of_improvement_ci

METRICS = {"exact_match": "held-out exact match", "loss": "held-out response loss (nats)"}


def load_cells(out_dir: str) -> list[dict]:
  """The finished cells, ordered by task, then objective and architecture in the order of
  their registries (the HRM first, the paper's objective first)."""
  cells = []
  for path in glob.glob(os.path.join(out_dir, "cells", "*", "*", "*.json")):
    with open(path, encoding="utf-8") as f:
      cells.append(json.load(f))
  rank = lambda order, x: order.index(x) if x in order else len(order)
  archs, objectives = list(ARCHITECTURES), list(OBJECTIVES)
  return sorted(cells, key=lambda c: (c["task"], rank(objectives, c["objective"]),
                                      rank(archs, c["architecture"])))


def _final(cell: dict, metric: str) -> np.ndarray:
  return np.asarray(cell[metric][-1], np.float64)


def _order(cells, key) -> list:
  """The distinct values of `key`, in the cells' order."""
  return list(dict.fromkeys(c[key] for c in cells))


def plot(cells: list[dict], metric: str, path_stem: str) -> list[str]:
  """One panel per (task, objective): `metric` against training FLOPs per architecture."""
  panels = list(dict.fromkeys((c["task"], c["objective"]) for c in cells))
  archs = _order(cells, "architecture")
  colors = {a: f"C{i}" for i, a in enumerate(archs)}
  fig, axes = plots.panel_grid(len(panels), 4.0, 3.0)
  for ax, (task, objective) in zip(axes, panels):
    for c in cells:
      if (c["task"], c["objective"]) != (task, objective):
        continue
      flops = np.asarray(c["flops"])
      y_LS = np.asarray(c[metric], np.float64)
      low, high = bootstrap_ci(y_LS, np.mean)
      ax.plot(flops, y_LS.mean(1), color=colors[c["architecture"]], label=c["architecture"])
      ax.fill_between(flops, low, high, color=colors[c["architecture"]], alpha=0.2,
                      linewidth=0)
    ax.set_title(f"{task} · {objective}", fontsize=9)
    ax.set_xlabel("training FLOPs per seed")
    ax.set_ylabel(METRICS[metric], fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  return plots.save(fig, axes, len(panels), path_stem, dpi=110)


def _pm(values, threshold: float | None = None) -> str:
  mean, half = mean_ci(values)
  text = f"{mean:.2f} ± {half:.2f}"
  if threshold is not None:
    text += f" ({int(np.sum(np.asarray(values) >= threshold))}/{len(values)})"
  return text


def final_table(cells: list[dict], objective: str, metric: str,
                threshold: float | None = None) -> str:
  """Tasks × architectures: the final `metric`, mean ± 95 % t-interval over seeds (and the
  seeds reaching `threshold`)."""
  chosen = [c for c in cells if c["objective"] == objective]
  archs, tasks = _order(chosen, "architecture"), _order(chosen, "task")
  by = {(c["task"], c["architecture"]): c for c in chosen}
  lines = ["| task | " + " | ".join(archs) + " |", "|---" * (len(archs) + 1) + "|"]
  for t in tasks:
    lines.append(f"| {t} | " + " | ".join(
        _pm(_final(by[t, a], metric), threshold) if (t, a) in by else "–"
        for a in archs) + " |")
  return "\n".join(lines)


def objectives_table(cells: list[dict], threshold: float) -> str:
  objectives, archs = _order(cells, "objective"), _order(cells, "architecture")
  tasks = [t for t in _order(cells, "task")
           if len({c["objective"] for c in cells if c["task"] == t}) > 1]
  by = {(c["task"], c["objective"], c["architecture"]): c for c in cells}
  lines = ["| task | objective | " + " | ".join(archs) + " |", "|---" * (len(archs) + 2) + "|"]
  for t in tasks:
    for o in objectives:
      lines.append(f"| {t} | {o} | " + " | ".join(
          _pm(_final(by[t, o, a], "exact_match"), threshold) if (t, o, a) in by else "–"
          for a in archs) + " |")
  return "\n".join(lines)


def improvement(cells: list[dict], objective: str) -> dict:
  """{baseline: {task: {metric: (P, low, high)}, "mean over tasks": {metric: P}}} for
  the HRM against each other architecture under `objective`."""
  by = {(c["task"], c["architecture"]): c for c in cells if c["objective"] == objective}
  tasks = [t for t in _order(cells, "task") if (t, "hrm") in by]
  out = {}
  for base in (a for a in _order(cells, "architecture") if a != "hrm"):
    rows = {}
    for t in tasks:
      if (t, base) not in by:
        continue
      h, b = by[t, "hrm"], by[t, base]
      rows[t] = {"exact_match": probability_of_improvement_ci(_final(h, "exact_match"),
                                                              _final(b, "exact_match")),
                 # lower loss is better: compare the negated losses
                 "loss": probability_of_improvement_ci(-_final(h, "loss"), -_final(b, "loss"))}
    if rows:
      rows["mean over tasks"] = {m: (float(np.mean([r[m][0] for r in rows.values()])),)
                                 for m in ("exact_match", "loss")}
      out[base] = rows
  return out


def improvement_table(probabilities: dict) -> str:
  lines = ["| baseline | task | P(HRM > baseline), exact match | P(HRM > baseline), loss |",
           "|---|---|---|---|"]
  fmt = lambda v: f"{v[0]:.2f}" + (f" [{v[1]:.2f}, {v[2]:.2f}]" if len(v) == 3 else "")
  for base, rows in probabilities.items():
    for task, r in rows.items():
      lines.append(f"| {base} | {task} | {fmt(r['exact_match'])} | {fmt(r['loss'])} |")
  return "\n".join(lines)


def budget_table(cells: list[dict], objective: str) -> str:
  chosen = [c for c in cells if c["objective"] == objective]
  first = chosen[0]["task"]
  lines = [f"| architecture | parameters | steps ({first}) | training FLOPs per seed |",
           "|---|---|---|---|"]
  for c in chosen:
    if c["task"] == first:
      lines.append(f"| {c['architecture']} | {c['parameters'] / 1e6:.2f}M | {c['steps']} | "
                   f"{c['total_flops']:.3g} |")
  return "\n".join(lines)


def write_report(out_dir: str, threshold: float = 0.5) -> str:
  """report.md, curves_*.png/.pdf and results.json in `out_dir`; returns the markdown."""
  cells = load_cells(out_dir)
  if not cells:
    raise FileNotFoundError(f"no finished cells under {out_dir}/cells")
  # the paper's objective, run on every task (the others on some)
  main = max(_order(cells, "objective"),
             key=lambda o: len({c["task"] for c in cells if c["objective"] == o}))
  for metric in METRICS:
    plot(cells, metric, os.path.join(out_dir, f"curves_{metric}"))
  probabilities = improvement(cells, main)
  parts = [
      "# HRM against baselines at matched compute", "",
      f"Match: {cells[0]['match']}; {len(cells[0]['seeds'])} seeds per cell; objective "
      f"{main} unless stated. Exact match: mean ± 95 % t-interval over seeds (seeds reaching "
      f"{threshold}).", "",
      "![exact match](curves_exact_match.png)", "", "![loss](curves_loss.png)", "",
      "## Budget", "", budget_table(cells, main), "",
      "## Final exact match", "", final_table(cells, main, "exact_match", threshold), "",
      "## Final token accuracy (response tokens)", "",
      final_table(cells, main, "token_accuracy"), "",
      "## Final held-out loss", "", final_table(cells, main, "loss"), ""]
  if len(_order(cells, "objective")) > 1:
    parts += ["## Objectives (Table 3's axes)", "", objectives_table(cells, threshold), ""]
  if probabilities:
    parts += ["## P(HRM > baseline)", "",
              "Probability that a random HRM seed ends better than a random baseline seed, "
              "95 % bootstrap interval; 0.5 is no difference.", "",
              improvement_table(probabilities), ""]
  text = "\n".join(parts)
  with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
    f.write(text)
  summary = {"cells": cells, "p_hrm_better": probabilities, "threshold": threshold}
  with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f)
  return text


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.compare.report", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("out_dir")
  parser.add_argument("--threshold", type=float, default=0.5)
  args = parser.parse_args(argv)
  try:
    print(write_report(args.out_dir, args.threshold))
  except FileNotFoundError as error:
    parser.error(str(error))
  return 0


if __name__ == "__main__":
  sys.exit(main())
