"""Typed configs: YAML files and `key=value` overrides merged by OmegaConf onto a dataclass
schema, which checks every key and value; a failure is a one-line ConfigError naming the key.
"""

from __future__ import annotations

import contextlib
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runkit.errors import ConfigError


def yaml_layers(files) -> list[DictConfig]:
  """Each YAML file, in order."""
  with naming_errors():
    return [OmegaConf.load(path) for path in files]


def override_layer(overrides) -> DictConfig:
  """The `key=value` overrides as one layer."""
  bad = [o for o in overrides if "=" not in o]
  if bad:
    raise ConfigError(f"overrides must be key=value, got {bad}")
  with naming_errors():
    return OmegaConf.from_dotlist(list(overrides))


def build(schema, layers, *, sections: dict[str, str] | None = None) -> Any:
  """`schema` (a dataclass, or an instance as the first layer) ← each layer in order (a
  DictConfig or a dict), as dataclass objects. A dataclass's own check (a ValueError from
  __post_init__) names its fields `Owner.field`: `sections` {"Owner.": "key."} renames them
  to the keys the user writes."""
  with naming_errors(sections):
    merged = OmegaConf.structured(schema)
    for layer in layers:
      merged = OmegaConf.merge(merged, layer)
    return OmegaConf.to_object(merged)


@contextlib.contextmanager
def naming_errors(sections: dict[str, str] | None = None):
  """OmegaConf's errors (and dataclass checks' ValueErrors) inside become ConfigErrors: the
  first line of the message, then the key."""
  try:
    yield
  except ConfigError:
    raise
  except OmegaConfBaseException as error:
    key = getattr(error, "full_key", None)
    raise ConfigError(str(error).split("\n")[0] + (f" (key: {key})" if key else "")) from None
  except ValueError as error:
    message = str(error)
    for owner, prefix in (sections or {}).items():
      message = message.replace(owner, prefix)
    raise ConfigError(message) from None


def parse_shard(text: str) -> tuple[int, int]:
  """A `--shard i/n` argument (this process runs items i, i + n, …) → (i, n), 0 ≤ i < n."""
  try:
    index, count = (int(part) for part in text.split("/"))
  except ValueError:
    raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
  if not 0 <= index < count:
    raise ConfigError(f"--shard {text!r}: need 0 <= i < n")
  return index, count
