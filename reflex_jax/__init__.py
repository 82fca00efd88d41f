"""Reflex: reflection symmetry for state-based continuous-control RL in JAX.

    from reflex_jax import envs
    from reflex_jax.symmetry import registry

    env = envs.make("brax/ant", num_envs=128)
    reflection = registry.get("brax/ant").reflection(env.mj_model, env.observation_size)
    mirrored_obs = reflection.reflect_obs(obs)      # any batch shape, inside jit/vmap
"""
