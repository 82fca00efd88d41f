"""A trained run as a Hugging Face model directory that transformers loads as it is.

    python -m hrm_jax.export runs/hrm-tiny exported/ [--raw]     # EMA weights by default

Writes config.json and safetensors (`model.hf_io.save_hf`), and the parts that make
`AutoModelForCausalLM.from_pretrained` + `AutoTokenizer.from_pretrained` + `generate` give our
answers:
- tokenizer.json: the run's tokenizer (the byte tokenizer written as a byte-level BPE with no
  merges: byte b is id 16 + b; or the run's BPE), whose post-processor wraps the text in the
  prompt layout [<|im_start|>, text, <|im_end|>] and marks every prompt token with
  token_type_ids = 1, which HrmTextForCausalLM reads as the bidirectional PrefixLM prefix.
  Condition tags go in the text as their special tokens (e.g. "<|object_ref_end|>" for cot).
- tokenizer_config.json / special_tokens_map.json: PreTrainedTokenizerFast, with the
  end-of-answer token as EOS and <|PAD|> as padding.
- generation_config.json: EOS = end of answer (<|box_end|>, id 11), greedy by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors

from hrm_jax.data.tokenizer import (BOQ, EOA, EOQ, PAD, BpeTokenizer, ByteTokenizer,
                                    load_tokenizer, special_token_names)
from hrm_jax.model import hf_io

EOS_NAME, PAD_NAME = special_token_names()[EOA], special_token_names()[PAD]


def byte_tokenizer_json(tokenizer: ByteTokenizer) -> tokenizers.Tokenizer:
  """The byte tokenizer as a `tokenizers.Tokenizer`: the same ids for every text."""
  stand_in = _bytes_to_unicode()  # the character ByteLevel pre-tokenizing turns each byte into
  vocab = {name: i for i, name in enumerate(special_token_names())}
  vocab.update({stand_in[b]: tokenizer.byte_offset + b for b in range(256)})
  out = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[]))
  out.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  out.decoder = decoders.ByteLevel()
  out.add_special_tokens(special_token_names())
  return out


def _bytes_to_unicode() -> dict[int, str]:
  """GPT-2's byte → printable character table, which the ByteLevel pre-tokenizer applies."""
  printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
               + list(range(ord("®"), ord("ÿ") + 1)))
  table, extra = {}, 0
  for b in range(256):
    if b in printable:
      table[b] = chr(b)
    else:
      table[b] = chr(256 + extra)
      extra += 1
  return table


def hf_tokenizer(tokenizer) -> tokenizers.Tokenizer:
  """The run's tokenizer for transformers, with the prompt layout as its post-processor."""
  if isinstance(tokenizer, ByteTokenizer):
    out = byte_tokenizer_json(tokenizer)
  elif isinstance(tokenizer, BpeTokenizer):
    out = tokenizers.Tokenizer.from_str(tokenizer.tokenizer.to_str())
  else:
    raise TypeError(f"cannot export a {type(tokenizer).__name__}")
  names = special_token_names()
  out.post_processor = processors.TemplateProcessing(
      single=f"{names[BOQ]}:1 $A:1 {names[EOQ]}:1",
      special_tokens=[(names[BOQ], BOQ), (names[EOQ], EOQ)])
  return out


def export(run_dir: str, out_dir: str, *, ema: bool = True, dtype: str = "float32") -> str:
  """Writes the HF directory of RUN_DIR's latest checkpoint into OUT_DIR; returns OUT_DIR."""
  from hrm_jax.train.loop import load_trained  # pylint: disable=import-outside-toplevel
  model, config = load_trained(run_dir, ema=ema)
  tokenizer = load_tokenizer(config.data.tokenizer)
  write(model, tokenizer, out_dir, dtype=dtype)
  return out_dir


def write(model, tokenizer, out_dir: str, *, dtype: str = "float32") -> None:
  """Weights, config, tokenizer and generation config of `model` into `out_dir`."""
  hf_io.save_hf(model, out_dir, dtype=dtype)
  hf_tokenizer(tokenizer).save(os.path.join(out_dir, "tokenizer.json"))
  names = special_token_names()
  special = {"eos_token": EOS_NAME, "pad_token": PAD_NAME}
  _dump(out_dir, "special_tokens_map.json", special)
  _dump(out_dir, "tokenizer_config.json", {
      "tokenizer_class": "PreTrainedTokenizerFast", **special,
      "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
      "additional_special_tokens": [n for i, n in enumerate(names) if i not in (EOA, PAD)],
      "model_max_length": model.config.max_position_embeddings, "padding_side": "left"})
  _dump(out_dir, "generation_config.json", {
      "eos_token_id": EOA, "pad_token_id": PAD, "do_sample": False,
      "max_length": model.config.max_position_embeddings})


def _dump(out_dir: str, name: str, value: dict) -> None:
  with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.export", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("run_dir", help="a training run directory (config.yaml + checkpoints/)")
  parser.add_argument("out_dir")
  parser.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
  args = parser.parse_args(argv)
  try:
    print(export(args.run_dir, args.out_dir, ema=not args.raw, dtype=args.dtype))
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
