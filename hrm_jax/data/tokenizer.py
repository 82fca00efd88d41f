"""Tokenizers with the HRM-Text special tokens at the released ids (spec §4).

`ByteTokenizer` (the default: no files needed): ids 0–15 are the specials, byte b is id 16 + b,
the vocabulary is padded to 512 so embedding tables stay aligned. `BpeTokenizer` wraps a
byte-level BPE `tokenizer.json` (the released 65,536-entry one, or one from `train_bpe`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = {
    "<|PAD|>": 0, "<|endoftext|>": 5, "<|im_start|>": 6, "<|im_end|>": 7,
    "<|object_ref_start|>": 8, "<|object_ref_end|>": 9, "<|box_end|>": 11,
    "<|quad_start|>": 12, "<|quad_end|>": 13,
}
PAD, BOQ, EOQ, EOA = 0, 6, 7, 11
CONDITION_TOKENS = {"direct": 8, "cot": 9, "noisy": 12, "synth": 13}
NUM_RESERVED_IDS = 16  # ids 0–15 hold specials in every tokenizer here
_VOCAB_MULTIPLE = 128  # BPE vocabularies are padded to this for aligned embedding tables


def split_tags(tags) -> tuple[str, ...]:
  """Condition tags as a tuple: a list of tags, or one string of comma-joined tags as the
  authors' data rows and evaluation configs write them ("synth,cot"); None is no tags.
  Raises TypeError for anything else."""
  if tags is None:
    return ()
  if isinstance(tags, str):
    tags = [tags]
  if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
    raise TypeError("condition tags must be a string or a list of strings")
  return tuple(part.strip() for t in tags for part in t.split(",") if part.strip())


def _check_condition_tags(tags) -> list[int]:
  tags = split_tags(tags)
  unknown = [t for t in tags if t not in CONDITION_TOKENS]
  if unknown:
    raise ValueError(f"unknown condition tags {unknown}; choose from {sorted(CONDITION_TOKENS)}")
  return [CONDITION_TOKENS[t] for t in tags]


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
  byte_offset: int = 16
  vocab_size: int = 512

  @property
  def num_tokens(self) -> int:
    """Ids in use (the specials and the bytes); `vocab_size` pads past them."""
    return self.byte_offset + 256

  def encode(self, text: str) -> list[int]:
    return [self.byte_offset + b for b in text.encode("utf-8")]

  def decode(self, ids) -> str:
    """Bytes only; special tokens and padding ids are dropped."""
    data = bytes(i - self.byte_offset for i in ids
                 if self.byte_offset <= i < self.byte_offset + 256)
    return data.decode("utf-8", errors="replace")

  def condition_ids(self, tags) -> list[int]:
    return _check_condition_tags(tags)


def special_token_names() -> list[str]:
  """The 16 reserved specials in id order; ids the spec leaves unnamed get `<|reserved_i|>`."""
  by_id = {i: name for name, i in SPECIAL_TOKENS.items()}
  return [by_id.get(i, f"<|reserved_{i}|>") for i in range(NUM_RESERVED_IDS)]


class BpeTokenizer:
  """A `tokenizers.Tokenizer` behind the ByteTokenizer interface.

  Text that merely spells a special token (e.g. "<|im_end|>" inside an instruction) is encoded
  as ordinary text, as the byte tokenizer does, so data cannot forge the layout's markers.
  """

  def __init__(self, tokenizer, source: str = "<in memory>"):
    _check_specials(tokenizer, source)
    tokenizer.encode_special_tokens = True
    self.tokenizer, self.source = tokenizer, source
    self.num_tokens = tokenizer.get_vocab_size(with_added_tokens=True)
    self.vocab_size = -(-self.num_tokens // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE

  @classmethod
  def from_file(cls, path) -> BpeTokenizer:
    """Loads a tokenizer.json; its specials must sit at the ids of SPECIAL_TOKENS."""
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"tokenizer file {path} does not exist")
    try:
      tokenizer = tokenizers.Tokenizer.from_file(path)
    except Exception as e:  # the Rust side raises a bare Exception
      raise ValueError(f"{path} is not a valid tokenizer.json: {e}") from e
    return cls(tokenizer, path)

  def encode(self, text: str) -> list[int]:
    return self.tokenizer.encode(text, add_special_tokens=False).ids

  def decode(self, ids) -> str:
    """Text only; special tokens, padding and ids past the real vocabulary are dropped."""
    ids = [int(i) for i in ids if NUM_RESERVED_IDS <= int(i) < self.num_tokens]
    return self.tokenizer.decode(ids, skip_special_tokens=True)

  def condition_ids(self, tags) -> list[int]:
    return _check_condition_tags(tags)

  def save(self, path) -> None:
    self.tokenizer.save(os.fspath(path))

  # Grain workers get a pickled copy; `encode_special_tokens` is not part of the Rust
  # tokenizer's pickled state, so rebuild through __init__ to keep it.
  def __getstate__(self):
    return {"json": self.tokenizer.to_str(), "source": self.source}

  def __setstate__(self, state):
    self.__init__(tokenizers.Tokenizer.from_str(state["json"]), state["source"])


def _check_specials(tokenizer, source: str) -> None:
  for name, expected in SPECIAL_TOKENS.items():
    found = tokenizer.token_to_id(name)
    if found != expected:
      where = "is missing" if found is None else f"is at id {found}"
      raise ValueError(f"{source}: special token {name} {where}; HRM-Text expects it at id "
                       f"{expected} (hrm_jax/data/tokenizer.py SPECIAL_TOKENS)")


def train_bpe(texts: Iterable[str], vocab_size: int, path=None) -> BpeTokenizer:
  """Trains the spec's kind of tokenizer: NFC, digits split one by one, byte-level BPE, with
  the 16 specials at ids 0–15. Saves tokenizer.json at `path` if given."""
  byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
  smallest = NUM_RESERVED_IDS + len(byte_alphabet)
  if vocab_size < smallest:
    raise ValueError(f"vocab_size {vocab_size} is below {smallest}: the 16 specials and the "
                     f"256 byte symbols must fit")
  tokenizer = tokenizers.Tokenizer(models.BPE())
  tokenizer.normalizer = normalizers.NFC()
  tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Digits(individual_digits=True),
      pre_tokenizers.ByteLevel(add_prefix_space=False)])
  tokenizer.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_token_names(),
                                initial_alphabet=byte_alphabet, show_progress=False)
  tokenizer.train_from_iterator(texts, trainer=trainer)
  trained = BpeTokenizer(tokenizer, "trained tokenizer")
  if path is not None:
    trained.save(path)
  return trained


def load_tokenizer(spec: str):
  """The tokenizer a config names: "byte", or a tokenizer.json path (or a folder holding one)."""
  spec = os.fspath(spec)
  if spec == "byte":
    return ByteTokenizer()
  if os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "tokenizer.json")):
    spec = os.path.join(spec, "tokenizer.json")
  if os.path.isfile(spec) or spec.endswith(".json"):
    return BpeTokenizer.from_file(spec)
  raise ValueError(f"tokenizer {spec!r} is neither 'byte' nor a path to a tokenizer.json")
