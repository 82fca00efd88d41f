"""Answer extraction and comparison for the HRM-Text benchmarks: the last \\boxed{} of an
output, numbers with thousands separators, LaTeX-aware equivalence of MATH answers (exact
rationals, then a guarded numeric check through a small LaTeX parser: sympy's own needs
antlr4, and sympy.simplify can hang), letters of multiple-choice answers, DROP's EM and F1.
"""

from __future__ import annotations

import collections
import decimal
import math
import re
import string

import sympy

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

def last_boxed(text: str | None) -> str | None:
  """The contents of the last complete \\boxed{...} (or \\fbox{...}), braces nested or not.

  An unclosed \\boxed at the end (an output cut off by the token budget) is skipped, so the
  last finished answer counts; `\\boxed 5` (no braces) is read up to whitespace or `$`.
  """
  if not text:
    return None
  found: tuple[int, str] | None = None
  for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
    depth, index = 1, match.end()
    while index < len(text) and depth:
      char = text[index]
      if char == "\\":
        index += 2  # an escaped \{ or \} is content, not structure
        continue
      depth += {"{": 1, "}": -1}.get(char, 0)
      index += 1
    if depth == 0:
      found = (match.start(), text[match.end():index - 1].strip())
  for match in re.finditer(r"\\boxed +([^\s${}]+)", text):
    if found is None or match.start() > found[0]:
      found = (match.start(), match.group(1))
  return found[1] if found else None


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def normalize_number(text: str | None) -> str | None:
  """A canonical string for a written number ("$1,234.50" -> "1234.5", "72.0" -> "72").

  Strips dollar signs, LaTeX spacing, whitespace, thousands commas and a trailing period;
  anything else that is not a plain decimal number gives None. Equal numbers give equal
  strings, so comparing the results compares the values.
  """
  if text is None:
    return None
  s = text.replace("{,}", ",").replace("\\$", "").replace("$", "")
  s = re.sub(r"\\[!,;: ]|\s+", "", s).rstrip(".")
  if _THOUSANDS.fullmatch(s):
    s = s.replace(",", "")
  if not _PLAIN_NUMBER.fullmatch(s):
    return None
  value = decimal.Decimal(s)
  if value == value.to_integral_value():
    return str(int(value))
  return format(value, "f").rstrip("0")  # "0.50" -> "0.5", exactly (no rounding)


_TEXT_COMMANDS = r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)"


def normalize_math(text: str) -> str:
  """MATH-style answer normalization: drops presentation (spacing, \\left, $, degrees, units)
  but keeps the mathematics, so equal answers usually become equal strings."""
  s = text.strip().replace("\n", " ")
  s = re.sub(r"\\[!,;:]|\\ |\\q?quad\b", "", s)
  s = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", s)
  s = re.sub(r"\\[dt]frac", r"\\frac", s)
  for noise in ("^{\\circ}", "^\\circ", "\\$", "$", "\\%", "%"):
    s = s.replace(noise, "")
  # a unit after a value ("10\text{ cm}", "5\text{ m}^2") is dropped; other \text{} is unwrapped
  s = re.sub(rf"^(.*[\d}}.)])\s*{_TEXT_COMMANDS}\{{\s*[a-zA-Z][^{{}}]*\}}(\^\{{?\d\}}?)?$",
             r"\1", s)
  while (unwrapped := re.sub(rf"{_TEXT_COMMANDS}\{{([^{{}}]*)\}}", r"\1", s)) != s:
    s = unwrapped
  s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])", "\\1\x00", s)  # keep "\pi r" from being "\pir"
  s = re.sub(r"\s+", "", s).replace("\x00", " ").rstrip(".")
  s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)  # \frac12 -> \frac{1}{2}
  s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
  s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
  s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", s)
  left, eq, right = s.partition("=")
  if eq and len(left) <= 2 and "=" not in right and right:  # "x=5" -> "5"
    s = right
  number = normalize_number(s)
  return s if number is None else number


def math_equivalent(predicted: str | None, gold: str | None) -> bool:
  """Whether two MATH answers agree: normalized strings first, then tuples and intervals
  element by element, then sympy on a small LaTeX subset (never raises, never hangs)."""
  if predicted is None or gold is None:
    return False
  a, b = normalize_math(str(predicted)), normalize_math(str(gold))
  if not a or not b:
    return False
  if a == b:
    return True
  (open_a, parts_a, close_a), (open_b, parts_b, close_b) = _split_tuple(a), _split_tuple(b)
  if len(parts_a) > 1 or len(parts_b) > 1:
    return ((open_a, close_a, len(parts_a)) == (open_b, close_b, len(parts_b)) and
            all(x == y or _sympy_equal(x, y) for x, y in zip(parts_a, parts_b)))
  return _sympy_equal(a, b)


