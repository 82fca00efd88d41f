"""The training step, sharding, the NaN guard, configs and exact resume after SIGKILL."""

import functools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from hrm_jax.data.layout import IGNORE
from hrm_jax.model import build, preset
from hrm_jax.model.hrm import Buffer
from hrm_jax.train import sharding
from hrm_jax.train.config import ConfigError, TrainConfig, load_config, model_config, to_yaml
from hrm_jax.train.loop import NonFiniteError, _check_finite
from hrm_jax.train.metrics import read_metrics
from hrm_jax.train.optimizer import adam_atan2
from hrm_jax.train.step import TrainState, loss_sums, segments_of, train_step

from conftest import TINY, forward, make_model
from tests.helpers import corrupt_arrays, kill_at_checkpoint, run_to_completion, xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _batch(rows=8, length=16, seed=0):
  rng = np.random.default_rng(seed)
  half = length // 2
  segment_ids = np.where(np.arange(length) < half, 1, 2) * np.ones((rows, 1), np.int32)
  positions = np.where(np.arange(length) < half, np.arange(length), np.arange(length) - half)
  labels = rng.integers(1, TINY.vocab_size, (rows, length))
  labels[:, :3] = IGNORE
  labels[:, half:half + 2] = IGNORE
  return {"tokens": rng.integers(1, TINY.vocab_size, (rows, length)).astype(np.int32),
          "labels": labels.astype(np.int32), "segment_ids": segment_ids.astype(np.int32),
          "positions": np.broadcast_to(positions, (rows, length)).astype(np.int32),
          "prefix_lengths": np.full((rows, length), 3, np.int32)}


# The step as the loop runs it: one compiled program per (optimizer, bp_steps, accumulation,
# ema_decay) and batch shape. The tests share SGD and their settings where the value does not
# matter, so they share programs.
step_jit = jax.jit(train_step, static_argnums=(0, 1),
                   static_argnames=("bp_steps", "accumulation", "ema_decay"))
SGD = optax.sgd(0.1)


def _setup(optimizer):
  graphdef, params, buffers = nnx.split(make_model(), nnx.Param, Buffer)
  state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), params,
                     jnp.full((), -1, jnp.int32))
  return graphdef, buffers, state


def test_loss_is_the_mean_cross_entropy_over_response_tokens_only():
  optimizer = SGD
  graphdef, buffers, state = _setup(optimizer)
  batch = _batch()
  # The loss is that of the forward pass, before the update, whatever the gradient window.
  _, metrics = step_jit(graphdef, optimizer, buffers, state, batch, bp_steps=3,
                        accumulation=1, ema_decay=0.9)
  logits = np.asarray(forward(make_model(), batch["tokens"], segments_of(
      jax.tree.map(jnp.asarray, batch))), np.float64)
  log_probs = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                     keepdims=True)) - logits.max(-1, keepdims=True)
  mask = batch["labels"] != IGNORE
  picked = np.take_along_axis(log_probs, np.where(mask, batch["labels"], 0)[..., None], -1)[..., 0]
  np.testing.assert_allclose(float(metrics["loss"]), -picked[mask].mean(), rtol=1e-5)
  assert int(metrics["labelled_tokens"]) == mask.sum()


def test_gradient_accumulation_equals_one_large_batch():
  optimizer = SGD
  graphdef, buffers, state = _setup(optimizer)
  batch = _batch(rows=8)
  step = functools.partial(step_jit, graphdef, optimizer, buffers, bp_steps=3, ema_decay=0.9)
  whole, m1 = step(state, batch, accumulation=1)
  split, m2 = step(state, batch, accumulation=2)  # the single-device step of the test below
  np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-6)
  for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(split.params)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  with pytest.raises(ValueError, match="does not split"):
    step(state, batch, accumulation=3)


