"""Policy videos: a trained policy's episode side by side with the episode it plays from the
mirror image of the same start, rendered headless with MuJoCo's renderer.

    python -m reflex_jax.run.video runs/compare/brax_inverted_double_pendulum/ppo \\
        --variant reflex --seed 0 --out idp_reflex.mp4

For a policy that respects the task's reflection the right panel is the mirror image of the
left one (a symmetric gait); the printed mirror deviation measures how far it strays:
mean |g·q_t − q'_t| over the steps both episodes are alive. Rendering needs an OpenGL
library: EGL (Debian `libegl1`, the default here) or OSMesa (`libosmesa6`, set
MUJOCO_GL=osmesa). MP4 goes through the ffmpeg that imageio-ffmpeg ships; .gif needs nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must precede the first mujoco import

import argparse  # noqa: E402  pylint: disable=wrong-import-position
import copy  # noqa: E402  pylint: disable=wrong-import-position
import sys  # noqa: E402  pylint: disable=wrong-import-position

import jax  # noqa: E402  pylint: disable=wrong-import-position
import jax.numpy as jnp  # noqa: E402  pylint: disable=wrong-import-position
import mujoco  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position

from reflex_jax import envs  # noqa: E402  pylint: disable=wrong-import-position
from reflex_jax.symmetry import registry  # noqa: E402  pylint: disable=wrong-import-position
from reflex_jax.verify import mirror_state  # noqa: E402  pylint: disable=wrong-import-position


def rollouts(policy, sim: envs.SimulatorEnv, *, steps: int, seed: int = 0):
  """qpos trajectories [steps + 1, nq] of the episode from a reset state and of the episode
  from its mirror image, with their alive masks [steps + 1], in one jitted program."""
  env = envs.wrap(sim, episode_length=steps, auto_reset=False)
  spec = registry.get(sim.env_id)
  state_map = spec.state_map(sim.mj_model)
  reflection = spec.reflection(sim.mj_model, sim.observation_size)

  @jax.jit
  def run(key):
    start = env.reset(key)
    # the mirror image of the start, with the task's command and timers mirrored too
    mirrored = mirror_state(sim, spec, start, jnp.zeros(sim.action_size), reflection)

    def step(carry, _):
      state, alive = carry
      nxt = env.step(state, policy(state.obs))
      alive = alive * (1.0 - jnp.maximum(nxt.terminated, nxt.truncated))
      return (nxt, alive), (sim.physics_qpos_qvel(nxt)[0], alive)

    def episode(state):
      _, (qpos, alive) = jax.lax.scan(step, (state, jnp.ones(())), None, length=steps)
      first = sim.physics_qpos_qvel(state)[0]
      return (jnp.concatenate([first[None], qpos]),
              jnp.concatenate([jnp.ones((1,)), alive]))

    return episode(start), episode(mirrored)

  (q, alive), (q_m, alive_m) = jax.device_get(run(jax.random.key(seed)))
  both = (alive > 0) & (alive_m > 0)
  deviation = float(np.abs(np.asarray(jax.vmap(state_map.qpos.apply)(q)) - q_m)[both].mean())
  return (q, alive), (q_m, alive_m), deviation


def render(model: mujoco.MjModel, qpos_TQ: np.ndarray, *, width: int = 320, height: int = 240,
           collision_geoms: bool = False) -> np.ndarray:
  """Frames [T, H, W, 3] of the model posed at each qpos, from a camera tracking the root.
  collision_geoms: also draw geom group 3 (Playground's robots keep their collision shapes
  there; with placeholder meshes they are the only visible body)."""
  model = copy.copy(model)  # brax models bring no lights: add a headlight to a copy
  model.vis.headlight.active = 1
  model.vis.headlight.ambient[:] = 0.35
  model.vis.headlight.diffuse[:] = 0.65
  data = mujoco.MjData(model)
  camera = mujoco.MjvCamera()
  camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
  camera.trackbodyid = 1 if model.nbody > 1 else 0
  camera.distance = 2.5 * model.stat.extent
  camera.elevation, camera.azimuth = -15.0, 90.0
  option = mujoco.MjvOption()
  option.geomgroup[3] = int(collision_geoms)
  frames = []
  renderer = mujoco.Renderer(model, height, width)
  try:
    for qpos in qpos_TQ:
      data.qpos[:] = qpos
      mujoco.mj_forward(model, data)
      renderer.update_scene(data, camera, scene_option=option)
      frames.append(renderer.render().copy())
  finally:
    renderer.close()
  return np.stack(frames)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
  """Two clips as one, a white bar between them; the shorter episode holds its last frame."""
  length = max(len(left), len(right))
  pad = lambda clip: np.concatenate([clip, np.repeat(clip[-1:], length - len(clip), 0)])
  bar = np.full((length, left.shape[1], gap, 3), 255, np.uint8)
  return np.concatenate([pad(left), bar, pad(right)], axis=2)


def stills(frames: np.ndarray, count: int = 5, gap: int = 4) -> np.ndarray:
  """`count` evenly spaced frames stacked top to bottom (white bars between): a figure."""
  picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
  bar = np.full((gap, frames.shape[2], 3), 255, np.uint8)
  rows = [part for i in picks for part in (frames[i], bar)][:-1]
  return np.concatenate(rows, axis=0)


def write(path: str, frames: np.ndarray, fps: float) -> None:
  """An .mp4 or .gif clip, or a .png of evenly spaced stills (for a README)."""
  import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel
  if path.endswith(".png"):
    imageio.imwrite(path, stills(frames))
  elif path.endswith(".gif"):
    imageio.mimsave(path, list(frames), duration=1.0 / fps, loop=0)
  else:
    imageio.mimsave(path, list(frames), fps=fps, macro_block_size=1)


def record(policy, sim: envs.SimulatorEnv, path: str, *, steps: int = 200, seed: int = 0,
           width: int = 320, height: int = 240) -> float:
  """Writes the side-by-side video to `path` (.mp4, .gif, or .png stills); returns the mirror
  deviation."""
  (q, alive), (q_m, alive_m), deviation = rollouts(policy, sim, steps=steps, seed=seed)
  live = lambda qpos, a: qpos[: max(int((a > 0).sum()) + 1, 1)]  # up to the last alive step
  standin = False
  if sim.env_id.startswith("playground/"):
    from reflex_jax.envs import menagerie  # pylint: disable=import-outside-toplevel
    standin = menagerie.using_standin()
  frames = side_by_side(
      render(sim.mj_model, live(q, alive), width=width, height=height, collision_geoms=standin),
      render(sim.mj_model, live(q_m, alive_m), width=width, height=height,
             collision_geoms=standin))
  write(path, frames, fps=min(1.0 / sim.dt, 60.0))
  return deviation


def main(argv: list[str] | None = None) -> int:
  from reflex_jax.run.experiment import load_policy  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.run.video", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("run_dir", help="an experiment's run directory")
  parser.add_argument("--variant", default="reflex")
  parser.add_argument("--seed", type=int, default=0, help="which trained run")
  parser.add_argument("--episode-seed", type=int, default=0, help="the start state")
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--out", default=None,
                      help=".mp4, .gif, or .png (5 stills) (default: .mp4 in run_dir)")
  args = parser.parse_args(argv)
  try:
    policy, sim = load_policy(args.run_dir, args.variant, args.seed)
  except (ValueError, FileNotFoundError) as error:
    parser.error(str(error))
  out = args.out or os.path.join(args.run_dir, f"{args.variant}_seed{args.seed}.mp4")
  deviation = record(policy, sim, out, steps=args.steps, seed=args.episode_seed)
  print(f"{out}: left from s0, right from g·s0; mirror deviation {deviation:.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
