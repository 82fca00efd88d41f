"""Statistics over seeds shared by both halves' reports: t-intervals, percentile-bootstrap
bands and the probability of improvement."""

from __future__ import annotations

import numpy as np

BOOTSTRAP = 2000  # resamples per interval


def mean_ci(x) -> tuple[float, float]:
  """Mean and the half-width of its 95 % t-interval (0 for a single value)."""
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return np.nan, np.nan
  if x.size < 2:
    return float(x.mean()), 0.0
  # scipy.stats takes ~1.5 s to import: only when a report needs it, not at every CLI start.
  from scipy import stats  # pylint: disable=import-outside-toplevel
  return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def bootstrap_ci(x_S, statistic=np.mean, seed: int = 0) -> tuple[float, float]:
  """95 % percentile-bootstrap interval of `statistic` over the last axis (seeds)."""
  x_S = np.asarray(x_S, np.float64)
  idx = np.random.default_rng(seed).integers(0, x_S.shape[-1], (BOOTSTRAP, x_S.shape[-1]))
  samples = statistic(x_S[..., idx], axis=-1)
  return tuple(np.nanpercentile(samples, [2.5, 97.5], axis=-1))


def win_rate(x_S, y_S) -> np.ndarray:
  """P(X > Y) over all pairs of the last axes' seeds (ties count half), for any leading
  batch axes: [..., S] and [..., S'] → [...]."""
  x, y = np.asarray(x_S, np.float64)[..., :, None], np.asarray(y_S, np.float64)[..., None, :]
  return np.mean((x > y) + 0.5 * (x == y), axis=(-1, -2))


def probability_of_improvement(x, y) -> float:
  """P(X > Y) for a random seed of each (ties count half), rliable's definition: the
  Mann–Whitney U statistic over all pairs, divided by their number."""
  return float(win_rate(x, y))


def probability_of_improvement_ci(x, y, seed: int = 0) -> tuple[float, float, float]:
  """(P(X > Y), low, high): the point and its 95 % percentile-bootstrap interval, resampling
  the seeds of each side independently."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  rng = np.random.default_rng(seed)
  ix = rng.integers(0, x.size, (BOOTSTRAP, x.size))
  iy = rng.integers(0, y.size, (BOOTSTRAP, y.size))
  low, high = np.percentile(win_rate(x[ix], y[iy]), [2.5, 97.5])
  return probability_of_improvement(x, y), float(low), float(high)
