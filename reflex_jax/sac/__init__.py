"""SAC and Reflex-SAC: `train(env, config, seed)` → (make_policy, params, metrics)."""

from reflex_jax.regularizer import ReflexConfig
from reflex_jax.sac.train import SACConfig, TrainState, make_trainer, train

__all__ = ["ReflexConfig", "SACConfig", "TrainState", "make_trainer", "train"]
