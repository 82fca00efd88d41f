"""Greedy decoding over a fixed buffer equals token-by-token argmax of the full model."""

import jax.numpy as jnp
import pytest
from conftest import make_model

from hrm_jax.data.tokenizer import EOA, ByteTokenizer
from hrm_jax.demo import boxed
from hrm_jax.generate import greedy_answers, prompt_tokens
from hrm_jax.model import Segments, build, preset
from flax import nnx


def test_batched_greedy_decoding_equals_one_token_at_a_time():
  tokenizer = ByteTokenizer()
  model = build(preset("tiny"), rngs=nnx.Rngs(3))
  instructions = ["Reverse the string: abc", "What is 12 + 3?"]  # different prompt lengths
  expected = []
  for text in instructions:
    seq = prompt_tokens(tokenizer, text, ("synth", "direct"))
    prefix = len(seq)
    for _ in range(6):
      t = jnp.asarray([seq])
      seq.append(int(jnp.argmax(model(t, Segments.single(t, prefix))[0, -1])))
    new = seq[prefix:]
    expected.append(tokenizer.decode(new[:new.index(EOA)] if EOA in new else new))
  got = greedy_answers(model, tokenizer, instructions, ("synth", "direct"), max_new_tokens=6)
  assert got == expected


def test_prompt_too_long_for_the_buffer_is_named():
  with pytest.raises(ValueError, match="exceeds"):
    greedy_answers(make_model(), ByteTokenizer(vocab_size=97), ["x" * 10], max_new_tokens=8,
                   length=12)


def test_boxed_takes_the_last_answer():
  assert boxed("a \\boxed{1} then \\boxed{ 42 }") == "42"
  assert boxed("no answer") is None
