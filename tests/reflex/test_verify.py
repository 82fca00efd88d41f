"""The physics verifier: registered maps pass, broken maps and model asymmetries are caught."""

import dataclasses

import numpy as np
import pytest

from reflex_jax import envs, verify
from reflex_jax.symmetry import registry
from reflex_jax.symmetry.reflection import Reflection, SignedPermutation

FAST = dict(num_states=2, warmup=10, horizon=20)


def _registered(env_id):
  sim = envs.make_simulator(env_id)
  return registry.get(env_id).reflection(sim.mj_model, sim.observation_size)


# The verifier's machinery on the pure-JAX task; on brax (tracing its pipeline takes ~35 s,
# compiling it ~25 s) and MJX, and for every registered map, in `make test-all`.
@pytest.mark.parametrize("env_id", [
    "toy/point_mass", pytest.param("brax/inverted_pendulum", marks=pytest.mark.slow),
    pytest.param("playground/CartpoleBalance", marks=pytest.mark.slow)])
def test_registered_maps_pass_tightly(env_id):
  result = verify.verify(env_id, **FAST)
  assert result.passed, verify.format_table([result])
  assert result.obs_error < 1e-12 and result.rollout_error < 1e-9


@pytest.mark.slow  # a second MJX verify program (~1 min on CPU); `make test-all` runs it
def test_known_asymmetry_shows_as_drift_without_the_fix():
  result = verify.verify("brax/inverted_pendulum", equalize=False, **FAST)
  assert "rollout" in result.failures, verify.format_table([result])
  assert not result.rollout_within_chaos  # rounding-scale chaos does not explain it
  assert result.asymmetries  # and the finder names the offending parameters


def test_a_wrong_sign_is_detected():
  good = _registered("toy/point_mass")
  sign = list(good.obs.sign)
  sign[1] = -sign[1]  # y lies in the mirror plane (x = 0): it must not flip
  bad = dataclasses.replace(good, obs=SignedPermutation.create(good.obs.perm, sign))
  result = verify.verify("toy/point_mass", reflection=bad, **FAST)
  assert "obs" in result.failures and result.obs_error > 1e-2


def test_a_swapped_index_is_detected():
  good = _registered("toy/point_mass")
  swapped = SignedPermutation.create([1, 0, 3, 2], [-1, -1, -1, -1])  # x <-> y: not a mirror
  bad = Reflection(swapped, good.action, good.kind, good.plane)
  result = verify.verify("toy/point_mass", reflection=bad, **FAST)
  assert "obs" in result.failures and result.obs_error > 1e-2


@pytest.mark.parametrize("argv,message", [
    (["brax/hopper"], "reduces to the plain baseline"),
    (["brax/nope"], "registered environments"),
])
def test_cli_rejects_bad_ids_with_a_message(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    verify.main(argv)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_table_reports_every_column():
  row = verify.VerifyResult("brax/x", "axial", True, "float64", 0.0, 2e-3, 0.0, 3e-14, False,
                            50, 1.0)
  table = verify.format_table([row])
  assert "FAIL (reward)" in table and "2.0e-03" in table and "3.0e-14" in table


def test_a_float32_note_judges_by_float32_tolerances_and_is_printed():
  row = verify.VerifyResult("brax/x", "axial", True, "float64", 0.0, 5e-5, 0.0, 0.0, False,
                            50, 1.0)
  noted = dataclasses.replace(row, float32_internals="its step computes in float32")
  assert row.failures == ["reward"] and noted.passed
  assert "brax/x: float32 tolerances, its step computes in float32" in verify.format_table([noted])


@pytest.mark.parametrize("within_chaos,passed", [(True, True), (False, False)])
def test_rollout_drift_is_excused_only_within_the_tasks_own_chaos(within_chaos, passed):
  row = verify.VerifyResult("brax/x", "bilateral", True, "float64", 0.0, 0.0, 1e-2, 5e-3,
                            within_chaos, 50, 1.0)
  assert row.passed is passed


@pytest.mark.slow
@pytest.mark.parametrize("env_id", registry.symmetric_env_ids())
def test_every_registered_map_passes_with_the_fixes(env_id):
  result = verify.verify(env_id)
  assert result.passed, verify.format_table([result], verbose=True)
  assert not result.asymmetries


@pytest.mark.slow
def test_walker2d_friction_drift_is_reported_without_the_fix():
  result = verify.verify("brax/walker2d", equalize=False)
  assert "rollout" in result.failures
  assert np.isclose(result.obs_error, 0.0, atol=1e-12)  # the map itself is right