@pytest.mark.parametrize("chunk", [4, 5])  # divides the 16 positions; leaves a padded tail
def test_chunked_output_head_gives_the_whole_rows_loss_and_gradients(chunk):
  optimizer = SGD
  graphdef, buffers, state = _setup(optimizer)
  chunked = nnx.graphdef(build(TINY.replace(loss_chunk=chunk), rngs=nnx.Rngs(0)))
  batch = _batch()
  grads = []
  for g in (graphdef, chunked):
    loss_and_grad = jax.jit(jax.value_and_grad(
        lambda p, g=g: loss_sums(nnx.merge(g, p, buffers), batch, 3)[0]))
    grads.append(loss_and_grad(state.params))
  np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads[1][1]), jax.tree.leaves(grads[0][1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # fp32 sums in another order
  whole, m1 = step_jit(graphdef, optimizer, buffers, state, batch, bp_steps=3, accumulation=1,
                       ema_decay=0.9)
  split, m2 = step_jit(chunked, optimizer, buffers, state, batch, bp_steps=3, accumulation=1,
                       ema_decay=0.9)
  assert int(m1["labelled_tokens"]) == int(m2["labelled_tokens"])
  np.testing.assert_allclose(float(m2["loss"]), float(m1["loss"]), rtol=1e-6)
  for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(split.params)):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_ema_and_step_counter_follow_the_update():
  optimizer = SGD
  graphdef, buffers, state = _setup(optimizer)
  new, _ = step_jit(graphdef, optimizer, buffers, state, _batch(), bp_steps=3,
                    accumulation=1, ema_decay=0.9)
  assert int(new.step) == 1
  for e, p0, p1 in zip(jax.tree.leaves(new.ema), jax.tree.leaves(state.params),
                       jax.tree.leaves(new.params)):
    np.testing.assert_allclose(e, 0.9 * p0 + 0.1 * p1, atol=1e-7)


def test_adam_atan2_skips_the_embedding_while_the_window_does_not_reach_it():
  """At bp 2 the embedding gets no gradient: as in the authors' optimizer it is neither
  decayed nor moved, its EMA and moments stay, and its own step count does not advance."""
  optimizer = adam_atan2(1e-3)
  graphdef, buffers, state = _setup(optimizer)
  new, _ = step_jit(graphdef, optimizer, buffers, state, _batch(), bp_steps=2,
                    accumulation=1, ema_decay=0.9)
  embedding = lambda tree: np.asarray(tree["embed_tokens"]["embedding"][...])
  np.testing.assert_array_equal(embedding(new.params), embedding(state.params))
  np.testing.assert_array_equal(embedding(new.ema), embedding(state.params))
  assert int(new.opt_state.counts["embed_tokens"]["embedding"][...]) == 0
  assert not np.any(embedding(new.opt_state.mu))
  assert int(new.opt_state.counts["lm_head"]["kernel"][...]) == 1
  assert not np.array_equal(new.params["lm_head"]["kernel"][...], state.params["lm_head"]["kernel"][...])


def test_non_finite_loss_skips_the_update_and_stops_naming_the_step():
  optimizer = SGD
  graphdef, buffers, state = _setup(optimizer)
  state, _ = step_jit(graphdef, optimizer, buffers, state, _batch(), bp_steps=3,
                      accumulation=1, ema_decay=0.9)
  _check_finite(state)  # a good step passes
  poisoned = jax.tree.map(lambda x: x, state)
  kernel = poisoned.params["lm_head"]["kernel"]  # a fresh Param: tree.map rebuilt the nodes
  kernel[...] = kernel[...].at[0, 0].set(jnp.nan)
  after, metrics = step_jit(graphdef, optimizer, buffers, poisoned, _batch(), bp_steps=3,
                            accumulation=1, ema_decay=0.9)
  assert not np.isfinite(float(metrics["loss"]))
  assert int(after.nonfinite_step) == 1
  for a, b in zip(jax.tree.leaves(after.ema), jax.tree.leaves(poisoned.ema)):
    np.testing.assert_array_equal(a, b)  # the bad update was not applied
  with pytest.raises(NonFiniteError, match="at step 1"):
    _check_finite(after)


def test_parameters_are_sharded_by_logical_axes():
  mesh = sharding.make_mesh(sharding.MeshConfig(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  _, params, _ = nnx.split(make_model(), nnx.Param, Buffer)
  specs = jax.tree.map(lambda s: s.spec, sharding.parameter_shardings(params, mesh))
  assert specs["lm_head"]["kernel"] == jax.sharding.PartitionSpec("fsdp", "tensor")
  assert specs["L_module"]["layers"]["mlp"]["down_proj"]["kernel"] == \
      jax.sharding.PartitionSpec(None, "tensor", "fsdp")
  with pytest.raises(KeyError, match="PARAMETER_AXES"):
    sharding.logical_axes("mystery/kernel")
  with pytest.raises(ValueError, match="needs 6 devices"):
    sharding.make_mesh(sharding.MeshConfig(data=2, fsdp=3, tensor=1), jax.devices()[:1])


# Each layout compiles its own step: pure data parallelism (implied by the first layout's
# data axis) runs in `make test-all`.
@pytest.mark.long
@pytest.mark.parametrize("mesh_config", [
    [2, 2, 2], [1, 4, 2], pytest.param([8, 1, 1], marks=pytest.mark.slow)])
def test_sharded_step_equals_single_device_step_on_8_cpu_devices(mesh_config):
  # tests/conftest.py gives this process 8 CPU devices (float32 matmuls on CPU are exact
  # float32: no matmul precision to raise).
  assert [d.platform for d in jax.devices()] == ["cpu"] * 8, jax.devices()
  optimizer = SGD
  graphdef, buffers, state0 = _setup(optimizer)
  settings = dict(bp_steps=3, accumulation=2, ema_decay=0.9)
  single = state0  # the step on one device, unsharded: the program of the test above
  for i in range(3):
    single, single_metrics = step_jit(graphdef, optimizer, buffers, single,
                                      _batch(rows=8, seed=i), **settings)
  want_loss, want_params = float(single_metrics["loss"]), jax.device_get(single.params)
  init = lambda p: TrainState(jnp.zeros((), jnp.int32), p, optimizer.init(p), p,
                              jnp.full((), -1, jnp.int32))
  devices = jax.devices()[:int(np.prod(mesh_config))]
  mesh = sharding.make_mesh(sharding.MeshConfig(*mesh_config), devices)
  shardings = sharding.parameter_shardings(jax.eval_shape(init, state0.params), mesh)
  state = jax.jit(init, out_shardings=shardings)(state0.params)
  if mesh_config == [1, 4, 2]:  # also the chunked output head, sharded over rows and vocabulary
    graphdef = nnx.graphdef(build(TINY.replace(loss_chunk=5), rngs=nnx.Rngs(0)))
  step = jax.jit(functools.partial(train_step, graphdef, optimizer, **settings),
                 out_shardings=(shardings, sharding.replicated(mesh)))
  b = jax.device_put(buffers, sharding.replicated(mesh))
  for i in range(3):
    state, metrics = step(b, state, sharding.put_batch(_batch(rows=8, seed=i), mesh))
  if mesh_config == [1, 4, 2]:
    assert len(state.params["lm_head"]["kernel"].sharding.device_set) == 8
  assert abs(float(metrics["loss"]) - want_loss) < 1e-5, (mesh_config, metrics["loss"],
                                                          want_loss)
  for a, b in zip(jax.tree.leaves(jax.device_get(state.params)), jax.tree.leaves(want_params)):
    np.testing.assert_allclose(a, b, atol=2e-6)


def test_config_errors_name_the_key_and_value(tmp_path):
  assert load_config(overrides=["data.seq_len=64", "model.preset=B"]).data.seq_len == 64
  with pytest.raises(ConfigError, match="seqlen"):
    load_config(overrides=["data.seqlen=64"])
  with pytest.raises(ConfigError, match="learning_rate"):
    load_config(overrides=["optimizer.learning_rate=fast"])
  with pytest.raises(ConfigError, match="unknown model.preset 'huge'"):
    load_config(overrides=["model.preset=huge"])
  with pytest.raises(ConfigError, match=r"hiden_size.*\(key: model.hiden_size\)"):
    load_config(overrides=["model.hiden_size=3"])
  with pytest.raises(ConfigError, match=r"\(key: model.hidden_size\)"):
    load_config(overrides=["model.hidden_size=wide"])
  with pytest.raises(ConfigError, match="model.remat='sometimes'; choose one of"):
    load_config(overrides=["model.remat=sometimes"])
  with pytest.raises(ConfigError, match="the command line: model.size and model.overrides are "
                                        "the old form"):
    load_config(overrides=["model.size=B"])
  with pytest.raises(ConfigError, match="the command line: .*old form"):
    load_config(overrides=["model.overrides.remat=full"])
  with pytest.raises(ConfigError, match="key=value"):
    load_config(overrides=["steps"])
  bad = tmp_path / "bad.yaml"
  bad.write_text("schedule:\n  stepz: 3\n")
  with pytest.raises(ConfigError, match="stepz"):
    load_config([str(bad)])
  old = tmp_path / "old.yaml"
  old.write_text("model:\n  size: B\n  overrides: {remat: full}\n")
  with pytest.raises(ConfigError, match=r"old.yaml: .*old form.*model: \{preset: B, remat: full\}"):
    load_config([str(old)])


def test_the_model_preset_is_the_first_layer_under_every_model_key(tmp_path):
  """A model field set anywhere wins over the preset, whichever layer names the preset."""
  wide = tmp_path / "wide.yaml"
  wide.write_text("model:\n  hidden_size: 256\n")
  config = load_config([str(wide)], ["model.preset=B"])
  assert (config.model.preset, config.model.hidden_size, config.model.num_layers_per_stack,
          config.model.vocab_size) == ("B", 256, 6, 65_536)
  assert model_config(config) == preset("B", hidden_size=256)
  assert model_config(load_config()) == preset("tiny")  # the default section
  assert model_config(TrainConfig()) == preset("tiny")
  # The saved config.yaml holds every field, so it loads as the same model.
  saved = tmp_path / "saved.yaml"
  saved.write_text(to_yaml(config))
  assert model_config(load_config([str(saved)])) == model_config(config)
  configs = {name: load_config([os.path.join(ROOT, "experiments", "hrm", f"{name}.yaml")])
             for name in ("tiny", "B", "L", "XL", "sft")}
  # The authors' runs (their README): L at 2.5e-4 with 172,032 tokens a step, XL at 2.2e-4
  # with 196,608.
  for name, lr, tokens in (("L", 2.5e-4, 172_032), ("XL", 2.2e-4, 196_608)):
    config = configs[name]
    assert config.optimizer.learning_rate == lr
    assert config.data.batch_size * config.data.seq_len == tokens
  # Their SFT: warm start, 32,768 tokens a step, 3e-5 with a cosine to 0.1 × peak, no warm-up
  # of the learning rate or of the gradient window.
  sft = configs["sft"]
  assert sft.init.from_run and sft.data.batch_size * sft.data.seq_len == 32_768
  assert (sft.optimizer.learning_rate, sft.optimizer.schedule, sft.optimizer.lr_min_ratio,
          sft.optimizer.warmup_steps, sft.optimizer.ema_decay) == (3e-5, "cosine", 0.1, 0, 0.999)
  assert (sft.schedule.bp_schedule, sft.schedule.bp_end) == ("fixed", 5)


def test_cli_help_lists_the_keys():
  out = subprocess.run([sys.executable, "-m", "hrm_jax.train", "--help"], capture_output=True,
                       text=True, timeout=120, check=False, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 0 and "learning_rate" in out.stdout and "bp_schedule" in out.stdout
  bad = subprocess.run([sys.executable, "-m", "hrm_jax.train", "schedule.stepz=3"],
                       capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT))
  assert bad.returncode == 2 and "stepz" in bad.stderr


def _train_command(run_dir):
  # tiny.yaml with a model small enough that its step compiles in seconds; one gradient window:
  # one program.
  return [sys.executable, "-m", "hrm_jax.train", "--config",
          os.path.join(ROOT, "experiments", "hrm", "tiny.yaml"), f"log.dir={run_dir}",
          "schedule.steps=40", "log.every=1", "log.eval_every=0", "log.checkpoint_every=5",
          "log.progress=false", "log.tensorboard=false", "data.seq_len=64", "data.batch_size=8",
          "model={hidden_size: 32, num_attention_heads: 2, head_dim: 16, "
          "intermediate_size: 64, num_layers_per_stack: 1, H_cycles: 1, L_cycles: 2}",
          "schedule.bp_schedule=fixed", "schedule.bp_end=3"]


@pytest.mark.long
def test_sigkill_and_rerun_resumes_to_the_same_loss_curve(tmp_path):
  # The three processes compile the same programs: the second and third read them from a
  # persistent compilation cache (the same executables; what is compared is the state resumed).
  # One CPU device, as a user's machine has (the suite's 8 only slow each process down).
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1),
             JAX_COMPILATION_CACHE_DIR=str(tmp_path / "compilation_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  run_to_completion(_train_command(tmp_path / "straight"), env=env, cwd=ROOT, timeout=600)

  run_dir = tmp_path / "killed"
  kill_at_checkpoint(_train_command(run_dir), run_dir / "checkpoints", 10, 40, env=env, cwd=ROOT,
                     timeout=600)
  killed_at = read_metrics(str(run_dir / "metrics.jsonl"))[-1]["step"]
  assert 10 <= killed_at < 40

  resumed = run_to_completion(_train_command(run_dir), env=env, cwd=ROOT, timeout=600)
  assert "resumed from step" in resumed.stderr
  want = read_metrics(str(tmp_path / "straight" / "metrics.jsonl"))
  got = read_metrics(str(run_dir / "metrics.jsonl"))
  assert [m["step"] for m in got] == list(range(1, 41))
  np.testing.assert_array_equal([m["loss"] for m in got], [m["loss"] for m in want])
  np.testing.assert_array_equal([m["grad_norm"] for m in got], [m["grad_norm"] for m in want])


@pytest.mark.slow
def test_tiny_model_learns_string_reversal_to_high_exact_match(tmp_path):
  from hrm_jax.data.tokenizer import ByteTokenizer
  from hrm_jax.demo import exact_match, held_out
  from hrm_jax.train.loop import train
  tasks = "[reversal]"
  config = load_config([os.path.join(ROOT, "experiments", "hrm", "tiny.yaml")], [
      f"log.dir={tmp_path}", "schedule.steps=600", "log.eval_every=0", "log.progress=false",
      "log.tensorboard=false", "log.checkpoint_every=600",
      f"data.sources=[{{kind: synthetic, size: 100000, tasks: {tasks}}}]"])
  result = train(config)
  scores = exact_match(result.model(ema=True), ByteTokenizer(),
                       held_out(64, ("reversal",), seed=999))
  assert scores["eval/exact_match"] >= 0.9, scores


# --- refusing what cannot train, resuming what can --------------------------------------------

# A model small enough that a step compiles in seconds; one bp_steps value: one program.
_SMALL = ["model={hidden_size: 32, num_attention_heads: 2, head_dim: 16, "
          "intermediate_size: 64, num_layers_per_stack: 1, H_cycles: 1, L_cycles: 1}",
          "data.sources=[{kind: synthetic, size: 200, tasks: [addition]}]", "data.seq_len=32",
          "data.batch_size=2", "data.packing_bins=2", "schedule.bp_schedule=fixed",
          "schedule.bp_start=1", "schedule.bp_end=2", "optimizer.warmup_steps=1",
          "log.every=1", "log.eval_every=0", "log.checkpoint_every=1", "log.progress=false",
          "log.tensorboard=false", "log.async_checkpoints=false"]


def _small(run_dir, *overrides):
  return load_config(overrides=[*_SMALL, f"log.dir={run_dir}", *overrides])


def _train_small(run_dir, *overrides, **kwargs):
  from hrm_jax.train.loop import train
  return train(_small(run_dir, *overrides), devices=jax.devices()[:1], **kwargs)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, persistent_compilation_cache):  # pylint: disable=unused-argument
  """A finished 2-step run with checkpoints at steps 1 and 2; tests work on copies (their
  runs read the step compiled here from the persistent compilation cache)."""
  run_dir = tmp_path_factory.mktemp("small") / "run"
  _train_small(run_dir, "schedule.steps=2")
  return run_dir


def test_update_k_runs_at_the_rate_of_k(small_run):
  """The authors count updates from 1: with one warm-up step the first update already runs
  at the peak rate (update k at peak · k / warm-up while k < warm-up)."""
  lines = read_metrics(str(small_run / "metrics.jsonl"))
  assert [line["step"] for line in lines] == [1, 2]
  assert lines[0]["learning_rate"] == pytest.approx(2.2e-4)


def test_warm_start_from_a_run_or_its_export_begins_at_the_source_loss(small_run, tmp_path):
  """Fine-tuning starts from the source's weights (and z_L_init) with a fresh optimizer: the
  first update's loss is the source model's loss on that batch."""
  from hrm_jax.data.pipeline import make_dataset
  from hrm_jax.model import hf_io
  from hrm_jax.train.loop import initial_state, load_trained, train
  from hrm_jax.train.step import eval_step
  loss_of = jax.jit(eval_step, static_argnums=0)

  def first_batch_loss(model, config):
    graphdef, params, buffers = nnx.split(model, nnx.Param, Buffer)
    batch = jax.tree.map(jnp.asarray, next(iter(make_dataset(config.data))))
    total, count = loss_of(graphdef, buffers, params, batch)
    return float(total / count)

  source, _ = load_trained(str(small_run))  # its EMA weights
  hf_io.save_hf(source, str(tmp_path / "hf"))
  for key, where in (("from_run", small_run), ("from_hf", tmp_path / "hf")):
    config = _small(tmp_path / key, "schedule.steps=1", "seed=7", f"init.{key}={where}")
    want = first_batch_loss(source, config)
    graphdef, cold, buffers, _, _ = initial_state(_small(tmp_path / "cold", "seed=7"))
    assert abs(first_batch_loss(nnx.merge(graphdef, cold, buffers), config) - want) > 1e-3
    history = train(config, devices=jax.devices()[:1]).history
    assert history[0]["loss"] == pytest.approx(want, rel=1e-5), key
  with pytest.raises(ConfigError, match=r"does not fit this run's model \(hidden_size is 32 "
                                        r"there, 48 here\): parameter .* is \(1, 64, 32\) there, "
                                        r"\(1, 64, 48\) here"):
    _train_small(tmp_path / "wider", "schedule.steps=1", "model.hidden_size=48",
                 f"init.from_run={small_run}")
  with pytest.raises(ConfigError, match="init.from_hf="):
    _train_small(tmp_path / "missing", "schedule.steps=1", f"init.from_hf={tmp_path / 'nope'}")


def _copy(run_dir, tmp_path):
  import shutil
  shutil.copytree(run_dir, tmp_path / "run")
  return tmp_path / "run"


@pytest.mark.parametrize("override, key", [
    ("schedule.steps=-5", "schedule.steps=-5"), ("data.batch_size=0", "data.batch_size=0"),
    ("data.seq_len=0", "data.seq_len=0"), ("schedule.accumulation=0", "schedule.accumulation=0"),
    ("log.every=0", "log.every=0"), ("optimizer.learning_rate=0", "optimizer.learning_rate=0"),
    ("optimizer.learning_rate=-1e-3", "optimizer.learning_rate=-0.001"),
    ("log.checkpoint_every=0", "log.checkpoint_every=0"), ("log.keep=0", "log.keep=0"),
    ("optimizer.b2=1.0", "optimizer.b2=1.0"), ("schedule.bp_end=1", "schedule.bp_end=1"),
    ("mesh.fsdp=0", "mesh sizes"), ("schedule.accumulation=3", "does not split into"),
    ("model.loss_chunk=-1", "model.loss_chunk must be")])
def test_config_rejects_numbers_that_cannot_make_a_run(override, key):
  with pytest.raises(ConfigError, match=re.escape(key)):
    load_config([os.path.join(ROOT, "experiments", "hrm", "tiny.yaml")], [override])


def test_cli_rejects_a_negative_step_count_with_one_line(capsys):
  from hrm_jax.train.__main__ import main
  with pytest.raises(SystemExit) as exit_:
    main(["--config", os.path.join(ROOT, "experiments", "hrm", "tiny.yaml"), "schedule.steps=-5"])
  assert exit_.value.code == 2
  assert capsys.readouterr().err.strip() == \
      "config error: schedule.steps=-5 is invalid: it must be positive"


def test_setup_errors_are_named_before_anything_is_written(tmp_path):
  from hrm_jax.data.tokenizer import train_bpe
  run_dir = tmp_path / "run"
  from hrm_jax.train.loop import train
  with pytest.raises(ConfigError, match=r"batch_size=3 does not divide over the 2 devices"):
    train(_small(run_dir, "data.batch_size=3", "schedule.steps=1"), devices=jax.devices()[:2])
  # A tokenizer larger than the embedding table would train into NaN.
  rng = np.random.default_rng(0)
  words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 9)))
           for _ in range(20_000)]
  tokenizer = train_bpe([" ".join(words[i:i + 50]) for i in range(0, len(words), 50)], 1500,
                        tmp_path / "tokenizer.json")
  assert tokenizer.num_tokens > 512
  with pytest.raises(ConfigError, match=rf"{tokenizer.num_tokens:,} tokens but the model's "
                                        r"vocab_size is 512"):
    _train_small(run_dir, f"data.tokenizer={tmp_path / 'tokenizer.json'}", "schedule.steps=1")
  not_parquet = tmp_path / "notes.parquet"
  not_parquet.write_text("instruction,response\nhi,there\n")
  with pytest.raises(ConfigError, match=rf"data: {re.escape(str(not_parquet))} is not a readable "
                                        "Parquet file"):
    _train_small(run_dir, "schedule.steps=1",
                 f"data.sources=[{{kind: parquet, path: '{not_parquet}'}}]")
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(ConfigError, match=r"log.dir '.*a_file/run' is not writable"):
    _train_small(blocker / "run", "schedule.steps=1")
  assert not run_dir.exists()