def _split_tuple(s: str) -> tuple[str, list[str], str]:
  """"(1,2]" -> ("(", ["1", "2"], "]"); "1,2" -> ("", ["1", "2"], ""); splits at depth 0."""
  opening, closing = "", ""
  if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _depth_zero_at_end(s[1:-1]):
    opening, closing, s = s[0], s[-1], s[1:-1]
  parts, depth, start = [], 0, 0
  for index, char in enumerate(s):
    depth += 1 if char in "([{" else -1 if char in ")]}" else 0
    if char == "," and depth == 0:
      parts.append(s[start:index])
      start = index + 1
  return opening, parts + [s[start:]], closing


def _depth_zero_at_end(inner: str) -> bool:
  depth = 0
  for char in inner:
    depth += 1 if char in "([{" else -1 if char in ")]}" else 0
    if depth < 0:
      return False
  return depth == 0


_MAX_CHARS, _MAX_DIGITS, _MAX_EXPONENT, _MAX_LOG10 = 120, 20, 100, 1000
_DIGITS, _TOLERANCE = 50, sympy.Float("1e-30")
# irrational, distinct, some negative: an identity that holds at three points is no accident
_SAMPLE_VALUES = (0.6180339887498949, 1.4142135623730951, -0.5772156649015329,
                  2.718281828459045, -1.7320508075688772, 0.3183098861837907,
                  -2.23606797749979, 0.6931471805599453, 3.141592653589793)


