"""The built-in offline generator of instruction–response tasks (the default data: no
download). Deterministic in (seed, index), so any example can be regenerated on resume."""

from __future__ import annotations

import dataclasses

import numpy as np

TASKS = ("addition", "multiplication", "sorting", "reversal", "word_problems", "sudoku")
COT_TASKS = ("addition", "multiplication", "word_problems")  # the rest are direct only


@dataclasses.dataclass(frozen=True)
class Record:
  instruction: str
  response: str
  tags: tuple[str, ...]
  task: str


def _addition(rng, cot: bool) -> tuple[str, str]:
  a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, 6)))) for _ in range(2))
  question = f"What is {a} + {b}?"
  if not cot:
    return question, f"\\boxed{{{a + b}}}"
  steps, carry, digits = [], 0, []
  da, db = str(a)[::-1], str(b)[::-1]
  for i in range(max(len(da), len(db))):
    x = int(da[i]) if i < len(da) else 0
    y = int(db[i]) if i < len(db) else 0
    s = x + y + carry
    steps.append(f"{x}+{y}+{carry}={s}, write {s % 10} carry {s // 10}")
    digits.append(str(s % 10))
    carry = s // 10
  if carry:
    digits.append(str(carry))
  return question, "; ".join(steps) + f". \\boxed{{{int(''.join(reversed(digits)))}}}"


def _multiplication(rng, cot: bool) -> tuple[str, str]:
  a, b = int(rng.integers(2, 1000)), int(rng.integers(2, 100))
  question = f"What is {a} * {b}?"
  if not cot:
    return question, f"\\boxed{{{a * b}}}"
  parts = [(int(d) * 10**i) for i, d in enumerate(str(b)[::-1]) if d != "0"]
  lines = [f"{a}*{p}={a * p}" for p in parts]
  return question, "; ".join(lines) + f"; sum = {a * b}. \\boxed{{{a * b}}}"


def _sorting(rng, cot: bool) -> tuple[str, str]:
  values = [int(v) for v in rng.integers(0, 100, int(rng.integers(3, 9)))]
  answer = " ".join(map(str, sorted(values)))
  return f"Sort ascending: {' '.join(map(str, values))}", f"\\boxed{{{answer}}}"


def _reversal(rng, cot: bool) -> tuple[str, str]:
  letters = "abcdefghijklmnopqrstuvwxyz"
  word = "".join(letters[int(i)] for i in rng.integers(0, 26, int(rng.integers(3, 12))))
  return f"Reverse the string: {word}", f"\\boxed{{{word[::-1]}}}"


_NAMES = (("Mia", "she"), ("Leo", "he"), ("Ava", "she"), ("Omar", "he"), ("Zoe", "she"),
          ("Ravi", "he"), ("Lena", "she"), ("Kofi", "he"))
_ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards")


def _word_problems(rng, cot: bool) -> tuple[str, str]:
  """Templated one- or two-step problems over small whole numbers (answers are integers)."""
  name, pronoun = _NAMES[int(rng.integers(0, len(_NAMES)))]
  items = _ITEMS[int(rng.integers(0, len(_ITEMS)))]
  kind = int(rng.integers(0, 5))
  if kind == 0:
    a, b = int(rng.integers(2, 100)), int(rng.integers(2, 100))
    question = (f"{name} has {a} {items} and buys {b} more. "
                f"How many {items} does {pronoun} have now?")
    steps, answer = [f"{name} had {a} and got {b} more, so {a} + {b} = {a + b}."], a + b
  elif kind == 1:
    a = int(rng.integers(10, 100))
    b = int(rng.integers(1, a))
    question = (f"{name} has {a} {items} and gives {b} of them to a friend. "
                f"How many {items} does {pronoun} have left?")
    steps, answer = [f"{name} had {a} and gave away {b}, so {a} - {b} = {a - b}."], a - b
  elif kind == 2:
    groups, each = int(rng.integers(2, 13)), int(rng.integers(2, 13))
    question = (f"There are {groups} boxes with {each} {items} in each box. "
                f"How many {items} are there in total?")
    answer = groups * each
    steps = [f"{groups} boxes of {each} make {groups} * {each} = {answer}."]
  elif kind == 3:
    friends, share = int(rng.integers(2, 11)), int(rng.integers(1, 13))
    total = friends * share
    question = (f"{name} shares {total} {items} equally among {friends} friends. "
                f"How many {items} does each friend get?")
    steps, answer = [f"{total} shared by {friends} is {total} / {friends} = {share}."], share
  else:
    a, b = int(rng.integers(5, 60)), int(rng.integers(2, 40))
    c = int(rng.integers(1, a + b))
    question = (f"{name} has {a} {items}, buys {b} more and then gives away {c}. "
                f"How many {items} does {pronoun} have now?")
    answer = a + b - c
    steps = [f"After buying: {a} + {b} = {a + b}.", f"After giving away: {a + b} - {c} = {answer}."]
  return question, (" ".join(steps) + " " if cot else "") + f"\\boxed{{{answer}}}"


