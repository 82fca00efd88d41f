"""Playground's legged robots: offline loading with placeholder meshes, derived command-aware
reflections, the equalizing fixes. Building a task compiles its MuJoCo model only (no JAX
program); the physics verification of each registered robot is `slow` (minutes of compile)."""

import functools

import numpy as np
import pytest

from reflex_jax import envs, verify
from reflex_jax.envs import menagerie, playground
from reflex_jax.symmetry import asymmetry, registry


@functools.lru_cache(maxsize=None)
def simulator(env_id, equalize=False):
  return envs.make_simulator(env_id, equalize_asymmetries=equalize)

GO1, G1 = "playground/Go1JoystickFlatTerrain", "playground/G1JoystickFlatTerrain"
LEGGED = [k for k in registry.SPECS if k.split("/")[1] in playground.locomotion_names()]


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
    ("playground/Go1JoystickRoughTerrain", ["trunk", "height field floor"]),
    (G1, ["left_knee", "waist_yaw", "waist_roll", "torso", "left_shoulder_pitch",
          "left_hip_roll"]),
    # Berkeley's right-leg body frames are not mirror images of the left's: only the real
    # differences (compared in the world frame) may be reported, not frame conventions
    ("playground/BerkeleyHumanoidJoystickFlatTerrain", ["torso", "ll_hr", "ll_haa", "ll_hfe",
                                                        "ll_kfe", "ll_ffe", "ll_faa"]),
    ("playground/T1JoystickFlatTerrain", ["Trunk", "H2", "body_mass of body Shank_Left"]),
    ("playground/SpotGetup", ["fl_hip", "jnt_range of joint fl_hy", "geom #8 of body fl_uleg"]),
    # the knees' damping gains differ by 2e-6 of their size: found only without numpy's
    # default relative tolerance (1e-5), and enough for rollouts to drift by 1e-5
    ("playground/H1JoystickGaitTracking", ["pelvis", "torso_link", "site imu",
                                           "actuator_biasprm of actuator left_knee"]),
    # Op3's head-tilt hinge sits 1.9 cm along its own axis from the midline: not an asymmetry
    ("playground/Op3Joystick", ["body_link", "head_tilt_link"]),
    # Apollo's front camera is welded 5e-8 off the midline, below what MuJoCo counts as an
    # inertial offset: only moving the body itself centres it
    ("playground/ApolloJoystickFlatTerrain", ["base_link", "l_shoulder_fe_link",
                                              "dof_damping of joint l_wrist_pitch",
                                              "torso_oak_d_pro_w_front_frame_link",
                                              "axis of joint l_wrist_pitch"]),
])
def test_robot_asymmetries_are_found_and_the_fixes_remove_them(env_id, expected):
  spec = registry.get(env_id)
  found = asymmetry.find_asymmetries(simulator(env_id).mj_model,
                                     spec.state_map(simulator(env_id).mj_model))
  for name in expected:
    assert any(name in line for line in found), (name, found)
  fixed = simulator(env_id, True).mj_model
  assert asymmetry.find_asymmetries(fixed, spec.state_map(fixed)) == []


def test_berkeley_reports_no_frame_convention_as_an_asymmetry():
  env_id = "playground/BerkeleyHumanoidJoystickFlatTerrain"
  found = asymmetry.find_asymmetries(simulator(env_id).mj_model,
                                     registry.get(env_id).state_map(simulator(env_id).mj_model))
  # torso centre and tensor; 5 tensors; the ffe links' masses (5e-7 kg apart); the foot's
  # centre and tensor
  assert len(found) == 10, found
  # lr_kfe's frame is ll_kfe's rotated, its origin at z = -0.0742 vs +0.0742 in its parent:
  # conventions, not asymmetries (the world-frame anchors and centres agree)
  assert not any("anchor" in line or "centre of mass of body ll_kfe" in line
                 for line in found), found


@pytest.mark.parametrize("env_id", LEGGED)
def test_every_legged_task_maps_both_observations_and_its_fixes_leave_no_asymmetry(env_id):
  spec = registry.get(env_id)
  sim = simulator(env_id, True)
  actor = spec.reflection(sim.mj_model, sim.observation_size).obs
  assert actor.size == sim.observation_size
  critic = spec.critic_observation_map(sim.mj_model)
  if critic is not None:  # the task has a privileged observation for the critic
    both = spec.reflection(sim.mj_model, actor.size + critic.size).obs
    assert both.size == actor.size + critic.size
  assert asymmetry.find_asymmetries(sim.mj_model, spec.state_map(sim.mj_model)) == []
  assert set(spec.info_maps(sim.mj_model)) >= {"last_act"}


