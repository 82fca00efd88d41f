"""The device mesh and parameter sharding by logical axis names (MaxText's scheme).

Every parameter gets logical axes from its path (PARAMETER_AXES); LOGICAL_RULES maps logical
axes to mesh axes. The mesh is (data, fsdp, tensor): batches split over data × fsdp,
parameters and optimizer state split over fsdp (ZeRO-3 style) and tensor. A dimension that
does not divide evenly over its mesh axes is replicated instead.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

LOGICAL_RULES = {
    "batch": ("data", "fsdp"),
    "embed": "fsdp",
    "heads": "tensor",
    "mlp": "tensor",
    "vocab": "tensor",
    "layers": None,
}

# Parameter path (joined with "/") → logical axes, first match wins.
PARAMETER_AXES = (
    (r"embed_tokens/embedding$", ("vocab", "embed")),
    (r"lm_head/kernel$", ("embed", "vocab")),
    (r"self_attn/(q|k|v|gate)_proj/kernel$", ("layers", "embed", "heads")),
    (r"self_attn/o_proj/kernel$", ("layers", "heads", "embed")),
    (r"mlp/(gate|up)_proj/kernel$", ("layers", "embed", "mlp")),
    (r"mlp/down_proj/kernel$", ("layers", "mlp", "embed")),
    (r"z_L_init$", (None,)),
)


@dataclasses.dataclass
class MeshConfig:
  """Mesh axis sizes; -1 takes every device left over."""
  data: int = -1  # data-parallel replicas (batch split, parameters replicated)
  fsdp: int = 1  # parameters and optimizer state sharded over this many devices
  tensor: int = 1  # tensor parallelism: heads and MLP width split


def make_mesh(config: MeshConfig, devices=None) -> jax.sharding.Mesh:
  devices = jax.devices() if devices is None else devices
  sizes = [config.data, config.fsdp, config.tensor]
  if sum(s == -1 for s in sizes) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"mesh sizes {dict(zip(MESH_AXES, sizes))}: each must be positive, "
                     "at most one may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"{len(devices)} devices do not divide over mesh "
                       f"{dict(zip(MESH_AXES, sizes))}")
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                     f"have {len(devices)}")
  return jax.make_mesh(tuple(sizes), MESH_AXES, devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def logical_axes(path: str) -> tuple:
  for pattern, axes in PARAMETER_AXES:
    if re.search(pattern, path):
      return axes
  raise KeyError(f"no logical axes for parameter {path!r}; add it to "
                 "hrm_jax.train.sharding.PARAMETER_AXES")


def spec_for(logical: tuple, shape: tuple, mesh: jax.sharding.Mesh) -> P:
  """PartitionSpec from logical axes; indivisible dimensions stay replicated."""
  if len(logical) != len(shape):
    raise ValueError(f"logical axes {logical} do not match shape {shape}")
  entries = []
  for name, dim in zip(logical, shape):
    mesh_axes = LOGICAL_RULES.get(name) if name else None
    if mesh_axes is not None:
      axes = (mesh_axes,) if isinstance(mesh_axes, str) else mesh_axes
      if dim % math.prod(mesh.shape[a] for a in axes):
        mesh_axes = None
    entries.append(mesh_axes)
  return P(*entries)


def _path_string(key_path) -> str:
  names = []
  for key in key_path:
    name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", None)))
    if name not in (None, "value"):
      names.append(str(name))
  return "/".join(names)


def parameter_shardings(tree, mesh: jax.sharding.Mesh):
  """NamedShardings for a parameter-shaped pytree (params, EMA, Adam moments)."""
  def one(key_path, leaf):
    if np.ndim(leaf) == 0:  # step counters
      return NamedSharding(mesh, P())
    return NamedSharding(mesh, spec_for(logical_axes(_path_string(key_path)),
                                        np.shape(leaf), mesh))
  return jax.tree_util.tree_map_with_path(one, tree)


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """[batch, length] arrays: rows over data × fsdp."""
  return NamedSharding(mesh, P(LOGICAL_RULES["batch"], None))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_batch(batch: dict, mesh: jax.sharding.Mesh) -> dict:
  """This host's rows → global arrays sharded over the batch axes (multi-host safe)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
