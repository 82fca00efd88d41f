"""Playground's legged robots: offline loading with placeholder meshes, derived command-aware
reflections, the equalizing fixes. Building a task compiles its MuJoCo model only (no JAX
program); the physics verification of each registered robot is `slow` (minutes of compile)."""

import functools

import numpy as np
import pytest

from reflex_jax import envs, verify
from reflex_jax.envs import menagerie
from reflex_jax.symmetry import asymmetry, registry


@functools.lru_cache(maxsize=None)
def simulator(env_id, equalize=False):
  return envs.make_simulator(env_id, equalize_asymmetries=equalize)

GO1, G1 = "playground/Go1JoystickFlatTerrain", "playground/G1JoystickFlatTerrain"
LEGGED = [GO1, G1]


def _compiled(robot, xml_name, root, scale, monkeypatch):
  import mujoco  # pylint: disable=import-outside-toplevel
  from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
  menagerie.write_standin(root, scale)
  monkeypatch.setattr(mjx_env, "MENAGERIE_PATH", root)
  base = __import__(f"mujoco_playground._src.locomotion.{robot}.base", fromlist=["get_assets"])
  xml = menagerie._playground_locomotion() / robot / "xmls" / xml_name  # pylint: disable=protected-access
  return mujoco.MjModel.from_xml_string(xml.read_text(), assets=base.get_assets())


@pytest.mark.parametrize("robot,xml_name", [
    ("go1", "scene_mjx_feetonly_flat_terrain.xml"), ("g1", "scene_mjx_feetonly_flat_terrain.xml"),
    ("berkeley_humanoid", "scene_mjx_feetonly_flat_terrain.xml")])
def test_placeholder_meshes_do_not_change_the_physics(robot, xml_name, tmp_path, monkeypatch):
  small = _compiled(robot, xml_name, tmp_path / "small", 0.01, monkeypatch)
  large = _compiled(robot, xml_name, tmp_path / "large", 0.2, monkeypatch)
  assert not np.allclose(small.mesh_vert, large.mesh_vert)  # the meshes did differ
  for field, value in menagerie.physics_fingerprint(small).items():
    np.testing.assert_array_equal(value, menagerie.physics_fingerprint(large)[field], field)


def test_go1_reflection_mirrors_legs_command_and_feet():
  sim = simulator(GO1)
  spec = registry.get(GO1)
  r = spec.reflection(sim.mj_model, 48)  # Playground's Go1 state: 3+3+3+12+12+12+3
  act = r.action
  names = [sim.mj_model.actuator(i).name for i in range(sim.mj_model.nu)]
  assert [names[p] for p in act.perm[:3]] == ["FL_hip", "FL_thigh", "FL_calf"]
  assert act.sign[:3] == (-1.0, 1.0, 1.0)  # abduction flips, thigh and calf pitch keep
  v_x, v_y, yaw = (r.obs.apply(np.eye(48)[i])[i] for i in (45, 46, 47))  # the command
  assert (v_x, v_y, yaw) == (1.0, -1.0, -1.0)
  critic = spec.critic_observation_map(sim.mj_model)
  assert critic.size == 123
  contact = np.arange(99, 103)  # last_contact of FR, FL, RR, RL
  assert [critic.perm[i] for i in contact] == [100, 99, 102, 101]
  feet_vel = slice(103, 115)  # per foot (x, y, z) in the world: y negates
  assert critic.sign[feet_vel] == (1.0, -1.0, 1.0) * 4
  info = spec.info_maps(sim.mj_model)
  assert info["command"].sign == (1.0, -1.0, -1.0)
  assert info["feet_air_time"].perm == (1, 0, 3, 2)


@pytest.mark.parametrize("env_id,expected", [
    (GO1, ["trunk", "FR_calf", "RR_calf", "site imu"]),
    (G1, ["left_knee", "waist_yaw", "waist_roll", "torso", "left_shoulder_pitch",
          "left_hip_roll"]),
])
def test_robot_asymmetries_are_found_and_the_fixes_remove_them(env_id, expected):
  spec = registry.get(env_id)
  found = asymmetry.find_asymmetries(simulator(env_id).mj_model,
                                     spec.state_map(simulator(env_id).mj_model))
  for name in expected:
    assert any(name in line for line in found), (name, found)
  fixed = simulator(env_id, True).mj_model
  assert asymmetry.find_asymmetries(fixed, spec.state_map(fixed)) == []


def test_legged_tasks_read_the_policy_observation_of_dict_observations():
  sim = envs.make_simulator(GO1)
  assert sim._observation({"state": 1, "privileged_state": 2}) == 1  # pylint: disable=protected-access


def test_bool_task_state_is_permuted_without_signs():
  perm = registry.get(GO1).info_maps(simulator(GO1).mj_model)["last_contact"]
  flags = np.array([True, False, False, True])
  np.testing.assert_array_equal(np.asarray(verify._apply(perm, flags)),  # pylint: disable=protected-access
                                [False, True, True, False])


@pytest.mark.slow  # each compiles the robot's step in float64 (3–7 min on CPU)
@pytest.mark.parametrize("env_id", LEGGED)
def test_legged_reflections_pass_the_physics_check(env_id):
  result = verify.verify(env_id, num_states=2, warmup=10, horizon=20)
  assert result.passed, verify.format_table([result])
  assert result.obs_error < 1e-12 and result.rollout_error < 1e-9
