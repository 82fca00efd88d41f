"""HRM-Text decode tokens/s: our KV-cached generation vs recomputing the whole sequence for
every new token vs transformers' HrmTextForCausalLM.generate (PyTorch, CPU, its own cache),
on the same tiny config, weights and prompts, in one run (transformers on the GPU where torch
sees one).

Every path generates exactly --new tokens per prompt greedily (no stop token), from a batch
of --batch prompts of --prompt tokens with a PrefixLM prompt (bidirectional over the prompt).
Times are the best of --repeats after a warm-up (compilation excluded); the first generated
tokens of the three are checked to agree.

    .venv/bin/python bench/hrm_decode.py                  # tiny preset, 4 prompts × 32, 256 new
    .venv/bin/python bench/hrm_decode.py --new 64 --batch 1
"""

from __future__ import annotations

import argparse
import os
import tempfile

import jax
import numpy as np
from flax import nnx

from hrm_jax.generate import generate, recompute_generate
from hrm_jax.model import build, hf_io, preset
from hrm_model_throughput import best_seconds

TARGET = 10.0  # cached / recompute at 256 new tokens


def measure(batch: int, prompt: int, new: int, repeats: int, reference: bool = True,
            size: str = "tiny") -> dict:
  """Seconds per path ({path: seconds}), the rows agreeing with the cached path in their first
  16 tokens, and the shape. transformers runs only where `reference` and it is importable."""
  config = preset(size).replace(max_position_embeddings=prompt + new + 16)
  model = build(config, rngs=nnx.Rngs(0))
  rng = np.random.RandomState(0)
  prompts = [list(map(int, rng.randint(20, config.vocab_size, prompt))) for _ in range(batch)]
  print(f"{size} HRM-Text (D={config.hidden_size}, {config.num_layers_per_stack} layers/stack, "
        f"{config.num_calls} calls/token), {batch} prompts × {prompt} tokens, "
        f"{new} new tokens each, {jax.devices()[0].platform}", flush=True)
  seconds, out = {}, {}

  def cached():
    out["cached"] = generate(model, prompts, max_new_tokens=new, stop_token=None)

  def recompute():
    out["recompute"] = recompute_generate(model, prompts, max_new_tokens=new, stop_token=None)

  seconds["ours, KV cache"] = best_seconds(cached, repeats)
  seconds["ours, recompute"] = best_seconds(recompute, repeats)
  if reference:
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as directory:
      hf_io.save_hf(model, directory)
      peer = transformers.HrmTextForCausalLM.from_pretrained(directory).eval().to(device)
    input_ids = torch.tensor(prompts, device=device)

    def hf():
      with torch.no_grad():
        out["transformers"] = peer.generate(
            input_ids=input_ids, token_type_ids=torch.ones_like(input_ids),
            attention_mask=torch.ones_like(input_ids), max_new_tokens=new,
            min_new_tokens=new, do_sample=False, eos_token_id=None,
            pad_token_id=0)[:, prompt:].tolist()

    seconds[f"transformers generate ({device})"] = best_seconds(hf, repeats)
  agree = {name: sum(a[:16] == b[:16] for a, b in zip(tokens, out["cached"]))
           for name, tokens in out.items() if name != "cached"}
  return {"size": size, "batch": batch, "prompt": prompt, "new": new, "seconds": seconds,
          "new_tokens_per_s": {k: batch * new / v for k, v in seconds.items()},
          "rows_agreeing_first_16": agree}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--prompt", type=int, default=32)
  parser.add_argument("--new", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--no-reference", action="store_true", help="skip transformers")
  args = parser.parse_args()
  r = measure(args.batch, args.prompt, args.new, args.repeats, not args.no_reference)
  results, total = r["seconds"], args.batch * args.new
  print(f"\n| path | seconds | new tokens/s | vs recompute |\n|---|---:|---:|---:|")
  base = results["ours, recompute"]
  for name, seconds in results.items():
    print(f"| {name} | {seconds:.3f} | {total / seconds:,.0f} | {base / seconds:.1f}× |")
  ratio = base / results["ours, KV cache"]
  print(f"\ncached / recompute: {ratio:.1f}× (target ≥ {TARGET:.0f}×: "
        f"{'met' if ratio >= TARGET else 'NOT met'})")
  for name, seconds in results.items():
    if name.startswith("transformers"):
      print(f"cached / {name}: {seconds / results['ours, KV cache']:.2f}×")
  print(f"rows whose first 16 tokens agree with the cached path: "
        f"{r['rows_agreeing_first_16']} of {args.batch}")


if __name__ == "__main__":
  main()
