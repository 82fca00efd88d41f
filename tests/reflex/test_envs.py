"""The environment interface: batching, time limits, auto-reset, errors, compat shims."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import envs
from reflex_jax.envs import compat
from tests.helpers import assert_shape


@functools.cache
def cartpole():
  """3 envs, time limit 5, with jitted reset and step shared by the tests (an MJX program
  compiles in tens of seconds on CPU; eager dispatch of one is slower still)."""
  env = envs.make("playground/CartpoleBalance", num_envs=3, episode_length=5)
  return env, jax.jit(env.reset), jax.jit(env.step)


def test_batched_reset_and_step_shapes():
  env, reset, step = cartpole()
  state = reset(jax.random.key(0))
  assert_shape(state.obs, (3, env.observation_size))
  state = step(state, jnp.zeros((3, env.action_size)))
  assert_shape(state.reward, (3,))


def test_truncation_is_kept_apart_from_termination_and_auto_reset_restarts():
  env, reset, step = cartpole()
  state = reset(jax.random.key(1))
  first_obs = state.obs
  for t in range(1, 6):
    state = step(state, jnp.zeros((3, env.action_size)))
    np.testing.assert_array_equal(state.truncated, float(t == 5))
    np.testing.assert_array_equal(state.terminated, 0.0)
  np.testing.assert_array_equal(state.metrics["completed"], 1.0)
  np.testing.assert_array_equal(state.metrics["completed_length"], 5.0)
  assert np.all(state.metrics["completed_return"] > 0)  # cartpole pays ~1 per upright step
  np.testing.assert_array_equal(state.metrics["episode_length"], 0.0)
  np.testing.assert_allclose(state.obs, first_obs)  # auto-reset to the first state
  assert not np.allclose(state.metrics["final_obs"], first_obs)  # for bootstrapping


def test_wrong_action_shape_names_the_expected_shape():
  env, reset, _ = cartpole()
  state = reset(jax.random.key(0))
  with pytest.raises(ValueError, match=r"expected actions of shape \(3, 1\), got \(1,\)"):
    env.step(state, jnp.zeros((1,)))


def test_unknown_env_and_bad_options_are_named():
  with pytest.raises(envs.UnknownEnvironmentError, match="known environments: .*brax/ant.*playground/WalkerWalk"):
    envs.make("brax/ant-v5")
  with pytest.raises(ValueError, match="unknown brax backend 'physx'"):
    envs.make_simulator("brax/ant", backend="physx")
  with pytest.raises(ValueError, match="impl= is not an option of brax tasks; they take backend="):
    envs.make_simulator("brax/ant", impl="jax")
  with pytest.raises(ValueError, match="backend= is not an option of toy tasks; they take none"):
    envs.make_simulator("toy/point_mass", backend="mjx")


def test_each_library_makes_its_tasks_with_its_own_options():
  assert envs.make_simulator("playground/CartpoleBalance").impl == "jax"  # not playground's "warp"
  assert envs.make_simulator("toy/point_mass", backend=None).env_id == "toy/point_mass"
  assert "toy/point_mass" in envs.known_env_ids() and envs.is_known("brax/ant")
  assert not envs.is_known("gym/ant") and not envs.is_known("toy/nope")


def test_brax_backend_choice_and_default():
  assert envs.make_simulator("brax/inverted_pendulum").backend == "mjx"
  assert envs.make_simulator("brax/swimmer").backend == "generalized"  # fluid model only there
  assert envs.make_simulator("brax/inverted_pendulum", backend="generalized").backend == "generalized"


def test_the_legacy_clip_shim_takes_a_min_and_a_max():
  assert compat._NumpyWithLegacyClip.clip(jnp.array([-2.0, 2.0]), a_min=-1.0, a_max=1.0).tolist() == [-1.0, 1.0]


@pytest.mark.slow  # a generalized-backend program: ~1 min to compile on CPU
def test_swimmer_steps_with_the_legacy_clip_shim():
  compat.patch_brax_fluid(force=True)  # what jax >= 0.10 needs: clip(a_min=) was removed
  env = envs.make("brax/swimmer", num_envs=2)
  state = jax.jit(env.step)(env.reset(jax.random.key(0)), jnp.ones((2, 2)))
  assert np.all(np.isfinite(state.obs))


def test_playground_reacher_loads_despite_the_version_string_bug():
  sim = envs.make_simulator("playground/ReacherEasy")
  assert (sim.observation_size, sim.action_size) == (6, 2)


def test_equalizing_pushes_the_fix_into_the_simulator():
  raw = envs.make_simulator("brax/walker2d")
  fixed = envs.make_simulator("brax/walker2d", equalize_asymmetries=True)
  foot = raw.mj_model.geom("foot_geom").id
  assert raw._env.sys.geom_friction[foot, 0] == pytest.approx(0.9)
  assert fixed._env.sys.geom_friction[foot, 0] == pytest.approx(1.9)
  assert fixed.mj_model.geom_friction[foot, 0] == pytest.approx(1.9)


# brax steps return weak-typed Python floats where reset made arrays (inverted pendulum's
# reward and done, ant's reward terms). action_repeat=2 scans the plain step, so it checks
# both paths; the ant programs compile for a minute or more on CPU, so they are `slow`.
@pytest.mark.long
@pytest.mark.parametrize("env_id,action_repeat", [
    ("brax/inverted_pendulum", 2),
    pytest.param("brax/ant", 1, marks=pytest.mark.slow),
    pytest.param("brax/ant", 2, marks=pytest.mark.slow)])
def test_brax_state_types_are_stable_across_steps(env_id, action_repeat):
  """A step's state must be a valid scan carry for the next."""
  env = envs.make(env_id, num_envs=2, episode_length=4, action_repeat=action_repeat)
  state = jax.jit(env.reset)(jax.random.key(0))
  def step(carry, _):
    nxt = env.step(carry, jnp.zeros((2, env.action_size)))
    return nxt, nxt.metrics["completed"]

  final, completed = jax.jit(lambda s: jax.lax.scan(step, s, None, length=5))(state)
  assert jax.tree.structure(final) == jax.tree.structure(state)
  np.testing.assert_array_equal(completed[:, 0], [0, 0, 0, 1, 0])  # the time limit at step 4