def _sympy_equal(a: str, b: str) -> bool:
  """Whether a - b vanishes, for small LaTeX expressions that both parse.

  Exact for rationals; otherwise a - b is evaluated to 50 digits (at a few fixed irrational
  points when it has variables) instead of calling sympy.simplify, which can run for minutes
  on inputs as short as "(x+y+z)^{100}". Words never reach sympy: "east" and "seat" would
  multiply out to the same product of single-letter variables.
  """
  if max(len(a), len(b)) > _MAX_CHARS:
    return False
  if any(re.search(r"[a-zA-Z]{2,}", re.sub(r"\\[a-zA-Z]+", " ", s)) for s in (a, b)):
    return False
  try:
    left, right = _LatexParser(a).parse(), _LatexParser(b).parse()
    difference = left - right
    if difference.is_Rational:  # exact: 0 when equal (also covers two equal rationals)
      return difference == 0
    symbols = sorted(difference.free_symbols, key=str)
    n = len(_SAMPLE_VALUES)  # symbol i at point k: a value no other symbol has at that point
    points = [{s: _SAMPLE_VALUES[(3 * k + i) % n] + i // n for i, s in enumerate(symbols)}
              for k in range(3 if symbols else 1)]
    return all(_vanishes(left, right, point) for point in points)
  except Exception:  # pylint: disable=broad-except  # anything sympy or the parser raises
    return False


def _vanishes(left, right, point) -> bool:
  """|left - right| is negligible against their size at `point` (both finite there)."""
  left = left.xreplace({s: sympy.Float(v, _DIGITS) for s, v in point.items()}).evalf(_DIGITS)
  right = right.xreplace({s: sympy.Float(v, _DIGITS) for s, v in point.items()}).evalf(_DIGITS)
  if not (left.is_number and right.is_number and left.is_finite and right.is_finite):
    return False
  scale = max(sympy.Float(1), sympy.Abs(left), sympy.Abs(right))
  return bool(sympy.Abs((left - right).evalf(_DIGITS)) <= _TOLERANCE * scale)


class _Unparsable(ValueError):
  pass


class _LatexParser:
  """Recursive descent over numbers, single-letter variables, + - * / ^, \\frac, \\sqrt[n],
  \\pi, \\cdot, \\times, \\div, parentheses and braces, with implicit multiplication."""
  _TOKEN = re.compile(r"\s*(\d+\.?\d*|\.\d+|\\[a-zA-Z]+|[a-zA-Z]|[-+*/^(){}\[\]])")
  _ATOM_COMMANDS = ("\\frac", "\\sqrt", "\\pi")

  def __init__(self, text: str):
    self.tokens, position, end = [], 0, len(text.rstrip())
    while position < end:
      match = self._TOKEN.match(text, position)
      if not match:
        raise _Unparsable(text)
      self.tokens.append(match.group(1))
      position = match.end()
    self.index = 0

  def peek(self) -> str | None:
    return self.tokens[self.index] if self.index < len(self.tokens) else None

  def take(self, expected: str | None = None) -> str:
    token = self.peek()
    if token is None or (expected is not None and token != expected):
      raise _Unparsable(f"expected {expected!r}, got {token!r}")
    self.index += 1
    return token

  def parse(self):
    value = self.sum()
    if self.peek() is not None:
      raise _Unparsable(f"unexpected {self.peek()!r}")
    return value

  def sum(self):
    value = self.product()
    while self.peek() in ("+", "-"):
      value = value + self.product() if self.take() == "+" else value - self.product()
    return value

  def product(self):
    value = self.signed()
    while (token := self.peek()) is not None:
      if token in ("*", "\\cdot", "\\times"):
        self.take()
        value = value * self.signed()
      elif token in ("/", "\\div"):
        self.take()
        value = value / self.signed()
      elif token[0].isdigit() or token[0] in ".({" or token.isalpha() or \
          token in self._ATOM_COMMANDS:
        value = value * self.power()
      else:
        break
    return value

  def signed(self):
    if self.peek() in ("-", "+"):
      return -self.signed() if self.take() == "-" else self.signed()
    return self.power()

  def power(self):
    base = self.atom()
    if self.peek() != "^":
      return base
    self.take()
    negative = self.peek() == "-" and bool(self.take())
    exponent = -self.argument() if negative else self.argument()
    if exponent.is_number:  # refuse 9^{9^{9}} and friends before sympy computes them
      size = abs(complex(exponent))
      if size > _MAX_EXPONENT or (base.is_number and base != 0 and
                                  _log10(base) * size > _MAX_LOG10):
        raise _Unparsable("power too large")
    return base ** exponent

  def argument(self):
    """A braced group or one token: in LaTeX, x^12 is x^1 followed by 2."""
    token = self.peek()
    if token is not None and token[0].isdigit() and len(token) > 1:
      self.tokens[self.index] = token[1:]
      return sympy.Integer(token[0])
    return self.atom()

  def atom(self):
    token = self.take()
    if token[0].isdigit() or token[0] == ".":
      if len(token) > _MAX_DIGITS:
        raise _Unparsable("number too long")
      return sympy.Rational(token)
    if token.isalpha():
      return sympy.Symbol(token)
    if token in ("(", "{"):
      value = self.sum()
      self.take(")" if token == "(" else "}")
      return value
    if token == "\\frac":
      numerator = self.argument()
      return numerator / self.argument()
    if token == "\\sqrt":
      degree = 2
      if self.peek() == "[":
        self.take()
        degree = self.sum()
        self.take("]")
      return sympy.root(self.argument(), degree)
    if token == "\\pi":
      return sympy.pi
    raise _Unparsable(f"unsupported {token!r}")


def _log10(value) -> float:
  if value.is_Rational:
    return abs(math.log10(abs(value.p)) - math.log10(value.q))
  return abs(math.log10(abs(complex(value))))


def parse_letter(text: str, num_choices: int) -> str | None:
  """The first standalone capital letter among the first `num_choices` ("(B)", "The answer is
  D." -> D; "Banana" -> None: no letter is read out of a word; "E" with 4 choices -> None).

  Lowercase counts only when it is the whole answer ("c", "(c)", "Answer: c"), because a
  lowercase "a" in a sentence is usually the article. A capital "A" starting a sentence is
  read as the letter A: short greedy outputs rarely begin that way.
  """
  letters = LETTERS[:num_choices]
  for match in re.finditer(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9'])", text):
    if match.group(1) in letters:
      return match.group(1)
  bare = re.fullmatch(r"\s*(?:answer(?:\s+is)?\s*:?\s*)?[(\[]?([a-z])[)\]]?\.?\s*", text,
                      re.IGNORECASE)
  if bare and bare.group(1).upper() in letters:
    return bare.group(1).upper()
  return None


_DROP_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_ARTICLES = {"a", "an", "the"}


def _drop_tokens(text: str) -> list[str]:
  """DROP's normalization, token by token: lowercase, punctuation dropped except inside
  numbers, numbers as floats ("1,000" == "1000" == "1000.0"), articles removed."""
  tokens = []
  for token in re.split(r"[\s\-]+", text.lower()):
    if not _DROP_NUMBER.fullmatch(token):
      token = "".join(char for char in token if char not in string.punctuation)
    if _DROP_NUMBER.fullmatch(token):
      token = str(float(token))
    if token and token not in _ARTICLES:
      tokens.append(token)
  return tokens


def drop_em_f1(prediction: str, golds: str | list[str]) -> tuple[float, float]:
  """(exact match, bag-of-tokens F1), each the best over the gold spans. As in the official
  script, F1 is 0 when the gold holds numbers and the prediction none of them."""
  golds = [golds] if isinstance(golds, str) else list(golds)
  if not golds:
    raise ValueError("drop_em_f1 needs at least one gold answer")
  predicted = _drop_tokens(prediction)
  best_em, best_f1 = 0.0, 0.0
  for gold in golds:
    expected = _drop_tokens(gold)
    best_em = max(best_em, float(predicted == expected))
    best_f1 = max(best_f1, _bag_f1(predicted, expected))
  return best_em, best_f1


def _bag_f1(predicted: list[str], expected: list[str]) -> float:
  if not predicted and not expected:
    return 1.0
  numbers = {token for token in expected if _DROP_NUMBER.fullmatch(token)}
  if numbers and not numbers & set(predicted):
    return 0.0
  same = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
  if same == 0:
    return 0.0
  precision, recall = same / len(predicted), same / len(expected)
  return 2 * precision * recall / (precision + recall)
