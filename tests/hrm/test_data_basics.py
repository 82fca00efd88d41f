"""Byte tokenizer, the sample layout and the built-in generator."""

import re

import numpy as np
import pytest

from hrm_jax.data.layout import IGNORE, EmptyResponseError, make_sample
from hrm_jax.data import synthetic
from hrm_jax.data.synthetic import TASKS, example, sudoku_solutions
from hrm_jax.data.tokenizer import BOQ, EOA, EOQ, ByteTokenizer

TOK = ByteTokenizer()


def test_byte_tokenizer_round_trips_unicode_and_skips_specials():
  text = "Grüße, 12 + 30 = 42 ✓"
  ids = TOK.encode(text)
  assert min(ids) >= 16 and max(ids) < TOK.vocab_size
  assert TOK.decode([BOQ] + ids + [EOA]) == text
  assert TOK.condition_ids(["synth", "cot"]) == TOK.condition_ids("synth,cot") == [13, 9]
  with pytest.raises(ValueError, match="unknown condition tags"):
    TOK.condition_ids(["fancy"])


def test_layout_matches_the_spec():
  s = make_sample(TOK, "ab", "xyz", ("direct",))
  prefix = [BOQ, 8, *TOK.encode("ab"), EOQ]
  answer = [*TOK.encode("xyz"), EOA]
  assert s.prefix_length == len(prefix) == 5
  np.testing.assert_array_equal(s.tokens, prefix + answer[:-1])
  np.testing.assert_array_equal(s.labels, [IGNORE] * 4 + answer)
  # EOQ (the last prefix position) predicts the first response token
  assert s.tokens[s.prefix_length - 1] == EOQ and s.labels[s.prefix_length - 1] == answer[0]


def test_truncation_and_errors():
  s = make_sample(TOK, "ab", "x" * 50, max_length=10)
  assert len(s.tokens) == 10 and len(s.labels) == 10
  assert (s.labels != IGNORE).sum() == 10 - 3  # response tokens that fit
  with pytest.raises(EmptyResponseError):
    make_sample(TOK, "ab", "")
  with pytest.raises(ValueError, match="leaves no room"):
    make_sample(TOK, "a" * 20, "x", max_length=10)
  # An instruction that leaves one response slot makes a sample with one labelled token:
  # the last prefix token (EOQ) predicts the first response token.
  one = make_sample(TOK, "a" * 8, "xy", max_length=10)  # prefix BOQ a×8 EOQ: 10 tokens
  assert len(one.tokens) == 10 and one.labels.tolist() == [IGNORE] * 9 + TOK.encode("x")
  with pytest.raises(ValueError, match="leaves no room"):
    make_sample(TOK, "a" * 9, "xy", max_length=10)


def test_generator_is_deterministic_and_correct():
  assert example(7, seed=3) == example(7, seed=3)
  assert example(7, seed=3) != example(7, seed=4) or example(8, seed=3) != example(8, seed=4)
  seen = set()
  for i in range(200):
    r = example(i, seed=0)
    seen.add((r.task, r.tags[1]))
    answer = re.findall(r"\\boxed\{([^}]*)\}", r.response)[-1]
    numbers = [int(x) for x in re.findall(r"\d+", r.instruction)]
    if r.task == "addition":
      assert int(answer) == numbers[0] + numbers[1]
    elif r.task == "multiplication":
      assert int(answer) == numbers[0] * numbers[1]
    elif r.task == "sorting":
      assert [int(x) for x in answer.split()] == sorted(numbers)
    elif r.task == "reversal":
      assert answer == r.instruction.split(": ")[1][::-1]
    elif r.task == "sudoku":
      assert _check_sudoku(r) == answer.replace(" ", "")
    else:
      assert r.task == "word_problems" and int(answer) == _recompute_word_problem(r.instruction)
  assert {t for t, _ in seen} == set(TASKS)
  assert ("addition", "cot") in seen and ("addition", "direct") in seen
  with pytest.raises(ValueError, match="unknown synthetic tasks"):
    example(0, tasks=("chess",))


