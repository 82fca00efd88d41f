"""Answer extraction and comparison for the HRM-Text benchmarks, following the authors'
evaluation code (github.com/sapientinc/HRM-Text, evaluation/benchmarks.py): their rule for the
last \\boxed{} of an output, GSM8K's number reading, and DROP's EM and F1 as lm-eval computes
them (lm_eval/tasks/drop/utils.py, v0.4). MATH and AIME answers are compared by the
math-verify package, as the authors do; that lives in benchmarks.py.
"""

from __future__ import annotations

import re
import string

import numpy as np
from scipy.optimize import linear_sum_assignment

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def last_boxed(text: str | None) -> str | None:
  """The contents of the last complete \\boxed{...} (or \\fbox{...}), braces nested or not.

  An unclosed \\boxed at the end (an output cut off by the token budget) is skipped, so the
  last finished answer counts; `\\boxed 5` (no braces) is read up to whitespace or `$`.
  Lenient, for hrm_jax.demo's exact match; benchmark scores use `reference_last_boxed`.
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


def reference_last_boxed(text: str) -> str | None:
  """The authors' `last_boxed_only_string`: the braces after the LAST "\\boxed" (or, only if
  there is none, the last "\\fbox"), counted without escapes; None when they do not close.

  Stricter than `last_boxed`: a cut-off \\boxed at the end hides an earlier complete one,
  "\\boxed 5" has no braces (None), and "\\}" closes a brace. Scores use this rule, so they
  agree with the authors' numbers.
  """
  start = text.rfind("\\boxed")
  if start < 0:
    start = text.rfind("\\fbox")
    if start < 0:
      return None
  opening, depth = text.find("{", start), 0
  if opening < 0:
    return None
  for index in range(opening, len(text)):
    depth += {"{": 1, "}": -1}.get(text[index], 0)
    if depth == 0:
      return text[opening + 1:index].strip()
  return None


def gsm8k_number(output: str) -> int | None:
  """The authors' GSM8K reading: the last \\boxed{} if there is a non-empty one, else the WHOLE
  output; commas and "$" removed, then int(float(...)) or None.

  So "The answer is 72." reads as None (the whole text is not a number), "72.9" as 72 (int
  truncates, as theirs does), "\\$72" as None (the backslash stays).
  """
  text = reference_last_boxed(output) or output
  text = text.replace(",", "").replace("$", "").strip()
  try:
    return int(float(text))
  except (ValueError, OverflowError):
    return None


# ---- DROP: lm-eval's process_results -----------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _drop_normalize(span: str) -> str:
  """lm-eval's per-token normalization: split at spaces and hyphens; lowercase; punctuation
  removed unless the token is a number (float() accepts it); numbers as str(float); articles
  dropped; whitespace collapsed."""
  tokens = []
  for token in re.split(" |-", span):
    token = token.lower()
    if not _is_number(token):
      token = "".join(char for char in token if char not in string.punctuation)
    if _is_number(token):
      token = str(float(token))
    token = " ".join(_ARTICLES.sub(" ", token).split())
    if token.strip():
      tokens.append(token)
  return " ".join(tokens).strip()


def _numbers_agree(gold: set[str], predicted: set[str]) -> bool:
  gold_numbers = {word for word in gold if _is_number(word)}
  return not gold_numbers or bool(gold_numbers & {w for w in predicted if _is_number(w)})


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
  same = len(gold & predicted)
  precision = same / len(predicted) if predicted else 1.0
  recall = same / len(gold) if gold else 1.0
  return 0.0 if precision == recall == 0.0 else 2 * precision * recall / (precision + recall)


def _drop_metrics(predicted: list[str], gold: list[str]) -> tuple[float, float]:
  """EM of the normalized span sets, and F1 of token SETS aligned one to one between predicted
  and gold spans (Hungarian), averaged over the larger side and rounded to 2 decimals."""
  pred_spans = [_drop_normalize(s) for s in predicted]
  gold_spans = [_drop_normalize(s) for s in gold]
  em = float(set(pred_spans) == set(gold_spans) and len(pred_spans) == len(gold_spans))
  pred_bags = [set(s.split()) for s in pred_spans]
  gold_bags = [set(s.split()) for s in gold_spans]
  scores = np.zeros((len(gold_bags), len(pred_bags)))
  for g, gold_bag in enumerate(gold_bags):
    for p, pred_bag in enumerate(pred_bags):
      if _numbers_agree(gold_bag, pred_bag):
        scores[g, p] = _bag_f1(pred_bag, gold_bag)
  rows, columns = linear_sum_assignment(-scores)
  best = np.zeros(max(len(gold_bags), len(pred_bags)))
  for row, column in zip(rows, columns):
    best[row] = max(best[row], scores[row, column])
  return em, float(round(np.mean(best), 2))


def drop_em_f1(prediction: str, golds: list[list[str]] | list[str] | str) -> tuple[float, float]:
  """(EM, F1) of one predicted string against DROP's gold answers, as lm-eval scores them: the
  maximum over gold answers, each a list of spans (a plain string is a one-span answer);
  answers whose first span is blank are skipped. The prediction is one span."""
  golds = [golds] if isinstance(golds, str) else list(golds)
  best_em, best_f1 = 0.0, 0.0
  for gold in golds:
    spans = [gold] if isinstance(gold, str) else list(gold)
    if not spans:
      raise ValueError("a DROP gold answer needs at least one span")
    em, f1 = _drop_metrics([prediction], spans)
    if spans[0].strip():
      best_em, best_f1 = max(best_em, em), max(best_f1, f1)
  return best_em, best_f1
