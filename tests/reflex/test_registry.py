"""Derived and hand-written maps against the spec's verified tables; registry errors."""

import ast
import functools
import pathlib

import numpy as np
import pytest

from reflex_jax import envs
from reflex_jax.symmetry import asymmetry, derive, registry
from reflex_jax.symmetry.reflection import ReflectionError


@functools.cache
def simulator(env_id, equalize=False):
  return envs.make_simulator(env_id, equalize_asymmetries=equalize)


def reflection(env_id):
  sim = simulator(env_id)
  return registry.get(env_id).reflection(sim.mj_model, sim.observation_size)


def negated(g):
  return [i for i, s in enumerate(g.sign) if s < 0]


# (obs perm, negated obs, action perm, negated actions) from the spec's table (REFLEX.md §3).
SPEC_TABLES = {
    "brax/ant": ([0, 1, 2, 3, 4, 11, 12, 9, 10, 7, 8, 5, 6, *range(13, 19), 25, 26, 23, 24, 21,
                  22, 19, 20], [2, 4, 5, 7, 9, 11, 14, 16, 18, 19, 21, 23, 25],
                 [2, 3, 0, 1, 6, 7, 4, 5], [0, 2, 4, 6]),
    "brax/walker2d": ([0, 1, 5, 6, 7, 2, 3, 4, 8, 9, 10, 14, 15, 16, 11, 12, 13], [],
                      [3, 4, 5, 0, 1, 2], []),
    "brax/swimmer": (list(range(8)), [0, 1, 2, 4, 5, 6, 7], [0, 1], [0, 1]),
    "brax/inverted_pendulum": (list(range(4)), [0, 1, 2, 3], [0], [0]),
    "playground/WalkerWalk": ([0, 1, *range(8, 14), *range(2, 8), 14, 15, 16, 17, 21, 22, 23,
                               18, 19, 20], [], [3, 4, 5, 0, 1, 2], []),
    "playground/PointMass": (list(range(4)), [0, 2], [0, 1], [0]),
    "playground/BallInCup": (list(range(8)), [0, 2, 4, 6], [0, 1], [0]),
}


@pytest.mark.parametrize("env_id", sorted(SPEC_TABLES))
def test_maps_match_the_spec_tables(env_id):
  obs_perm, obs_neg, act_perm, act_neg = SPEC_TABLES[env_id]
  r = reflection(env_id)
  assert list(r.obs.perm) == obs_perm and negated(r.obs) == obs_neg
  assert list(r.action.perm) == act_perm and negated(r.action) == act_neg


def test_brax_humanoid_map_is_derived_with_the_expected_structure():
  sim = simulator("brax/humanoid")
  r = reflection("brax/humanoid")
  assert (r.obs_size, r.action_size, r.kind) == (244, 17, "bilateral")
  names = [sim.mj_model.actuator(i).name for i in range(17)]
  assert names[0] == "abdomen_y"  # actuator order is not qpos order
  flipped = {names[i] for i in negated(r.action)}
  assert flipped == {"abdomen_z", "abdomen_x", "right_shoulder1", "right_shoulder2",
                     "left_shoulder1", "left_shoulder2"}
  assert names[r.action.perm[names.index("right_knee")]] == "left_knee"
  # q[2:] starts with z, quaternion (w, x, y, z): signs [+, +, -, +, -]
  assert r.obs.sign[:5] == (1.0, 1.0, -1.0, 1.0, -1.0)
  # first cinert block (torso, self-mirrored): xy and yz entries flip
  cinert = np.asarray(r.obs.sign[45:55])
  np.testing.assert_array_equal(cinert, [1, -1, 1, -1, 1, -1, 1, -1, 1, 1])
  # first cvel block: linear [+, -, +], angular [-, +, -]
  np.testing.assert_array_equal(r.obs.sign[155:161], [1, -1, 1, -1, 1, -1])


def test_playground_humanoid_map_negates_ankle_x_and_swaps_extremities():
  sim = simulator("playground/HumanoidWalk")
  r = reflection("playground/HumanoidWalk")
  assert (r.obs_size, r.action_size) == (67, 21)
  names = [sim.mj_model.actuator(i).name for i in range(21)]
  flipped = {names[i] for i in negated(r.action)}
  assert {"right_ankle_x", "left_ankle_x", "abdomen_z", "abdomen_x"} <= flipped
  # extremities block (obs 22..33): left_hand <-> right_hand, y negated
  assert r.obs.perm[22:25] == (28, 29, 30) and r.obs.sign[22:25] == (1.0, -1.0, 1.0)


