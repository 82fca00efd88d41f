"""PPO and Reflex-PPO: `train(env, config, seed)` → (make_policy, params, metrics)."""

from reflex_jax.ppo.train import PPOConfig, TrainState, make_trainer, train
from reflex_jax.regularizer import ReflexConfig

__all__ = ["PPOConfig", "ReflexConfig", "TrainState", "make_trainer", "train"]
