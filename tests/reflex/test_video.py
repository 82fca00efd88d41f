"""Policy videos: the mirror-image episode of a symmetric policy mirrors the original."""

import dataclasses

import jax
import numpy as np

from reflex_jax import driver, envs, ppo
from reflex_jax.networks import ActorCritic
from reflex_jax.run.video import rollouts, side_by_side, stills, write


def _policy(env, symmetrize: bool, seed: int = 0):
  config = ppo.PPOConfig(policy=dataclasses.replace(ppo.PPOConfig().policy, init_log_std=0.0))
  reflection = driver.resolve_reflection(env)
  net = ActorCritic.create(env.observation_size, env.action_size, config.policy,
                           config.value_hidden, config.value_activation, reflection,
                           symmetrize=symmetrize)
  params = net.init(jax.random.key(seed), env.observation_size)
  # A random policy is too timid to show anything: scale its last layer up.
  params = jax.tree.map(lambda x: 8.0 * x, params)
  return driver.make_policy(net)(params, deterministic=True)


def test_symmetric_policy_plays_the_mirror_image_from_the_mirrored_start():
  sim = envs.make_simulator("toy/point_mass")  # pure JAX: compiles in seconds
  _, _, symmetric = rollouts(_policy(sim, symmetrize=True), sim, steps=30)
  (q, alive), _, asymmetric = rollouts(_policy(sim, symmetrize=False), sim, steps=30)
  assert q.shape == (31, sim.mj_model.nq) and alive[0] == 1.0
  assert symmetric < 1e-3, symmetric
  assert asymmetric > 100 * max(symmetric, 1e-6), (symmetric, asymmetric)


def test_side_by_side_pads_the_shorter_episode_with_its_last_frame():
  left = np.zeros((5, 8, 6, 3), np.uint8)
  right = np.full((3, 8, 6, 3), 7, np.uint8)
  clip = side_by_side(left, right, gap=2)
  assert clip.shape == (5, 8, 14, 3)
  assert (clip[4, :, 8:] == 7).all() and (clip[:, :, 6:8] == 255).all()


def test_stills_pick_first_and_last_frames_evenly(tmp_path):
  clip = np.arange(9, dtype=np.uint8)[:, None, None, None] * np.ones((9, 2, 3, 3), np.uint8)
  strip = stills(clip, count=3, gap=1)
  assert strip.shape == (3 * 2 + 2, 3, 3)
  assert [strip[r, 0, 0] for r in (0, 3, 6)] == [0, 4, 8] and (strip[2] == 255).all()
  write(str(tmp_path / "s.png"), clip, fps=10)
  import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel
  assert imageio.imread(tmp_path / "s.png").shape == (5 * 2 + 4 * 4, 3, 3)