def test_resume_refuses_a_changed_config_before_writing_anything(small_run, tmp_path):
  run_dir = _copy(small_run, tmp_path)
  written = (run_dir / "config.yaml").read_text()
  with pytest.raises(ConfigError, match=r"optimizer.learning_rate: 0.00022 → 0.001.*"
                                        r"--allow-config-change"):
    _train_small(run_dir, "schedule.steps=3", "optimizer.learning_rate=1e-3")
  # Another model shape never reaches Orbax, even when config changes are allowed.
  with pytest.raises(ConfigError, match=r"another model shape \(model.hidden_size: "
                                        r"32 → 64\)"):
    _train_small(run_dir, "schedule.steps=3", "model.hidden_size=64",
                 allow_config_change=True)
  assert (run_dir / "config.yaml").read_text() == written
  assert [m["step"] for m in read_metrics(str(run_dir / "metrics.jsonl"))] == [1, 2]
  # A longer schedule and other log settings continue without the flag; the learning rate
  # with it.
  assert int(_train_small(run_dir, "schedule.steps=3", "log.every=3").state.step) == 3
  result = _train_small(run_dir, "schedule.steps=4", "optimizer.learning_rate=1e-3",
                        "data.seq_len=48", allow_config_change=True)
  assert int(result.state.step) == 4
  assert load_config([str(run_dir / "config.yaml")]).optimizer.learning_rate == 1e-3