# Building a map traces the task's reset (2-25 s each). In the default suite: one task per
# model. `slow` (make test-all): the humanoids and walkers, the tasks the spec-table test above
# already builds and checks index by index, and the other tasks of a model built here (the
# sparse, swing-up and hard variants share their model, map and observation layout).
_HEAVY = ("Humanoid", "Walker", "humanoid", "Joystick")  # Joystick: test_legged.py builds them
_BUILT_ELSEWHERE = (*SPEC_TABLES, "playground/CartpoleSwingup", "playground/CartpoleSwingupSparse",
                    "playground/CartpoleBalanceSparse", "playground/AcrobotSwingupSparse",
                    "playground/ReacherHard")


@pytest.mark.parametrize("env_id", [
    pytest.param(e, marks=pytest.mark.slow)
    if any(h in e for h in _HEAVY) or e in _BUILT_ELSEWHERE else e
    for e in registry.symmetric_env_ids()])
def test_every_registered_map_builds_with_matching_sizes(env_id):
  sim = simulator(env_id)
  r = registry.get(env_id).reflection(sim.mj_model, sim.observation_size)
  assert (r.obs_size, r.action_size) == (sim.observation_size, sim.action_size)


def test_tasks_without_reflection_say_reflex_reduces_to_the_baseline():
  spec = registry.get("brax/hopper")
  assert not spec.has_reflection
  with pytest.raises(registry.NoReflectionError, match="reduces to the plain baseline"):
    spec.reflection(simulator("brax/hopper").mj_model, 11)


@pytest.mark.parametrize("env_id", ["playground/FingerSpin", "playground/FingerTurnEasy",
                                    "playground/FingerTurnHard"])
def test_the_finger_tasks_say_why_they_have_no_reflection(env_id):
  spec = registry.get(env_id)
  with pytest.raises(registry.NoReflectionError, match="spinner at x = \\+0.2"):
    spec.require()


def test_unknown_ids_list_the_registered_ones():
  with pytest.raises(registry.UnknownEnvironmentError, match="registered environments: .*brax/ant"):
    registry.get("brax/antt")


def test_missing_twin_and_wrong_plane_are_reported():
  model = simulator("brax/ant").mj_model
  with pytest.raises(ReflectionError, match="partner 'hip_9' is not in the model"):
    derive.derive_state_map(model, "y", (("_1", "_9"),))
  with pytest.raises(ReflectionError, match="does not mirror onto"):
    derive.derive_state_map(model, "x", (("_1", "_4"), ("_2", "_3")))


@pytest.mark.parametrize("env_id,equalize,expected", [
    ("brax/walker2d", False, ["foot_geom"]),
    ("brax/walker2d", True, []),
    ("brax/humanoid", False, ["right_hip_y", "right_knee"]),
    ("brax/humanoid", True, []),
    ("brax/inverted_pendulum", False, ["pole", "pole", "cpole"]),  # centre, tensor, geom
    ("brax/ant", False, []),
    ("playground/HumanoidWalk", False, ["left_hip_y"]),
    ("playground/HumanoidWalk", True, []),
])
def test_asymmetry_finder_and_fixes(env_id, equalize, expected):
  sim = simulator(env_id, equalize)
  found = asymmetry.find_asymmetries(sim.mj_model, registry.get(env_id).state_map(sim.mj_model))
  assert len(found) == len(expected), found
  for name, line in zip(expected, found):
    assert name in line


def test_ground_contacts_only_keeps_floor_contacts_and_drops_body_body_ones():
  model = simulator("playground/HumanoidWalk", True).mj_model
  floor = model.geom("floor").id
  ct, ca = model.geom_contype, model.geom_conaffinity
  collides = lambda i, j: bool((ct[i] & ca[j]) | (ct[j] & ca[i]))
  body = [g for g in range(model.ngeom) if g != floor]
  assert all(collides(g, floor) for g in body)
  assert not any(collides(g, h) for g in body for h in body)


def test_symmetry_imports_neither_envs_nor_the_verifier():
  """The verifier sits above both; an import back up would be a cycle."""
  package = pathlib.Path(registry.__file__).parent
  for path in package.glob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom):
        names = [f"{node.module}.{a.name}" for a in node.names]
      elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      else:
        continue
      assert not any(n.startswith(("reflex_jax.envs", "reflex_jax.verify")) for n in names), path
