"""The built-in offline generator of instruction–response tasks (the default data: no
download). Deterministic in (seed, index, options), so any example can be regenerated on
resume.

Difficulty knobs (`options`, per task; the defaults make the default stream):
  addition        digits=[1, 5]    each operand below 10^d, d drawn from the range
  multiplication  a_max=1000, b_max=100   a in [2, a_max), b in [2, b_max)
  sorting         length=[3, 8], max_value=100
  sudoku          blanks=[6, 12]   (4x4; fewer are kept where more would break uniqueness)
  sudoku9         blanks=[30, 45]  (9x9, in EXTRA_TASKS: not in the default mixture)
  every task      cot="mixed" (COT_TASKS alternate direct / cot), "direct" or "cot"
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

TASKS = ("addition", "multiplication", "sorting", "reversal", "word_problems", "sudoku")
# Tasks available by name but left out of the default mixture (TASKS): 9x9 Sudoku prompts are
# ~200 tokens and each puzzle takes milliseconds to make unique.
EXTRA_TASKS = ("sudoku9",)
COT_TASKS = ("addition", "multiplication", "word_problems")  # the rest are direct only
COT_MODES = ("mixed", "direct", "cot")


@dataclasses.dataclass(frozen=True)
class Record:
  instruction: str
  response: str
  tags: tuple[str, ...]
  task: str


def _range(value, name: str) -> tuple[int, int]:
  """A knob given as one int or [low, high] (inclusive) → (low, high)."""
  low, high = (value, value) if isinstance(value, int) else tuple(value)
  if not 0 <= low <= high:
    raise ValueError(f"synthetic option {name}={value!r}: need 0 <= low <= high")
  return int(low), int(high)


def _addition(rng, cot: bool, digits=(1, 5)) -> tuple[str, str]:
  low, high = _range(digits, "digits")
  a, b = (int(rng.integers(0, 10 ** int(rng.integers(max(low, 1), high + 1)))) for _ in range(2))
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


def _multiplication(rng, cot: bool, a_max: int = 1000, b_max: int = 100) -> tuple[str, str]:
  if min(a_max, b_max) < 3:
    raise ValueError(f"synthetic options a_max={a_max}, b_max={b_max}: each must be >= 3")
  a, b = int(rng.integers(2, a_max)), int(rng.integers(2, b_max))
  question = f"What is {a} * {b}?"
  if not cot:
    return question, f"\\boxed{{{a * b}}}"
  parts = [(int(d) * 10**i) for i, d in enumerate(str(b)[::-1]) if d != "0"]
  lines = [f"{a}*{p}={a * p}" for p in parts]
  return question, "; ".join(lines) + f"; sum = {a * b}. \\boxed{{{a * b}}}"


def _sorting(rng, cot: bool, length=(3, 8), max_value: int = 100) -> tuple[str, str]:
  low, high = _range(length, "length")
  if max_value < 1 or low < 1:
    raise ValueError(f"synthetic options length={length!r}, max_value={max_value}: need "
                     "length >= 1 and max_value >= 1")
  values = [int(v) for v in rng.integers(0, max_value, int(rng.integers(low, high + 1)))]
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


def _sudoku_units(n: int) -> list[list[int]]:
  """Per cell of an n x n grid (n = 4 or 9), the other cells of its row, column and box."""
  b = {4: 2, 9: 3}[n]
  peers = []
  for i in range(n * n):
    r, c = divmod(i, n)
    box = {n * (r // b * b + dr) + c // b * b + dc for dr in range(b) for dc in range(b)}
    peers.append(sorted(({*range(n * r, n * r + n), *range(c, n * n, n)} | box) - {i}))
  return peers


_PEERS = {4: _sudoku_units(4), 9: _sudoku_units(9)}


def sudoku_solutions(cells: str, limit: int = 2) -> list[str]:
  """Up to `limit` solutions of a 4x4 or 9x9 Sudoku given as 16 or 81 chars row by row
  ('.' = blank). Backtracking on the blank with the fewest candidates (digit bitmasks), so it
  also checks uniqueness of 9x9 puzzles in milliseconds."""
  n = {16: 4, 81: 9}.get(len(cells))
  if n is None or any(c != "." and not ("1" <= c <= str(n)) for c in cells):
    raise ValueError(f"a sudoku is 16 chars of '1'-'4' or 81 of '1'-'9', '.' for a blank; "
                     f"got {cells!r}")
  peers, full = _PEERS[n], (1 << n) - 1
  grid = [0 if c == "." else int(c) for c in cells]
  for i, d in enumerate(grid):  # givens that clash leave nothing to search
    if d and any(grid[j] == d for j in peers[i]):
      return []
  found: list[str] = []

  def search() -> None:
    best, best_free = None, None
    for i, d in enumerate(grid):
      if d == 0:
        used = 0
        for j in peers[i]:
          used |= 1 << grid[j]
        free = full & ~(used >> 1)
        if best is None or bin(free).count("1") < bin(best_free).count("1"):
          best, best_free = i, free
          if free & (free - 1) == 0:  # zero or one candidate: no better choice exists
            break
    if best is None:
      found.append("".join(map(str, grid)))
      return
    for digit in range(1, n + 1):
      if best_free >> (digit - 1) & 1:
        grid[best] = digit
        search()
        grid[best] = 0
        if len(found) >= limit:
          return

  search()
  return found


def _solved_sudoku(rng, n: int = 4) -> str:
  """A random valid n x n grid: the base pattern with digits relabelled, rows shuffled within
  bands, bands shuffled, and the same for columns within stacks and stacks."""
  b = {4: 2, 9: 3}[n]

  def order():
    bands = rng.permutation(b)
    return [b * int(band) + int(r) for band in bands for r in rng.permutation(b)]
  rows, cols, digits = order(), order(), rng.permutation(n) + 1
  return "".join(str(digits[(b * (r % b) + r // b + c) % n]) for r in rows for c in cols)


def _unique_puzzle(rng, n: int, blanks) -> tuple[str, str]:
  """(puzzle, solution): cells of a random solved grid blanked in random order, each kept
  if blanking it would allow a second solution, until the drawn number of blanks."""
  low, high = _range(blanks, "blanks")
  if high >= n * n:
    raise ValueError(f"synthetic option blanks={blanks!r}: a {n}x{n} sudoku has {n * n} cells")
  solution = _solved_sudoku(rng, n)
  puzzle, target = list(solution), int(rng.integers(low, high + 1))
  for i in rng.permutation(n * n):
    if puzzle.count(".") == target:
      break
    puzzle[i] = "."
    if len(sudoku_solutions("".join(puzzle))) != 1:
      puzzle[i] = solution[i]
  return "".join(puzzle), solution


def _sudoku(rng, cot: bool, blanks=(6, 12)) -> tuple[str, str]:
  """A uniquely solvable 4x4 Sudoku. Response: the solution's 4 rows separated by spaces,
  e.g. \\boxed{1234 3412 2143 4321}."""
  puzzle, solution = _unique_puzzle(rng, 4, blanks)
  rows = [puzzle[4 * r:4 * r + 4] for r in range(4)]
  question = ("Solve this 4x4 Sudoku: fill each '.' with a digit 1-4 so that every row, column "
              "and 2x2 box holds each digit once.\n" + "\n".join(rows))
  answer = " ".join(solution[4 * r:4 * r + 4] for r in range(4))
  return question, f"\\boxed{{{answer}}}"


def _sudoku9(rng, cot: bool, blanks=(30, 45)) -> tuple[str, str]:
  """A uniquely solvable 9x9 Sudoku, the original HRM's showcase. Response: the 9 rows
  separated by spaces."""
  puzzle, solution = _unique_puzzle(rng, 9, blanks)
  rows = [puzzle[9 * r:9 * r + 9] for r in range(9)]
  question = "Solve this 9x9 Sudoku ('.' is blank):\n" + "\n".join(rows)
  answer = " ".join(solution[9 * r:9 * r + 9] for r in range(9))
  return question, f"\\boxed{{{answer}}}"


_MAKERS = {"addition": _addition, "multiplication": _multiplication, "sorting": _sorting,
           "reversal": _reversal, "word_problems": _word_problems, "sudoku": _sudoku,
           "sudoku9": _sudoku9}
# Each task's options: its maker's parameters after (rng, …), read once (example() checks
# them on every record of a data source).
_OPTIONS = {task: frozenset(inspect.signature(make).parameters) - {"rng"}
            for task, make in _MAKERS.items()}


def check_options(tasks, options) -> dict:
  """`options` ({task: {knob: value}}) checked against `tasks`: unknown tasks and knobs are
  named here, not deep in a data worker."""
  unknown = [t for t in tasks if t not in _MAKERS]
  if unknown:
    raise ValueError(f"unknown synthetic tasks {unknown}; choose from {TASKS + EXTRA_TASKS}")
  options = {task: dict(knobs) for task, knobs in (options or {}).items()}
  for task, knobs in options.items():
    if task not in tasks:
      raise ValueError(f"synthetic options for {task!r}, which is not among the tasks {tuple(tasks)}")
    allowed = _OPTIONS[task]
    stray = sorted(set(knobs) - allowed)
    if stray:
      raise ValueError(f"synthetic task {task!r} has no option(s) {stray}; its options: "
                       f"{sorted(allowed)}")
    if knobs.get("cot", "mixed") not in COT_MODES:
      raise ValueError(f"synthetic option {task}.cot={knobs['cot']!r}; choose one of {COT_MODES}")
    if knobs.get("cot", "mixed") == "cot" and task not in COT_TASKS:
      raise ValueError(f"synthetic task {task!r} has no chain-of-thought form; COT_TASKS: "
                       f"{COT_TASKS}")
  return options


def example(index: int, seed: int = 0, tasks=TASKS, options=None) -> Record:
  """The `index`-th record of the stream for `seed`; COT_TASKS alternate direct / cot unless
  the task's `cot` option fixes one."""
  return _example(index, seed, tasks, check_options(tasks, options))


def stream(seed: int = 0, tasks=TASKS, options=None, start: int = 0):
  """Records `start`, `start` + 1, … of the stream for `seed` (the options checked once)."""
  options, index = check_options(tasks, options), start
  while True:
    yield _example(index, seed, tasks, options)
    index += 1


def _example(index: int, seed: int, tasks, options: dict) -> Record:
  rng = np.random.default_rng([seed, index])
  task = tasks[int(rng.integers(0, len(tasks)))]
  knobs = dict(options.get(task, {}))
  mode = knobs.pop("cot", "mixed")
  cot = task in COT_TASKS and bool(rng.integers(0, 2))
  if mode != "mixed":
    cot = mode == "cot"
  instruction, response = _MAKERS[task](rng, cot, **knobs)
  return Record(instruction, response, ("synth", "cot" if cot else "direct"), task)
