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


def test_sudoku9_is_valid_unique_and_within_its_blank_range():
  for i in range(8):
    r = example(i, seed=4, tasks=("sudoku9",), options={"sudoku9": {"blanks": [15, 25]}})
    rows = r.instruction.split("\n")[1:]
    puzzle = "".join(rows)
    boxed = re.fullmatch(r"\\boxed\{" + r" ".join([r"(\d{9})"] * 9) + r"\}", r.response)
    assert boxed and len(puzzle) == 81, (r.instruction, r.response)
    grid = "".join(boxed.groups())
    units = ([range(9 * k, 9 * k + 9) for k in range(9)] + [range(k, 81, 9) for k in range(9)]
             + [[9 * (br + dr) + bc + dc for dr in range(3) for dc in range(3)]
                for br in (0, 3, 6) for bc in (0, 3, 6)])
    for unit in units:
      assert sorted(grid[j] for j in unit) == list("123456789")
    assert all(p in (".", g) for p, g in zip(puzzle, grid))
    assert 15 <= puzzle.count(".") <= 25
    assert sudoku_solutions(puzzle) == [grid]
  assert "sudoku9" not in TASKS  # not in the default mixture


def test_sudoku_solver_finds_both_solutions_of_a_9x9_deadly_rectangle():
  solved = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
  assert sudoku_solutions(solved) == [solved]
  # Rows r1, r2 of one band and columns c1, c2 of two stacks holding a b / b a: swapping the
  # pair gives a second valid grid, so blanking those four cells leaves exactly two solutions.
  at = lambda r, c: solved[9 * r + c]
  r1, r2, c1, c2 = next((r1, r2, c1, c2) for r1 in range(9) for r2 in range(r1 + 1, r1 // 3 * 3 + 3)
                        for c1 in range(9) for c2 in range(c1 + 1, 9)
                        if c1 // 3 != c2 // 3 and at(r1, c1) == at(r2, c2)
                        and at(r1, c2) == at(r2, c1))
  cells = {9 * r1 + c1, 9 * r1 + c2, 9 * r2 + c1, 9 * r2 + c2}
  puzzle = "".join("." if i in cells else ch for i, ch in enumerate(solved))
  swapped = list(solved)
  for i, j in ((9 * r1 + c1, 9 * r1 + c2), (9 * r2 + c1, 9 * r2 + c2)):
    swapped[i], swapped[j] = swapped[j], swapped[i]
  assert sorted(sudoku_solutions(puzzle, limit=5)) == sorted([solved, "".join(swapped)])
  assert len(sudoku_solutions("." * 81, limit=3)) == 3
  assert sudoku_solutions(solved[:80] + ".")  == [solved]
  assert sudoku_solutions(solved[:79] + "9.") == []  # a given that clashes in its column
  with pytest.raises(ValueError, match="81"):
    sudoku_solutions(solved[:80])


def test_synthetic_options_set_difficulty_and_name_bad_knobs():
  for i in range(30):
    r = example(i, seed=2, tasks=("addition",), options={"addition": {"digits": 2, "cot": "direct"}})
    a, b = map(int, re.fullmatch(r"What is (\d+) \+ (\d+)\?", r.instruction).groups())
    assert a < 100 and b < 100 and r.tags == ("synth", "direct")
    assert r.response == f"\\boxed{{{a + b}}}"
  cot = example(0, tasks=("addition",), options={"addition": {"cot": "cot"}})
  assert cot.tags[1] == "cot" and "carry" in cot.response
  values = [example(i, tasks=("sorting",), options={"sorting": {"length": 3, "max_value": 5}})
            for i in range(10)]
  assert all(len(v.instruction.split(": ")[1].split()) == 3 for v in values)
  assert all(int(x) < 5 for v in values for x in v.instruction.split(": ")[1].split())
  with pytest.raises(ValueError, match="has no option"):
    example(0, tasks=("addition",), options={"addition": {"width": 3}})
  with pytest.raises(ValueError, match="not among the tasks"):
    example(0, tasks=("addition",), options={"sorting": {"length": 3}})
  with pytest.raises(ValueError, match="no chain-of-thought"):
    example(0, tasks=("sorting",), options={"sorting": {"cot": "cot"}})
  with pytest.raises(ValueError, match="blanks"):
    example(0, tasks=("sudoku",), options={"sudoku": {"blanks": 16}})
  # the default stream does not depend on whether defaults are spelt out
  assert example(3, seed=9) == example(3, seed=9, options={})
  # a data config's synthetic source takes the same options
  from hrm_jax.data.sources import open_source  # pylint: disable=import-outside-toplevel
  source = open_source({"kind": "synthetic", "size": 20, "tasks": ["addition"],
                        "options": {"addition": {"digits": 1, "cot": "direct"}}})
  assert all(max(map(int, re.findall(r"\d+", source[i].instruction))) < 10 for i in range(20))
  with pytest.raises(ValueError, match="has no option"):
    open_source({"kind": "synthetic", "size": 20, "tasks": ["addition"],
                 "options": {"addition": {"digit": 1}}})
