"""Reflex: reflection symmetry for state-based continuous-control RL in JAX.

    from reflex_jax import envs
    from reflex_jax.symmetry import registry

    env = envs.make("brax/ant", num_envs=128)
    reflection = registry.get("brax/ant").reflection(env.mj_model, env.observation_size)
    mirrored_obs = reflection.reflect_obs(obs)      # any batch shape, inside jit/vmap
"""

import importlib.util as _importlib_util

# The [rl] extra's modules (pyproject.toml; tests/test_dependencies.py keeps the two equal).
EXTRA, REQUIRES = "rl", ("brax", "mujoco", "mujoco_playground", "imageio", "imageio_ffmpeg")
_missing = [m for m in REQUIRES if _importlib_util.find_spec(m) is None]
if _missing:
  raise ImportError(f"reflex_jax needs {', '.join(_missing)}, which this environment lacks: "
                    "install the Reflex half with  pip install 'reflex-hrm-jax[rl]'")
