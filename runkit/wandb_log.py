"""Optional Weights & Biases logging for both halves (`log.wandb=true` in HRM-Text,
`wandb=true` in Reflex experiments), next to the JSONL/CSV/TensorBoard files. Offline by
default: runs are written under the run directory and `wandb sync` uploads them later (this
library's machines may have no network); `mode=online` logs live."""

from __future__ import annotations

from runkit.errors import ConfigError

MODES = ("offline", "online", "disabled")


def start(directory: str, name: str, config: dict, *, project: str, mode: str = "offline",
          group: str | None = None):
  """A W&B run writing under `directory`; ConfigError when wandb is missing or mode unknown."""
  if mode not in MODES:
    raise ConfigError(f"wandb mode {mode!r}; choose one of {MODES}")
  try:
    import wandb  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError("W&B logging needs the wandb package: pip install "
                      "'reflex-hrm-jax[wandb]' (or turn it off)") from None
  return wandb.init(project=project, name=name, group=group, dir=directory, config=config,
                    mode=mode, reinit="create_new")
