"""The spec's sample layout (§3): I = [BOQ, cond…, instruction…, EOQ], R = [response…, EOA];
input = I + R[:-1]; labels = (|I| − 1) × IGNORE, then R. Only response tokens carry loss,
and the PrefixLM prefix is I."""

from __future__ import annotations

import dataclasses

import numpy as np

from hrm_jax.data.tokenizer import BOQ, EOA, EOQ

IGNORE = -100


@dataclasses.dataclass(frozen=True)
class Sample:
  tokens: np.ndarray      # [n] int32
  labels: np.ndarray      # [n] int32, IGNORE outside the response
  prefix_length: int      # |I|


class EmptyResponseError(ValueError):
  """A record whose response is empty teaches nothing and is dropped."""


class InstructionTooLongError(ValueError):
  """The instruction leaves no room for a response within the row; the record is dropped
  (instructions are never truncated: the question would change)."""


def prompt_tokens(tokenizer, instruction: str, tags=()) -> list[int]:
  """I = [BOQ, cond…, instruction…, EOQ]: the prefix of a training sample and the prompt that
  generation and evaluation feed the model (one function, so the two cannot drift apart)."""
  return [BOQ, *tokenizer.condition_ids(tags), *tokenizer.encode(instruction), EOQ]


def make_sample(tokenizer, instruction: str, response: str, tags=(), *,
                max_length: int | None = None) -> Sample:
  """One training sample; an over-long response is truncated (the instruction never is)."""
  if not response:
    raise EmptyResponseError("empty response")
  prefix = prompt_tokens(tokenizer, instruction, tags)
  answer = [*tokenizer.encode(response), EOA]
  if max_length is not None:
    room = max_length + 1 - len(prefix)  # input drops R's last token
    # One slot is a sample: EOQ predicts the first response token (the authors keep such
    # rows; their loader never truncates, ours cuts the response to the row).
    if room < 1:
      raise InstructionTooLongError(f"instruction of {len(prefix)} tokens leaves no room for a response "
                       f"within max_length {max_length}")
    answer = answer[:room]
  tokens = np.asarray(prefix + answer[:-1], np.int32)
  labels = np.asarray([IGNORE] * (len(prefix) - 1) + answer, np.int32)
  return Sample(tokens, labels, len(prefix))