def _recompute_word_problem(question: str) -> int:
  """The answer from the question's own numbers and wording (independent of the generator)."""
  n = [int(x) for x in re.findall(r"\d+", question)]
  if "gives away" in question:
    return n[0] + n[1] - n[2]
  if "buys" in question:
    return n[0] + n[1]
  if "gives" in question:
    return n[0] - n[1]
  if "in each box" in question:
    return n[0] * n[1]
  assert "equally among" in question, question
  assert n[0] % n[1] == 0, question
  return n[0] // n[1]


def _check_sudoku(record) -> str:
  """The boxed grid is a valid 4x4 Sudoku that keeps the givens, and the puzzle's only one."""
  rows = record.instruction.split("\n")[1:]
  assert len(rows) == 4 and all(len(row) == 4 for row in rows), record.instruction
  puzzle = "".join(rows)
  boxed = re.fullmatch(r"\\boxed\{(\d{4}) (\d{4}) (\d{4}) (\d{4})\}", record.response)
  assert boxed, record.response
  grid = "".join(boxed.groups())
  units = ([range(4 * r, 4 * r + 4) for r in range(4)] + [range(c, 16, 4) for c in range(4)]
           + [[4 * (br + dr) + bc + dc for dr in (0, 1) for dc in (0, 1)]
              for br in (0, 2) for bc in (0, 2)])
  for unit in units:
    assert sorted(grid[i] for i in unit) == list("1234"), (grid, list(unit))
  assert all(p in (".", g) for p, g in zip(puzzle, grid))
  assert 4 <= 16 - puzzle.count(".") <= 10
  assert sudoku_solutions(puzzle) == [grid]
  return grid


def test_word_problems_cot_and_direct_agree_and_are_deterministic():
  kinds = set()
  for i in range(60):
    question, direct = synthetic._MAKERS["word_problems"](np.random.default_rng(i), cot=False)
    same, cot = synthetic._MAKERS["word_problems"](np.random.default_rng(i), cot=True)
    assert same == question
    value = re.fullmatch(r"\\boxed\{(\d+)\}", direct).group(1)
    assert cot.endswith(direct) and int(value) == _recompute_word_problem(question)
    # every equation of the working is right, and the last one gives the answer
    equations = re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", cot)
    assert 1 <= len(equations) <= 2
    for a, op, b, result in equations:
      assert {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "/": int.__floordiv__}[op](
          int(a), int(b)) == int(result)
    assert equations[-1][3] == value
    kinds.add(equations[0][1] + str(len(equations)))
  assert kinds == {"+1", "-1", "*1", "/1", "+2"}  # all five templates occur
  records = [example(i, seed=5, tasks=("word_problems",)) for i in range(20)]
  assert records == [example(i, seed=5, tasks=("word_problems",)) for i in range(20)]
  assert {r.tags[1] for r in records} == {"cot", "direct"}


def test_sudoku_is_valid_unique_and_deterministic():
  for i in range(40):
    r = example(i, seed=1, tasks=("sudoku",))
    assert r == example(i, seed=1, tasks=("sudoku",)) and r.tags == ("synth", "direct")
    _check_sudoku(r)
  assert len({example(i, tasks=("sudoku",)).response for i in range(40)}) > 20


def test_sudoku_solver_counts_solutions():
  solved = "1234341221434321"
  assert sudoku_solutions(solved) == [solved]
  assert len(sudoku_solutions("." * 16, limit=5)) == 5  # an empty grid has many
  assert sudoku_solutions("11" + "." * 14) == []  # clashing givens
  # 1/2 in rows 0 and 2, columns 0 and 1, can be swapped: blanked, the grid has two solutions
  two = sudoku_solutions(".." + solved[2:8] + ".." + solved[10:], limit=3)
  assert sorted(two) == sorted([solved, "2134341212434321"])
  with pytest.raises(ValueError, match="16 chars"):
    sudoku_solutions("12345")
