"""Parity with transformers' HrmTextForCausalLM (PyTorch, CPU) and the checkpoint format."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from conftest import TINY, forward, make_model, tokens

from hrm_jax.model import Segments, hf_io
from tests.helpers import xla_flags

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = TINY.vocab_size


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """A tiny random transformers model with a random (non-zero) z_L_init, saved in the
  released layout."""
  torch.manual_seed(0)
  config = transformers.HrmTextConfig(
      vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
      num_attention_heads=4, head_dim=16, H_cycles=2, L_cycles=3, max_position_embeddings=64,
      embedding_scale=8.0, prefix_lm=True, pad_token_id=0)
  model = transformers.HrmTextForCausalLM(config).eval()
  with torch.no_grad():
    model.model.z_L_init.normal_()
  directory = str(tmp_path_factory.mktemp("hf"))
  model.save_pretrained(directory)
  return model, directory


def _reference_logits(model, tok, prefix=None):
  kwargs = {}
  if prefix is not None:
    token_type = np.zeros_like(tok)
    token_type[:, :prefix] = 1
    kwargs["token_type_ids"] = torch.tensor(token_type)
  with torch.no_grad():
    return model(input_ids=torch.tensor(np.asarray(tok)), **kwargs).logits.numpy()


@pytest.mark.parametrize("prefix", [None, 5])
def test_logits_match_transformers(reference, prefix):
  ref_model, directory = reference
  _, ours = hf_io.load_hf(directory)
  tok = tokens(2, 12)
  segments = None if prefix is None else Segments.single(tok, prefix)
  with jax.default_matmul_precision("highest"):
    got = np.asarray(forward(ours, tok, segments))
  want = _reference_logits(ref_model, tok, prefix)
  assert np.abs(got - want).max() <= 1e-4
  if prefix is not None:  # the prefix really changes the reference's output
    assert np.abs(want - _reference_logits(ref_model, tok)).max() > 1e-3


def test_export_loads_in_transformers_with_equal_logits(tmp_path):
  ours = make_model()
  hf_io.save_hf(ours, str(tmp_path))
  loaded = transformers.HrmTextForCausalLM.from_pretrained(str(tmp_path)).eval()
  np.testing.assert_array_equal(loaded.model.z_L_init.detach().numpy(),
                                np.asarray(ours.z_L_init[...]))
  tok = tokens(2, 10)
  with jax.default_matmul_precision("highest"):
    got = np.asarray(forward(ours, tok, Segments.single(tok, 4)))
  assert np.abs(got - _reference_logits(loaded, tok, 4)).max() <= 1e-4


def test_round_trip_through_several_shards_is_exact(tmp_path):
  ours = make_model(seed=3)
  hf_io.save_hf(ours, str(tmp_path), max_shard_bytes=200_000)
  with open(tmp_path / hf_io.INDEX_FILE) as f:
    files = set(json.load(f)["weight_map"].values())
  assert len(files) > 2
  _, back = hf_io.load_hf(str(tmp_path))
  from flax import nnx  # pylint: disable=import-outside-toplevel
  jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(ours)),
               nnx.to_pure_dict(nnx.state(back)))


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError):
    hf_io.load_hf(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
  with pytest.raises(ValueError, match="model_type 'llama'"):
    hf_io.load_hf(str(tmp_path))
  with pytest.raises(ValueError, match="architecture 'hrm'"):
    hf_io.save_hf(make_model(TINY.replace(architecture="trm")), str(tmp_path / "x"))


def test_loads_the_config_written_by_the_authors_conversion_script(tmp_path):
  """Their convert_to_hf.py counts num_hidden_layers over both stacks and adds L_bp_steps and
  rope_theta; the weights are those of the released layout."""
  ours = make_model(seed=1)
  hf_io.save_hf(ours, str(tmp_path))
  c = TINY
  authors = {
      "model_type": "hrm_text", "architectures": ["HrmTextForCausalLM"],
      "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
      "intermediate_size": c.mlp_width, "num_hidden_layers": 2 * c.num_layers_per_stack,
      "num_attention_heads": c.num_attention_heads,
      "num_key_value_heads": c.num_attention_heads, "head_dim": c.head_dim,
      "H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "L_bp_steps": [1, 3],
      "max_position_embeddings": c.max_position_embeddings, "rms_norm_eps": c.rms_norm_eps,
      "rope_theta": c.rope_theta, "tie_word_embeddings": False,
      "initializer_range": 1 / c.input_scale, "embedding_scale": c.input_scale,
      "prefix_lm": True, "pad_token_id": 0}
  (tmp_path / "config.json").write_text(json.dumps(authors))
  config, back = hf_io.load_hf(str(tmp_path))
  assert config.num_layers_per_stack == c.num_layers_per_stack
  from flax import nnx  # pylint: disable=import-outside-toplevel
  jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(ours)),
               nnx.to_pure_dict(nnx.state(back)))
  # Any other count is named against the weights, not a KeyError from deep inside.
  (tmp_path / "config.json").write_text(json.dumps({**authors, "num_hidden_layers": 6}))
  with pytest.raises(ValueError, match=r"gives 3 layers per stack but the weights hold "
                                       r"model.H_module.layers \[0, 1\]"):
    hf_io.load_hf(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({**authors, "num_key_value_heads": 2}))
  with pytest.raises(ValueError, match="num_key_value_heads=2"):
    hf_io.load_hf(str(tmp_path))


def test_sharded_load_on_8_devices_reads_only_slices(reference):
  """Each device's parameter shard is built from a slice read; the result equals the
  unsharded load."""
  _, directory = reference
  script = textwrap.dedent(f"""
      import jax, numpy as np
      from jax.sharding import NamedSharding, PartitionSpec as P
      from flax import nnx
      from hrm_jax.model import hf_io
      mesh = jax.make_mesh((8,), ("model",))
      def shard_last(path, shape):  # split the output axis of every matrix 8 ways
        spec = [None] * len(shape)
        if len(shape) >= 2 and shape[-1] % 8 == 0:
          spec[-1] = "model"
        return NamedSharding(mesh, P(*spec))
      _, sharded = hf_io.load_hf({directory!r}, sharding_fn=shard_last)
      _, plain = hf_io.load_hf({directory!r})
      q = nnx.state(sharded)["L_module"]["layers"]["self_attn"]["q_proj"]["kernel"][...]
      assert len(q.addressable_shards) == 8 and q.addressable_shards[0].data.shape[-1] == 64 // 8
      jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                   nnx.to_pure_dict(nnx.state(sharded)), nnx.to_pure_dict(nnx.state(plain)))
      print("ok")
  """)
  env = dict(os.environ, XLA_FLAGS=xla_flags(8), JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
  assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_cached_generation_matches_transformers_generate(reference):
  from hrm_jax.generate import generate  # pylint: disable=import-outside-toplevel
  ref_model, directory = reference
  _, ours = hf_io.load_hf(directory)
  prompt = [int(t) for t in np.asarray(tokens(1, 9, seed=4))[0]]
  with jax.default_matmul_precision("highest"):
    got = generate(ours, [prompt], max_new_tokens=10)[0]
  with torch.no_grad():
    want = ref_model.generate(
        input_ids=torch.tensor([prompt]), token_type_ids=torch.ones((1, len(prompt)),
                                                                    dtype=torch.long),
        max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0,
        attention_mask=torch.ones((1, len(prompt)), dtype=torch.long))[0, len(prompt):]
  assert len(got) == 10  # no EOA in this vocabulary's random output
  assert got == want.tolist()


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_an_export_generates_our_answers_with_plain_transformers(tmp_path, kind):
  """python -m hrm_jax.export's directory: AutoTokenizer writes our prompt layout with the
  prefix marked (token_type_ids), AutoModelForCausalLM.generate with the exported generation
  config gives our greedy tokens, and the tokenizer decodes them as ours does."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from conftest import BYTE_TINY  # pylint: disable=import-outside-toplevel
  from hrm_jax.data.layout import prompt_tokens  # pylint: disable=import-outside-toplevel
  from hrm_jax.data.tokenizer import ByteTokenizer, EOA, train_bpe  # pylint: disable=import-outside-toplevel
  from hrm_jax.export import write  # pylint: disable=import-outside-toplevel
  from hrm_jax.generate import generate  # pylint: disable=import-outside-toplevel
  from hrm_jax.model import build  # pylint: disable=import-outside-toplevel
  texts = ["What is 12 + 30?", "sort: 5 3 9 1", "héllo wörld ∑"]
  tokenizer = (ByteTokenizer() if kind == "byte"
               else train_bpe(texts * 20 + ["abcdefghijklmnopqrstuvwxyz 0123456789"], 300))
  ours = build(BYTE_TINY.replace(vocab_size=tokenizer.vocab_size), rngs=nnx.Rngs(3))
  write(ours, tokenizer, str(tmp_path))
  hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  hf_model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
  assert hf_model.generation_config.eos_token_id == EOA
  unmarked = []
  for text in texts:
    prompt = prompt_tokens(tokenizer, text)
    enc = hf_tok(text, return_tensors="pt")
    assert enc["input_ids"][0].tolist() == prompt
    assert enc["token_type_ids"][0].tolist() == [1] * len(prompt)
    with jax.default_matmul_precision("highest"):
      want = generate(ours, [prompt], max_new_tokens=8, stop_token=None)[0]
    with torch.no_grad():
      got = hf_model.generate(**enc, max_new_tokens=8, eos_token_id=None)[0, len(prompt):]
    assert got.tolist() == want
    assert hf_tok.decode(got, skip_special_tokens=True) == tokenizer.decode(want)
    with torch.no_grad():  # without the prefix mark transformers attends causally
      unmarked.append(hf_model.generate(input_ids=enc["input_ids"],
                                        attention_mask=enc["attention_mask"], max_new_tokens=8,
                                        eos_token_id=None)[0, len(prompt):].tolist() != want)
  assert any(unmarked)


def test_a_hub_id_says_there_is_no_hub_access_and_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="hub id; this reads local directories only.*"
                     "huggingface-cli download sapientinc/HRM-Text-1B"):
    hf_io.load_hf("sapientinc/HRM-Text-1B")
  with pytest.raises(FileNotFoundError, match="holds no config.json"):
    hf_io.load_hf(str(tmp_path))
