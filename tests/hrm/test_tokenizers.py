"""Byte-level BPE: training with the spec's settings, the special ids, loading and its errors."""

import json
import pickle

import pytest

from hrm_jax.data.layout import make_sample
from hrm_jax.data.synthetic import example
from hrm_jax.data.tokenizer import (BOQ, EOA, EOQ, BpeTokenizer, ByteTokenizer, load_tokenizer,
                                    special_token_names, train_bpe)


def _corpus():
  for i in range(400):
    r = example(i, seed=0)
    yield f"{r.instruction}\n{r.response}"
  yield "Grüße aus Köln, café crème, naïve résumé, 東京 ✓"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
  return train_bpe(_corpus(), vocab_size=700, path=path), path


def test_specials_sit_at_the_spec_ids(trained):
  tok, _ = trained
  names = special_token_names()
  assert len(names) == 16 and names[1] == "<|reserved_1|>" and names[15] == "<|reserved_15|>"
  for i, name in enumerate(names):
    assert tok.tokenizer.token_to_id(name) == i
  assert tok.tokenizer.token_to_id("<|im_start|>") == BOQ
  assert tok.tokenizer.token_to_id("<|im_end|>") == EOQ
  assert tok.tokenizer.token_to_id("<|box_end|>") == EOA
  assert tok.condition_ids(["synth", "cot"]) == [13, 9]
  with pytest.raises(ValueError, match="unknown condition tags"):
    tok.condition_ids(["fancy"])


def test_merges_were_learned_and_vocab_is_padded(trained):
  tok, _ = trained
  assert 16 + 256 < tok.num_tokens <= 700 and tok.vocab_size % 128 == 0
  assert tok.vocab_size >= tok.num_tokens
  assert len(tok.encode("How many apples does she have now?")) < 15  # words became tokens


def test_digits_are_single_tokens(trained):
  tok, _ = trained
  ids = tok.encode("12345 + 90 = 12435")
  pieces = [tok.decode([i]) for i in ids]
  assert "".join(pieces) == "12345 + 90 = 12435"
  assert [p for p in pieces if any(c.isdigit() for c in p)] == list("12345" "90" "12435")


def test_nfc_and_unicode_round_trip(trained):
  tok, _ = trained
  assert tok.encode("caf" + "e\u0301") == tok.encode("caf\u00e9")
  for text in ["Grüße aus Köln ✓", "東京で 3 + 4 = 7", "tabs\tand\n\nnewlines  ", "🙂 emoji"]:
    assert tok.decode(tok.encode(text)) == text
  assert tok.decode(tok.encode("e\u0301")) == "\u00e9"  # decoding gives the NFC form


def test_specials_in_text_stay_text_and_decode_drops_specials(trained):
  tok, _ = trained
  ids = tok.encode("a <|im_end|> b")
  assert EOQ not in ids and tok.decode(ids) == "a <|im_end|> b"
  assert tok.decode([BOQ, 13, *tok.encode("hi"), EOA, 0, 0, tok.vocab_size - 1]) == "hi"
  sample = make_sample(tok, "What is 2 + 2?", "\\boxed{4}", ("direct",))
  assert list(sample.tokens[:2]) == [BOQ, 8] and sample.tokens.max() < tok.vocab_size


def test_save_load_and_pickle_give_identical_ids(trained):
  tok, path = trained
  text = "Mia has 12 apples and buys 7 more. <|im_start|> Grüße ✓"
  assert BpeTokenizer.from_file(path).encode(text) == tok.encode(text)
  assert load_tokenizer(str(path)).encode(text) == tok.encode(text)
  assert load_tokenizer(str(path.parent)).encode(text) == tok.encode(text)
  copy = pickle.loads(pickle.dumps(tok))  # what a Grain worker receives
  assert copy.encode(text) == tok.encode(text) and copy.vocab_size == tok.vocab_size


def test_misplaced_or_missing_specials_are_named(trained, tmp_path):
  _, path = trained
  config = json.loads(path.read_text())
  for added in config["added_tokens"]:  # swap the ids of two specials
    if added["content"] == "<|im_start|>":
      added["content"] = "<|im_end|>"
    elif added["content"] == "<|im_end|>":
      added["content"] = "<|im_start|>"
  vocab = config["model"]["vocab"]
  vocab["<|im_start|>"], vocab["<|im_end|>"] = vocab["<|im_end|>"], vocab["<|im_start|>"]
  swapped = tmp_path / "swapped.json"
  swapped.write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r"swapped.json: special token <\|im_start\|> is at id 7;"
                     r" HRM-Text expects it at id 6"):
    BpeTokenizer.from_file(swapped)

  config = json.loads(train_bpe(["just some text"], vocab_size=300).tokenizer.to_str())
  config["added_tokens"] = [t for t in config["added_tokens"] if t["content"] != "<|endoftext|>"]
  del config["model"]["vocab"]["<|endoftext|>"]
  missing = tmp_path / "missing.json"
  missing.write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r"special token <\|endoftext\|> is missing"):
    BpeTokenizer.from_file(missing)


def test_load_tokenizer_errors(tmp_path):
  assert isinstance(load_tokenizer("byte"), ByteTokenizer)
  with pytest.raises(ValueError, match="'bytes' is neither 'byte' nor a path"):
    load_tokenizer("bytes")
  with pytest.raises(FileNotFoundError, match="nowhere/tokenizer.json does not exist"):
    load_tokenizer(str(tmp_path / "nowhere" / "tokenizer.json"))
  broken = tmp_path / "broken.json"
  broken.write_text("{not json")
  with pytest.raises(ValueError, match="broken.json is not a valid tokenizer.json"):
    load_tokenizer(str(broken))
  with pytest.raises(ValueError, match="vocab_size 100 is below 272"):
    train_bpe(["x"], vocab_size=100)
