"""The built-in offline generator of instruction–response tasks (the default data: no
download). Deterministic in (seed, index), so any example can be regenerated on resume."""

from __future__ import annotations

import dataclasses

import numpy as np

TASKS = ("addition", "multiplication", "sorting", "reversal")


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


_MAKERS = {"addition": _addition, "multiplication": _multiplication, "sorting": _sorting,
           "reversal": _reversal}


def example(index: int, seed: int = 0, tasks=TASKS) -> Record:
  """The `index`-th record of the stream for `seed`; arithmetic alternates direct / cot."""
  unknown = [t for t in tasks if t not in _MAKERS]
  if unknown:
    raise ValueError(f"unknown synthetic tasks {unknown}; choose from {TASKS}")
  rng = np.random.default_rng([seed, index])
  task = tasks[int(rng.integers(0, len(tasks)))]
  cot = task in ("addition", "multiplication") and bool(rng.integers(0, 2))
  instruction, response = _MAKERS[task](rng, cot)
  return Record(instruction, response, ("synth", "cot" if cot else "direct"), task)
