"""HRM-Text forward and training-step tokens/s: ours (JAX) vs transformers' HrmTextForCausalLM
(PyTorch) on the same config, batch and CPU, in one run; plus the compiled memory of a
training step per bp_steps and the distance to the machine's measured matmul rate.

Equal work: both run all 8 module calls with gradient (our bp_steps = 8, their
L_bp_cycles = [3, 3]); our paper-default window (bp_steps = 5) is an extra row.

    .venv/bin/python bench/hrm_model_throughput.py
    .venv/bin/python bench/hrm_model_throughput.py --hidden 512 --layers 2 --batch 4 --length 512
    .venv/bin/python bench/hrm_model_throughput.py --attention-impl xla dense blockwise
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hrm_jax.model import ModelConfig, Segments, build, flops
from tpu_gpu_launch.preflight import matmul_flops_per_second


def best_seconds(fn, repeats: int, warmup: bool = True) -> float:
  if warmup:
    fn()  # warm-up (and compile)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


def ours(config: ModelConfig, tok, prefix: int):
  """({work: a call that runs it once}, {bp: compiled temp bytes}), compiled and warmed up."""
  model = build(config, rngs=nnx.Rngs(0))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  segments = Segments.single(tok, prefix)

  # Tokens and segments are arguments, not constants XLA could fold into the program.
  def loss(p, t, s, bp):
    logits = nnx.merge(graphdef, p, rest)(t, s, bp_steps=bp)
    return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[..., 0])

  forward = jax.jit(lambda p, t, s: nnx.merge(graphdef, p, rest)(t, s))
  calls = {"forward": lambda: forward(params, tok, segments).block_until_ready()}
  memory = {}
  for bp in (8, 5, 2):
    step = jax.jit(jax.value_and_grad(loss), static_argnums=3)
    compiled = step.lower(params, tok, segments, bp).compile()
    memory[bp] = compiled.memory_analysis().temp_size_in_bytes
    if bp in (8, 5):
      calls[f"train bp={bp}"] = lambda c=compiled: jax.block_until_ready(c(params, tok, segments))
  return calls, memory


def reference(config: ModelConfig, tok, prefix: int):
  """{work: a call that runs it once} for transformers' HrmTextForCausalLM."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  hf_config = transformers.HrmTextConfig(
      vocab_size=config.vocab_size, hidden_size=config.hidden_size,
      intermediate_size=config.mlp_width, num_hidden_layers=config.num_layers_per_stack,
      num_attention_heads=config.num_attention_heads, head_dim=config.head_dim,
      H_cycles=config.H_cycles, L_cycles=config.L_cycles,
      max_position_embeddings=config.max_position_embeddings,
      embedding_scale=config.input_scale, prefix_lm=True,
      L_bp_cycles=[config.L_cycles] * config.H_cycles)
  model = transformers.HrmTextForCausalLM(hf_config)
  ids = torch.tensor(np.asarray(tok))
  token_type = torch.zeros_like(ids)
  token_type[:, :prefix] = 1

  def forward():
    with torch.no_grad():
      model.eval()(input_ids=ids, token_type_ids=token_type)

  def train():
    model.train()
    model.zero_grad()
    logits = model(input_ids=ids, token_type_ids=token_type).logits
    (torch.logsumexp(logits, -1) - logits[..., 0]).mean().backward()

  return {"forward": forward, "train bp=8": train}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--heads", type=int, default=4)
  parser.add_argument("--layers", type=int, default=2, help="blocks per stack")
  parser.add_argument("--vocab", type=int, default=4096)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--length", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=3, help="timed calls per round (best)")
  parser.add_argument("--rounds", type=int, default=3,
                      help="interleaved rounds of every measurement (the median is reported)")
  parser.add_argument("--scan-unroll", action=argparse.BooleanOptionalAction, default=True,
                      help="unrolled layer/recurrence scans, as experiments/hrm/tiny.yaml "
                           "trains on CPU (default on)")
  parser.add_argument("--attention-impl", nargs="+", default=["auto"],
                      choices=["auto", "xla", "dense", "blockwise"],
                      help="our attention paths to time")
  args = parser.parse_args()
  config = ModelConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                       num_attention_heads=args.heads, head_dim=args.hidden // args.heads,
                       num_layers_per_stack=args.layers, max_position_embeddings=args.length,
                       scan_unroll=args.scan_unroll)
  tok = jnp.asarray(np.random.RandomState(0).randint(1, args.vocab, (args.batch, args.length)))
  prefix = args.length // 4
  tokens = args.batch * args.length
  ceiling = matmul_flops_per_second()
  calls, memory = {}, {}
  for impl in args.attention_impl:
    impl_calls, mem = ours(config.replace(attention_impl=impl), tok, prefix)
    label = "" if len(args.attention_impl) == 1 else f" [{impl}]"
    calls.update({("ours", work + label): call for work, call in impl_calls.items()})
    memory.update({f"{bp}{label}": size for bp, size in mem.items()})
  calls.update({("transformers", work): call
                for work, call in reference(config, tok, prefix).items()})
  # Interleaved rounds: a slow moment of a shared machine hits every measurement alike.
  times = {key: [] for key in calls}
  for call in calls.values():
    call()  # warm-up
  for _ in range(args.rounds):
    for key, call in calls.items():
      times[key].append(best_seconds(call, args.repeats, warmup=False))
  seconds = {key: float(np.median(t)) for key, t in times.items()}
  ours_rows = {work: t for (who, work), t in seconds.items() if who == "ours"}
  ref_rows = {work: t for (who, work), t in seconds.items() if who == "transformers"}
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; config D={args.hidden} "
        f"n={args.layers} heads={args.heads} V={args.vocab}; batch {args.batch}×{args.length}; "
        f"scan_unroll {args.scan_unroll}; "
        f"measured fp32 matmul rate {ceiling / 1e9:,.1f} GFLOP/s; median of {args.rounds} "
        f"interleaved rounds")
  print(f"{'work':26} {'ours tok/s':>12} {'transformers':>13} {'ratio':>7} {'ours GFLOP/s':>13} "
        f"{'of matmul':>10}")
  for label, seconds in ours_rows.items():
    work = label.split(" [")[0]
    bp = None if work == "forward" else int(work.split("=")[1])
    per_token = (flops.forward_flops(config, args.length) if bp is None
                 else flops.train_flops(config, args.length, bp))
    rate = tokens / seconds
    ref = tokens / ref_rows[work] if work in ref_rows else float("nan")
    print(f"{label:26} {rate:12,.0f} {ref:13,.0f} {rate / ref:7.2f} "
          f"{rate * per_token / 1e9:13,.1f} {rate * per_token / ceiling:10.0%}")
  print("compiled temp memory of a training step: " + ", ".join(
      f"bp={bp}: {size / 2**20:,.0f} MiB" for bp, size in memory.items()))


if __name__ == "__main__":
  main()
