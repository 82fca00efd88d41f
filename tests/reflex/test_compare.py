"""The comparison table's statistics."""

import numpy as np

from reflex_jax.compare import default_threshold, steps_to_threshold


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