def sudoku_solutions(cells: str, limit: int = 2) -> list[str]:
  """Up to `limit` solutions of a 4x4 Sudoku given as 16 chars row by row ('.' = blank).

  Plain backtracking: 4x4 grids are tiny, so it also serves to check uniqueness."""
  if len(cells) != 16 or any(c not in ".1234" for c in cells):
    raise ValueError(f"a 4x4 sudoku is 16 chars of '1'-'4' or '.', got {cells!r}")
  grid, found = list(cells), []

  def allowed(i: int) -> list[str]:
    r, c = divmod(i, 4)
    box = [4 * (r // 2 * 2 + dr) + c // 2 * 2 + dc for dr in (0, 1) for dc in (0, 1)]
    seen = {grid[j] for j in [*range(4 * r, 4 * r + 4), *range(c, 16, 4), *box]}
    return [d for d in "1234" if d not in seen]

  def search() -> None:
    blank = next((i for i, c in enumerate(grid) if c == "."), None)
    if blank is None:
      found.append("".join(grid))
      return
    for digit in allowed(blank):
      grid[blank] = digit
      search()
      grid[blank] = "."
      if len(found) >= limit:
        return

  for i, given in enumerate(cells):  # givens that clash leave nothing to search
    if given != ".":
      grid[i] = "."
      clash = given not in allowed(i)
      grid[i] = given
      if clash:
        return []
  search()
  return found


def _solved_sudoku(rng) -> str:
  """A random valid 4x4 grid: the base pattern with digits relabelled, rows shuffled within
  bands, bands shuffled, and the same for columns within stacks and stacks."""
  def order():
    bands = rng.permutation(2)
    return [2 * int(b) + int(r) for b in bands for r in rng.permutation(2)]
  rows, cols, digits = order(), order(), rng.permutation(4) + 1
  return "".join(str(digits[(2 * (r % 2) + r // 2 + c) % 4]) for r in rows for c in cols)


def _sudoku(rng, cot: bool) -> tuple[str, str]:
  """A uniquely solvable 4x4 Sudoku. Response: the solution's 4 rows separated by spaces,
  e.g. \\boxed{1234 3412 2143 4321}."""
  solution = _solved_sudoku(rng)
  puzzle, target = list(solution), int(rng.integers(6, 13))
  for i in rng.permutation(16):
    if puzzle.count(".") == target:
      break
    puzzle[i] = "."
    if len(sudoku_solutions("".join(puzzle))) != 1:
      puzzle[i] = solution[i]
  rows = ["".join(puzzle[4 * r:4 * r + 4]) for r in range(4)]
  question = ("Solve this 4x4 Sudoku: fill each '.' with a digit 1-4 so that every row, column "
              "and 2x2 box holds each digit once.\n" + "\n".join(rows))
  answer = " ".join(solution[4 * r:4 * r + 4] for r in range(4))
  return question, f"\\boxed{{{answer}}}"


_MAKERS = {"addition": _addition, "multiplication": _multiplication, "sorting": _sorting,
           "reversal": _reversal, "word_problems": _word_problems, "sudoku": _sudoku}


def example(index: int, seed: int = 0, tasks=TASKS) -> Record:
  """The `index`-th record of the stream for `seed`; COT_TASKS alternate direct / cot."""
  unknown = [t for t in tasks if t not in _MAKERS]
  if unknown:
    raise ValueError(f"unknown synthetic tasks {unknown}; choose from {TASKS}")
  rng = np.random.default_rng([seed, index])
  task = tasks[int(rng.integers(0, len(tasks)))]
  cot = task in COT_TASKS and bool(rng.integers(0, 2))
  instruction, response = _MAKERS[task](rng, cot)
  return Record(instruction, response, ("synth", "cot" if cot else "direct"), task)