def test_a_tasks_observation_size_is_read_once_per_process(monkeypatch):
  # Reading it from brax or Playground traces a whole reset (seconds on CPU).
  from reflex_jax.envs import base, toy  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(base, "_OBSERVATION_SIZES", {})
  reads = []
  real = toy.ToyEnv._read_observation_size
  monkeypatch.setattr(toy.ToyEnv, "_read_observation_size",
                      lambda self: reads.append(self.env_id) or real(self))
  first, second = envs.make_simulator("toy/point_mass"), envs.make_simulator("toy/point_mass")
  assert first.observation_size == second.observation_size == 4
  assert reads == ["toy/point_mass"]


def test_raw_brax_and_playground_objects_are_wrapped_with_their_registered_ids():
  """train() takes the environment objects brax and Playground users already have."""
  from brax import envs as brax_envs  # pylint: disable=import-outside-toplevel
  from mujoco_playground import registry as playground  # pylint: disable=import-outside-toplevel
  from reflex_jax import driver  # pylint: disable=import-outside-toplevel
  raw = brax_envs.get_environment("inverted_pendulum", backend="mjx")
  sim = driver.simulator(raw, equalize_asymmetries=False)
  assert sim.env_id == "brax/inverted_pendulum" and sim._env is raw  # pylint: disable=protected-access
  assert (sim.observation_size, sim.action_size) == (4, 1)
  assert driver.resolve_reflection(sim) is not None  # the registered reflection applies
  sim = envs.from_native(playground.load("BallInCup", config_overrides={"impl": "jax"}))
  assert sim.env_id == "playground/BallInCup" and driver.resolve_reflection(sim) is not None
  # Four tasks share cartpole's class, and the object keeps no trace of the options that tell
  # them apart: it goes by its class name, and a reflection must be passed to train().
  sim = envs.from_native(playground.load("CartpoleBalance", config_overrides={"impl": "jax"}))
  assert sim.env_id == "playground/Balance" and driver.resolve_reflection(sim) is None
  with pytest.raises(TypeError, match="brax or MuJoCo Playground environment object; got dict"):
    driver.simulator({}, equalize_asymmetries=False)
