"""Running experiments as users do: configs and CLI, checkpoints, metric logs, the grid
runner, reports and policy videos."""

from reflex_jax.run.checkpoint import RunCheckpoints

__all__ = ["RunCheckpoints"]
