"""Generation: cached decoding equals recomputing the sequence; sampling; prompt layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import BYTE_TINY, TINY, make_model, padded_logits

from hrm_jax.data.tokenizer import EOA, ByteTokenizer
from hrm_jax.eval.answers import last_boxed
from hrm_jax.data.layout import prompt_tokens
from hrm_jax.generate import Sampling, generate, greedy_answers, recompute_generate, sample


INSTRUCTIONS = ("Reverse the string: abc", "What is 12 + 3?", "Sort: 3 1 2 and more words")


def _prompts(tokenizer):
  return [prompt_tokens(tokenizer, text, ("synth", "direct")) for text in INSTRUCTIONS]


@pytest.fixture(scope="module")
def byte_model():
  """A small model over the byte tokenizer's vocabulary (BOQ ... EOQ prompts of ~30 tokens
  and their answers fit its 64 positions). Tests that decode the same shapes with it share
  one compiled decoder."""
  return make_model(BYTE_TINY, seed=3)


def test_batched_greedy_decoding_equals_one_token_at_a_time(byte_model):
  tokenizer = ByteTokenizer()
  model = byte_model
  instructions = INSTRUCTIONS  # different prompt lengths
  expected = []
  for text in instructions:
    seq = prompt_tokens(tokenizer, text, ("synth", "direct"))
    prefix = len(seq)
    for _ in range(6):  # the whole sequence so far, alone, through the full forward pass
      seq.append(int(np.argmax(padded_logits(model, [seq], [prefix])[0, len(seq) - 1])))
    new = seq[prefix:]
    expected.append(tokenizer.decode(new[:new.index(EOA)] if EOA in new else new))
  got = greedy_answers(model, tokenizer, instructions, ("synth", "direct"), max_new_tokens=6)
  assert got == expected


def test_prompt_too_long_for_the_buffer_is_named():
  with pytest.raises(ValueError, match="exceeds"):
    greedy_answers(make_model(), ByteTokenizer(vocab_size=97), ["x" * 10], max_new_tokens=8,
                   length=12)


def test_generate_refuses_prompt_plus_new_tokens_past_the_context():
  # max_position_embeddings 64; one H and one L call per token: the decoder compiles fastest.
  model = make_model(TINY.replace(H_cycles=1, L_cycles=1))
  assert model.config.max_position_embeddings == 64
  # 56 + 8 fills the context exactly: the prompt's padding bucket (64) must not count.
  out = generate(model, [[5] * 56], max_new_tokens=8, stop_token=None)
  assert len(out[0]) == 8
  with pytest.raises(ValueError, match=r"prompt of 57 positions \(padded\) \+ 8 new tokens "
                                       r"exceeds max_position_embeddings 64"):
    generate(model, [[5] * 57], max_new_tokens=8)
  with pytest.raises(ValueError, match=r"\+ 9 new tokens exceeds"):  # the longest limit counts
    generate(model, [[5] * 4, [5] * 56], max_new_tokens=[2, 9])


def test_boxed_takes_the_last_answer():
  assert last_boxed("a \\boxed{1} then \\boxed{ 42 }") == "42"
  assert last_boxed("no answer") is None


# The looped baselines start from z_L_init, as the authors' UT and RINS (RINS's last cache
# slot is its H call); two loops are enough to check the cache.
_LOOPED = {"num_loops": 2, "loop_init": "z_L_init"}


@pytest.mark.parametrize("architecture", ["hrm", "trm", "transformer", "ut", "rins"])
def test_cached_decoding_equals_recomputing_the_whole_sequence(architecture, byte_model):
  tokenizer = ByteTokenizer()
  model = (byte_model if architecture == "hrm" else
           make_model(BYTE_TINY.replace(architecture=architecture,
                                        **(_LOOPED if architecture in ("ut", "rins") else {})),
                      seed=3))
  prompts = _prompts(tokenizer)
  limits = [12, 5, 9]  # per-row limits; rows stop at different steps
  cached, logits = generate(model, prompts, max_new_tokens=limits, return_logits=True)
  assert cached == recompute_generate(model, prompts, max_new_tokens=limits)
  # Each step's logits equal the full forward pass over prompt + tokens so far.
  for row, (prompt, new) in enumerate(zip(prompts, cached)):
    full = padded_logits(model, [prompt + new], [len(prompt)])[0]
    steps = len(new)
    np.testing.assert_allclose(logits[row, :steps], full[len(prompt) - 1:len(prompt) - 1 + steps],
                               atol=2e-4, rtol=2e-4)


def test_top_k_1_and_tiny_top_p_are_greedy_and_sampling_respects_top_k(byte_model):
  tokenizer = ByteTokenizer()
  model = byte_model
  prompts = _prompts(tokenizer)
  greedy = generate(model, prompts, max_new_tokens=6)
  assert generate(model, prompts, max_new_tokens=6,
                  sampling=Sampling(temperature=1.0, top_k=1), seed=5) == greedy
  assert generate(model, prompts, max_new_tokens=6,
                  sampling=Sampling(temperature=1.0, top_p=1e-6), seed=5) == greedy
  logits = jnp.asarray(np.random.RandomState(0).randn(4, 50), jnp.float32)
  top3 = np.argsort(-np.asarray(logits), axis=-1)[:, :3]
  for seed in range(20):
    token = np.asarray(sample(logits, jax.random.key(seed), Sampling(temperature=2.0, top_k=3)))
    assert all(t in allowed for t, allowed in zip(token, top3))
  with pytest.raises(ValueError, match="top_p"):
    Sampling(top_p=0.0)


def test_bf16_cache_stays_close_to_the_fp32_cache(byte_model):
  model = byte_model
  prompts = _prompts(ByteTokenizer())  # the fp32 decoder compiled for the test above
  _, logits32 = generate(model, prompts, max_new_tokens=[12, 5, 9], return_logits=True)
  _, logits16 = generate(model, prompts, max_new_tokens=[12, 5, 9], cache_dtype=jnp.bfloat16,
                         return_logits=True)
  assert logits16.dtype == np.float32 and not np.array_equal(logits16, logits32)
  scale = np.abs(logits32[0, 0]).max()
  np.testing.assert_allclose(logits16[0, 0], logits32[0, 0], atol=0.05 * scale)


def test_bf16_model_decodes_close_to_its_own_full_forward():
  model = make_model(BYTE_TINY.replace(compute_dtype="bfloat16"), seed=3)
  prompt = _prompts(ByteTokenizer())[0]
  new, logits = generate(model, [prompt], max_new_tokens=3, return_logits=True)
  full = padded_logits(model, [prompt + new[0]], [len(prompt)])[0]
  first = full[len(prompt) - 1]
  np.testing.assert_allclose(logits[0, 0], first, atol=0.05 * np.abs(first).max())
