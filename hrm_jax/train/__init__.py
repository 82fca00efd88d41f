"""HRM-Text training: `python -m hrm_jax.train`, or `hrm_jax.train.loop.train(config)`."""
