"""Read and write the Hugging Face HRM-Text format (config.json + safetensors, the layout of
the released `sapientinc/HRM-Text-1B`).

Loading builds every parameter with `jax.make_array_from_callback`, so each process reads
only the slices its devices hold (lazily, through `safe_open(...).get_slice`): sharded
loading never needs the whole model on one host. Hugging Face linear weights are [out, in];
ours are [in, out] kernels, with the blocks of a stack stacked on a leading layer axis.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors import safe_open
from safetensors.numpy import save_file

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.hrm import HrmText

CONFIG_FILE, SINGLE_FILE, INDEX_FILE = "config.json", "model.safetensors", "model.safetensors.index.json"


def layers_per_stack(hf: dict) -> int:
  """Blocks per stack from a config.json in one of the three layouts that exist:
  - transformers' (the released checkpoints): `num_layers_per_stack`, with
    `num_hidden_layers` inflated to one per attention call;
  - the authors' conversion script (it writes `L_bp_steps`): `num_hidden_layers` counts the
    blocks of both stacks (their `n_layers`, halved per stack by `half_layers`);
  - older transformers files: `num_hidden_layers` per stack."""
  if hf.get("num_layers_per_stack"):
    return int(hf["num_layers_per_stack"])
  if "num_hidden_layers" not in hf:
    raise ValueError("config.json has neither num_layers_per_stack nor num_hidden_layers")
  n = int(hf["num_hidden_layers"])
  if "L_bp_steps" in hf:
    if n % 2:
      raise ValueError(f"config.json num_hidden_layers={n} with L_bp_steps (the authors' "
                       "conversion, which counts both stacks) must be even")
    return n // 2
  return n


def config_from_hf(hf: dict, **overrides) -> ModelConfig:
  if hf.get("model_type") not in (None, "hrm_text"):
    raise ValueError(f"config.json has model_type {hf.get('model_type')!r}, expected 'hrm_text'")
  missing = [k for k in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size")
             if k not in hf]
  if missing:
    raise ValueError(f"config.json lacks {', '.join(missing)}")
  kv_heads = hf.get("num_key_value_heads", hf["num_attention_heads"])
  if kv_heads != hf["num_attention_heads"]:
    raise ValueError(f"config.json num_key_value_heads={kv_heads} differs from "
                     f"num_attention_heads={hf['num_attention_heads']}: HRM-Text has no "
                     "grouped-query attention")
  rope = hf.get("rope_parameters") or {}
  n = layers_per_stack(hf)
  fields = dict(
      vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
      num_attention_heads=hf["num_attention_heads"],
      head_dim=hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"],
      intermediate_size=hf["intermediate_size"], num_layers_per_stack=n,
      H_cycles=hf.get("H_cycles", 2), L_cycles=hf.get("L_cycles", 3),
      max_position_embeddings=hf.get("max_position_embeddings", 4096),
      rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
      rope_theta=rope.get("rope_theta", hf.get("rope_theta", 10_000.0)),
      embedding_scale=hf.get("embedding_scale"),
      attention="prefix_lm" if hf.get("prefix_lm", True) else "causal",
      pad_token_id=hf.get("pad_token_id") or 0)
  if hf.get("tie_word_embeddings"):
    raise ValueError("tied embeddings are not part of HRM-Text (tie_word_embeddings=true)")
  fields.update(overrides)
  return ModelConfig(**fields)


def config_to_hf(config: ModelConfig, dtype: str = "float32") -> dict:
  n = config.num_layers_per_stack
  return {
      "architectures": ["HrmTextForCausalLM"], "model_type": "hrm_text",
      "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
      "intermediate_size": config.mlp_width, "num_attention_heads": config.num_attention_heads,
      "head_dim": config.head_dim, "num_layers_per_stack": n,
      # transformers stores the per-call total (one KV-cache slot per attention invocation)
      "num_hidden_layers": n * config.H_cycles * (config.L_cycles + 1),
      "H_cycles": config.H_cycles, "L_cycles": config.L_cycles,
      "max_position_embeddings": config.max_position_embeddings,
      "rms_norm_eps": config.rms_norm_eps,
      "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
      "embedding_scale": config.input_scale, "prefix_lm": config.attention == "prefix_lm",
      "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
      "tie_word_embeddings": False, "pad_token_id": config.pad_token_id, "dtype": dtype,
  }


# Our block parameter → (released tensor, chunk, chunks): the released checkpoints fuse
# [gate; q; k; v] into attn.gqkv_proj and [gate; up] into mlp.gate_up_proj along the output
# rows; transformers splits them on load ("runtime" names, also accepted when reading).
_FUSED = {
    ("self_attn", "gate_proj"): ("attn.gqkv_proj", 0, 4),
    ("self_attn", "q_proj"): ("attn.gqkv_proj", 1, 4),
    ("self_attn", "k_proj"): ("attn.gqkv_proj", 2, 4),
    ("self_attn", "v_proj"): ("attn.gqkv_proj", 3, 4),
    ("self_attn", "o_proj"): ("attn.o_proj", 0, 1),
    ("mlp", "gate_proj"): ("mlp.gate_up_proj", 0, 2),
    ("mlp", "up_proj"): ("mlp.gate_up_proj", 1, 2),
    ("mlp", "down_proj"): ("mlp.down_proj", 0, 1),
}


@dataclasses.dataclass(frozen=True)
class _Tensor:
  """Where one of our parameters lives in a checkpoint."""
  name: str                 # with "{i}" for the layer of a stacked block parameter
  runtime_name: str         # transformers' unfused name, accepted when reading
  transpose: bool = False   # ours [in, out] vs HF [out, in]
  chunk: int = 0            # row block of a fused tensor
  chunks: int = 1


def _tensor(path: tuple) -> _Tensor:
  keys = [str(k) for k in path]
  if keys == ["embed_tokens", "embedding"]:
    return _Tensor("model.embed_tokens.weight", "model.embed_tokens.weight")
  if keys == ["lm_head", "kernel"]:
    return _Tensor("lm_head.weight", "lm_head.weight", transpose=True)
  if keys == ["z_L_init"]:
    return _Tensor("model.z_L_init", "model.z_L_init")
  if len(keys) == 5 and keys[1] == "layers" and keys[-1] == "kernel":
    stack, _, group, proj, _ = keys
    fused, chunk, chunks = _FUSED[(group, proj)]
    prefix = f"model.{stack}.layers.{{i}}."
    return _Tensor(prefix + fused + ".weight", prefix + f"{group}.{proj}.weight", True, chunk,
                   chunks)
  raise KeyError(f"no Hugging Face name for parameter {'.'.join(keys)}")


def _check_hrm(model_or_config):
  config = getattr(model_or_config, "config", model_or_config)
  if config.model_class is not HrmText:
    raise ValueError(f"the Hugging Face HRM-Text format holds architecture 'hrm', not "
                     f"{config.architecture!r}")


class _Reader:
  """Tensor name → lazily opened safetensors file (one or many shards)."""

  def __init__(self, directory: str):
    index = os.path.join(directory, INDEX_FILE)
    if os.path.exists(index):
      with open(index) as f:
        self.where = {k: os.path.join(directory, v) for k, v in json.load(f)["weight_map"].items()}
    else:
      single = os.path.join(directory, SINGLE_FILE)
      if not os.path.exists(single):
        raise FileNotFoundError(f"{directory}: neither {SINGLE_FILE} nor {INDEX_FILE}")
      with safe_open(single, framework="numpy") as f:
        self.where = {k: single for k in f.keys()}
    self._open = {}

  def slice(self, name: str):
    if name not in self.where:
      raise KeyError(f"checkpoint has no tensor {name!r}")
    path = self.where[name]
    if path not in self._open:
      self._open[path] = safe_open(path, framework="numpy")
    return self._open[path].get_slice(name)


def load_hf(directory: str, *, sharding_fn: Callable | None = None, **config_overrides):
  """(config, model) from a Hugging Face HRM-Text directory.

  `sharding_fn(path, shape) -> jax.sharding.Sharding` places each parameter (default: the
  first local device); each process reads only the slices its devices need.
  """
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isfile(path):
    hub = (not os.path.exists(directory) and directory.count("/") == 1
           and not directory.startswith((".", "/")))
    raise FileNotFoundError(
        f"{directory!r} looks like a Hugging Face hub id; this reads local directories only "
        "(no hub access here). Download it where you have access (e.g. `huggingface-cli "
        f"download {directory} --local-dir DIR`), copy DIR here and pass its path"
        if hub else f"{directory} holds no {CONFIG_FILE}: not a Hugging Face model directory")
  with open(path) as f:
    config = config_from_hf(json.load(f), **config_overrides)
  abstract = nnx.eval_shape(lambda: HrmText(config, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  reader = _Reader(directory)
  for stack in ("H_module", "L_module"):
    held = {int(name.split(".")[3]) for name in reader.where
            if name.startswith(f"model.{stack}.layers.")}
    if held != set(range(config.num_layers_per_stack)):
      raise ValueError(
          f"{directory}: config.json gives {config.num_layers_per_stack} layers per stack but "
          f"the weights hold model.{stack}.layers {sorted(held) or 'none'}")
  default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def load(path, leaf):
    where, shape = _tensor(path), tuple(leaf.shape)
    stacked = "{i}" in where.name

    def read_one(i, index):
      if where.name.format(i=i) in reader.where:
        return _read(reader.slice(where.name.format(i=i)), index, where)
      return _read(reader.slice(where.runtime_name.format(i=i)), index,
                   dataclasses.replace(where, chunk=0, chunks=1))

    def read(index):
      index = tuple(index) + (slice(None),) * (len(shape) - len(index))
      if stacked:
        layers = range(*index[0].indices(shape[0]))
        return np.stack([read_one(i, index[1:]) for i in layers]).astype(np.float32)
      return read_one(0, index).astype(np.float32)

    sharding = sharding_fn(path, shape) if sharding_fn else default
    return jax.make_array_from_callback(shape, sharding, read)

  values = jax.tree_util.tree_map_with_path(
      lambda p, v: load(tuple(getattr(k, "key", getattr(k, "name", k)) for k in p), v),
      nnx.to_pure_dict(state))
  nnx.replace_by_pure_dict(state, values)
  return config, nnx.merge(graphdef, state)


def _read(tensor_slice, index, where: _Tensor) -> np.ndarray:
  if not where.transpose:
    return np.asarray(tensor_slice[index])
  rows_in, cols_out = index  # ours [in, out] ← HF rows [chunk·out + out_index], cols [in]
  rows = tensor_slice.get_shape()[0] // where.chunks
  start, stop, _ = cols_out.indices(rows)
  offset = where.chunk * rows
  return np.asarray(tensor_slice[offset + start:offset + stop, rows_in]).T


def save_hf(model: HrmText, directory: str, *, dtype: str = "float32",
            max_shard_bytes: int = 5 * 2**30) -> None:
  """Write config.json and safetensors (several shards + index past `max_shard_bytes`)."""
  _check_hrm(model)
  os.makedirs(directory, exist_ok=True)
  np_dtype = {"float32": np.float32, "bfloat16": jnp.bfloat16, "float16": np.float16}[dtype]
  parts = {}  # released name → its chunks, filled in order
  for path, value in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model)))[0]:
    where = _tensor(tuple(getattr(k, "key", k) for k in path))
    array = np.asarray(jax.device_get(value)).astype(np_dtype)
    layers = enumerate(array) if "{i}" in where.name else [(0, array)]
    for i, layer in layers:
      chunks = parts.setdefault(where.name.format(i=i), [None] * where.chunks)
      chunks[where.chunk] = layer.T if where.transpose else layer
  tensors = {name: np.ascontiguousarray(np.concatenate(chunks, axis=0) if len(chunks) > 1
                                        else chunks[0]) for name, chunks in parts.items()}
  with open(os.path.join(directory, CONFIG_FILE), "w") as f:
    json.dump(config_to_hf(model.config, dtype), f, indent=2)
  total = sum(t.nbytes for t in tensors.values())
  if total <= max_shard_bytes:
    save_file(tensors, os.path.join(directory, SINGLE_FILE))
    return
  shards, current, size = [], {}, 0
  for name, t in tensors.items():
    if current and size + t.nbytes > max_shard_bytes:
      shards.append(current)
      current, size = {}, 0
    current[name], size = t, size + t.nbytes
  shards.append(current)
  weight_map = {}
  for k, shard in enumerate(shards):
    file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
    save_file(shard, os.path.join(directory, file))
    weight_map.update({name: file for name in shard})
  with open(os.path.join(directory, INDEX_FILE), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

