"""What both trainers (reflex_jax and hrm_jax) need alike: the errors a user acts on, configs
from YAML and `key=value`, metric files, and Orbax checkpoints that survive a damaged newest
step. Each half builds its own specifics on these."""