def test_h1_step_reads_its_foot_contact_at_the_sensor_addresses_when_equalized():
  """Playground's H1 step indexes sensordata by sensor id; the fix reads the addresses (as
  its reset does), so a robot held in the air reports no contact."""
  import jax  # pylint: disable=import-outside-toplevel
  env_id = "playground/H1JoystickGaitTracking"
  contact = slice(66 + 19 + 19, 66 + 19 + 19 + 2)  # after the 66 state entries and histories

  def airborne_step(equalize):
    sim = envs.make_simulator(env_id, equalize_asymmetries=equalize)
    state = sim.reset(jax.random.key(0))
    qpos, qvel = sim.physics_qpos_qvel(state)
    state = sim.with_physics(state, qpos.at[2].add(0.5), qvel, *sim.mocap(state),
                             np.zeros(sim.action_size))
    return np.asarray(jax.jit(sim.step)(state, np.zeros(sim.action_size, np.float32)).obs)

  np.testing.assert_array_equal(airborne_step(True)[contact], [0.0, 0.0])
  # Playground's own step reads the IMU's height and axes instead (drop the fix once this fails)
  assert airborne_step(False)[contact].any()


def test_op3_observation_recomputed_keeps_its_history_in_place():
  """Op3 shifts each observation into the next; recomputing one from the same state must
  leave the older blocks where they were (the adapter shifts them back first)."""
  import jax  # pylint: disable=import-outside-toplevel
  sim = envs.make_simulator("playground/Op3Joystick")
  step = jax.jit(sim.step)
  state = sim.reset(jax.random.key(0))
  for _ in range(3):
    state = step(state, np.full(sim.action_size, 0.1, np.float32))
  again = jax.jit(lambda s: sim.with_physics(s, *sim.physics_qpos_qvel(s), *sim.mocap(s),
                                             np.zeros(sim.action_size)))(state)
  block = sim.observation_size // 3
  assert sim.history_in_observation and not np.allclose(state.obs[block:2 * block],
                                                        state.obs[:block])
  np.testing.assert_array_equal(again.obs[block:], state.obs[block:])


def test_ground_contacts_only_silences_explicit_body_pairs():
  """Apollo collides hands with thighs and its legs with each other through explicit <pair>s,
  which ignore the contact masks: equalized, only the floor pairs push."""
  import mujoco  # pylint: disable=import-outside-toplevel

  def body_contacts(equalize, hip_aa):  # the left leg swung across the right one
    model = simulator("playground/ApolloJoystickFlatTerrain", equalize).mj_model
    data = mujoco.MjData(model)
    data.qpos[:] = model.key_qpos[0]
    data.qpos[model.jnt_qposadr[model.joint("l_hip_aa").id]] = hip_aa
    mujoco.mj_forward(model, data)
    floor = model.geom("floor").id
    # MuJoCo lists a pair's overlap beyond its margin as excluded: no constraint, no force
    return sum(floor not in (c.geom1, c.geom2) and not c.exclude
               for c in data.contact[:data.ncon])

  crossed = next(a for a in (-0.6, 0.6) if body_contacts(False, a))
  assert body_contacts(True, crossed) == 0


def test_mirror_terrain_keeps_one_half_and_mirrors_it():
  rough = simulator("playground/Go1JoystickRoughTerrain")
  fixed = simulator("playground/Go1JoystickRoughTerrain", True)
  heights = lambda m: m.hfield_data.reshape(m.hfield_nrow[0], m.hfield_ncol[0])
  before, after = heights(rough.mj_model), heights(fixed.mj_model)
  half = (before.shape[0] + 1) // 2
  np.testing.assert_array_equal(after[:half], before[:half])  # one half kept as it was
  np.testing.assert_array_equal(after, after[::-1])  # rows run along y: mirrored
  assert not np.array_equal(before, before[::-1]) and after.std() > 0.1 * before.std()


def test_mirror_terrain_refuses_a_terrain_off_the_plane():
  import mujoco  # pylint: disable=import-outside-toplevel
  model = mujoco.MjModel.from_xml_string(
      '<mujoco><asset><hfield name="h" nrow="4" ncol="4" size="1 1 .1 .1"/></asset>'
      '<worldbody><geom name="floor" type="hfield" hfield="h" pos="0 0.5 0"/></worldbody>'
      '</mujoco>')
  with pytest.raises(ValueError, match="not centred on the y = 0 plane"):
    asymmetry.MirrorTerrain("floor", "test").apply(model, "y")