def test_cli_refuses_a_changed_config_with_one_line(small_run, tmp_path, capsys):
  from hrm_jax.train.__main__ import main
  run_dir = _copy(small_run, tmp_path)
  with pytest.raises(SystemExit) as exit_:
    main([*_SMALL, f"log.dir={run_dir}", "schedule.steps=2", "data.seq_len=48"])
  err = capsys.readouterr().err.strip()
  assert exit_.value.code == 2 and len(err.splitlines()) == 1
  assert err.startswith("config error: ") and "data.seq_len: 32 → 48" in err


def test_resume_skips_an_unreadable_checkpoint_and_a_torn_metric_line(small_run, tmp_path,
                                                                      caplog):
  run_dir = _copy(small_run, tmp_path)
  corrupt_arrays(run_dir / "checkpoints" / "2")
  with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"step": 3, "loss": 2.')  # killed mid-write
  assert [m["step"] for m in read_metrics(str(run_dir / "metrics.jsonl"))] == [1, 2]
  caplog.set_level("WARNING", logger="hrm_jax")
  result = _train_small(run_dir, "schedule.steps=3")
  assert "checkpoint step 2" in caplog.text and "restored step 1" in caplog.text
  assert int(result.state.step) == 3
  assert [m["step"] for m in read_metrics(str(run_dir / "metrics.jsonl"))] == [1, 2, 3]
  assert (run_dir / "checkpoints" / "unreadable.2").is_dir()  # set aside, not deleted
  assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == \
      ["1", "2", "3"]


def test_a_missing_state_item_falls_back_and_no_readable_checkpoint_is_named(small_run,
                                                                              tmp_path):
  import shutil
  from hrm_jax.train.checkpoint import CheckpointError
  from hrm_jax.train.loop import load_trained_step
  run_dir = _copy(small_run, tmp_path)
  shutil.rmtree(run_dir / "checkpoints" / "2" / "state")
  assert load_trained_step(str(run_dir))[2] == 1
  shutil.rmtree(run_dir / "checkpoints" / "1" / "state")
  with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*checkpoints: steps "
                                            r"\[2, 1\].*state"):
    load_trained_step(str(run_dir))
