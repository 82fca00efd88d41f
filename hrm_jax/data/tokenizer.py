"""The byte-level tokenizer with the HRM-Text special tokens (the default: no files needed).

Ids 0–15 are special tokens at the ids of the released tokenizer (spec §4); byte b is id
16 + b. The vocabulary is padded to 512 so embedding tables stay aligned.
"""

from __future__ import annotations

import dataclasses

SPECIAL_TOKENS = {
    "<|PAD|>": 0, "<|endoftext|>": 5, "<|im_start|>": 6, "<|im_end|>": 7,
    "<|object_ref_start|>": 8, "<|object_ref_end|>": 9, "<|box_end|>": 11,
    "<|quad_start|>": 12, "<|quad_end|>": 13,
}
PAD, BOQ, EOQ, EOA = 0, 6, 7, 11
CONDITION_TOKENS = {"direct": 8, "cot": 9, "noisy": 12, "synth": 13}


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
  byte_offset: int = 16
  vocab_size: int = 512

  def encode(self, text: str) -> list[int]:
    return [self.byte_offset + b for b in text.encode("utf-8")]

  def decode(self, ids) -> str:
    """Bytes only; special tokens and padding ids are dropped."""
    data = bytes(i - self.byte_offset for i in ids
                 if self.byte_offset <= i < self.byte_offset + 256)
    return data.decode("utf-8", errors="replace")

  def condition_ids(self, tags) -> list[int]:
    unknown = [t for t in tags if t not in CONDITION_TOKENS]
    if unknown:
      raise ValueError(f"unknown condition tags {unknown}; choose from {sorted(CONDITION_TOKENS)}")
    return [CONDITION_TOKENS[t] for t in tags]