def test_legged_tasks_read_the_policy_observation_of_dict_observations():
  sim = envs.make_simulator(GO1)
  assert sim._observation({"state": 1, "privileged_state": 2}) == 1  # pylint: disable=protected-access


def test_bool_task_state_is_permuted_without_signs():
  perm = registry.get(GO1).info_maps(simulator(GO1).mj_model)["last_contact"]
  flags = np.array([True, False, False, True])
  np.testing.assert_array_equal(np.asarray(perm.apply(flags)), [False, True, True, False])


@pytest.mark.slow  # each compiles the robot's step in float64 (3–7 min on CPU)
@pytest.mark.parametrize("env_id", [k for k in LEGGED if not registry.get(k).approximate])
def test_legged_reflections_pass_the_physics_check(env_id):
  # 10 warm-up and 20 rollout steps: random actions topple the robots soon after, and a
  # fallen robot's contacts make rollouts chaotic (the verifier then excuses rollout drift,
  # but not reward drift); experiments/reflex/legged/verify_legged.py runs longer checks
  result = verify.verify(env_id, num_states=2, warmup=10, horizon=20)
  assert result.passed, verify.format_table([result])
  assert result.obs_error < 1e-12


def test_a_privileged_critic_observes_state_then_privileged_state():
  sim = envs.make_simulator(GO1, privileged_critic=True)
  assert (sim.policy_observation_size, sim.observation_size) == (48, 48 + 123)
  native = {"state": np.arange(48.0), "privileged_state": -np.arange(123.0)}
  obs = np.asarray(sim._observation(native))  # pylint: disable=protected-access
  np.testing.assert_array_equal(obs, np.concatenate([native["state"], native["privileged_state"]]))
  # the reflection covers both parts: the policy's map, then the critic's, shifted past it
  spec = registry.get(GO1)
  both = spec.reflection(sim.mj_model, sim.observation_size).obs
  actor, critic = spec.reflection(sim.mj_model, 48).obs, spec.critic_observation_map(sim.mj_model)
  assert both.perm == actor.perm + tuple(p + 48 for p in critic.perm)
  assert both.sign == actor.sign + critic.sign


def test_privileged_critic_is_refused_where_there_is_none():
  with pytest.raises(ValueError, match="privileged_critic= is not an option of brax tasks"):
    envs.make_simulator("brax/inverted_pendulum", privileged_critic=True)
  with pytest.raises(ValueError, match="no privileged one for the critic"):
    envs.make_simulator("playground/CartpoleBalance", privileged_critic=True)


def test_the_policy_reads_only_its_part_and_the_critic_all():
  import jax  # pylint: disable=import-outside-toplevel
  from reflex_jax.networks import ActorCritic, PolicyConfig  # pylint: disable=import-outside-toplevel
  net = ActorCritic.create(10, 2, PolicyConfig(hidden=(8,)), (8,), "tanh", policy_obs_size=4)
  params = net.init(jax.random.key(0), 10)
  params["normalizer"] = params["normalizer"].update(
      jax.random.normal(jax.random.key(1), (32, 10)) * 3 + 1)
  obs = jax.random.normal(jax.random.key(2), (5, 10))
  changed = obs.at[:, 4:].add(1.0)
  loc, _ = net.distribution(params, obs)
  np.testing.assert_array_equal(loc, net.distribution(params, changed)[0])
  np.testing.assert_allclose(loc, net.distribution(params, obs[:, :4])[0], rtol=1e-6)  # deployed
  assert not np.allclose(net.value_fn(params, obs), net.value_fn(params, changed))


@pytest.mark.slow  # compiles PPO on Go1 (minutes on CPU)
def test_ppo_trains_go1_with_a_privileged_critic_and_reflex():
  from reflex_jax import ppo  # pylint: disable=import-outside-toplevel
  config = ppo.PPOConfig(num_timesteps=2 * 8 * 10, num_envs=8, unroll_length=10,
                         num_minibatches=2, num_epochs=1, num_logs=1, num_eval_envs=1,
                         episode_length=20, privileged_critic=True, reflex=ppo.ReflexConfig())
  _, params, metrics = ppo.train(GO1, config, seed=[0], reflex_weight=[0.1], progress_bar=False)
  assert params["value"] is not None
  assert np.all(np.isfinite(np.asarray(metrics["value_symmetry_error"])))
