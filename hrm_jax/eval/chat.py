"""`python -m hrm_jax.eval.chat --model DIR`: type an instruction, read the answer.

Each line from stdin is one instruction, prompted as the paper evaluates (BOQ + condition
tokens + instruction + EOQ) and answered up to EOA; an empty line or EOF ends the session.
Greedy by default; --temperature / --top-k / --top-p sample.
"""

from __future__ import annotations

import argparse
import sys

from hrm_jax.data.layout import prompt_tokens
from hrm_jax.eval.runner import load_model
from hrm_jax.generate import Sampling, generate


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.eval.chat", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", required=True, help="a training run or Hugging Face directory")
  parser.add_argument("--tags", default="synth,direct",
                      help="condition tags, comma-separated (e.g. synth,cot)")
  parser.add_argument("--max-new-tokens", type=int, default=256)
  parser.add_argument("--temperature", type=float, default=0.0)
  parser.add_argument("--top-k", type=int, default=0)
  parser.add_argument("--top-p", type=float, default=1.0)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  tags = tuple(t for t in args.tags.split(",") if t)
  try:
    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    model, tokenizer = load_model(args.model)
    tokenizer.condition_ids(tags)  # unknown tags fail here, not mid-session
  except (FileNotFoundError, ValueError) as error:
    parser.error(str(error))
  interactive = sys.stdin.isatty()
  for turn, line in enumerate(iter(lambda: (print("> ", end="", flush=True) if interactive
                                            else None) or sys.stdin.readline(), "")):
    instruction = line.strip()
    if not instruction:
      break
    prompt = prompt_tokens(tokenizer, instruction, tags)
    budget = model.config.max_position_embeddings - len(prompt)
    if budget < 1:
      print(f"(the instruction is {len(prompt)} tokens; the model takes at most "
            f"{model.config.max_position_embeddings})", flush=True)
      continue
    answer = generate(model, [prompt], max_new_tokens=min(args.max_new_tokens, budget),
                      sampling=sampling, seed=args.seed + turn)[0]
    print(tokenizer.decode(answer), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
