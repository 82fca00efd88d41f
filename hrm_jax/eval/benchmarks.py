"""Prompt builders, loaders and scorers for the HRM-Text evaluation protocol.

Each benchmark reads a local file in its public (Hugging Face) field layout, turns every
record into an `Item` (prompt text with the k-shot examples, condition tags, gold answer)
and scores a model output against it. The caller wraps the prompt as BOQ + tags + prompt +
EOQ and decodes greedily; nothing here touches a tokenizer or a model.

  gsm8k          0-shot ("synth", "cot"): last \\boxed{} number vs the number after ####
  math           0-shot ("synth", "cot"): last \\boxed{} vs the gold, LaTeX-aware equivalence
  mmlu           5-shot from the dev split ("direct",): first standalone letter
  arc_challenge  25-shot from the train split ("direct",): same, digit labels become letters
  drop           3-shot from the train split ("direct",): first line, DROP EM / F1
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any

import pyarrow.parquet as pq

from hrm_jax.eval.answers import (LETTERS, drop_em_f1, last_boxed, math_equivalent,
                                 normalize_number, parse_letter)



@dataclasses.dataclass(frozen=True)
class Item:
  """One evaluation question, ready to prompt and to score."""
  id: str  # unique within a benchmark file (the record's id, else its line number)
  prompt: str  # the full instruction text, k-shot examples included
  tags: tuple[str, ...]  # condition tags, e.g. ("synth", "cot") or ("direct",)
  gold: Any  # JSON-serializable gold answer(s)
  group: str = ""  # macro-averaging group (MMLU subject, MATH type), "" if none
  num_choices: int = 0  # multiple choice: number of options


# ---------------------------------------------------------------------------------------
# Reading records

@dataclasses.dataclass(frozen=True)
class Row:
  """A raw record and where it came from, so every complaint can name the file and line."""
  path: str
  position: int  # 1-based: the line of a .jsonl, the record of a .json list or .parquet
  data: dict

  @property
  def where(self) -> str:
    unit = "line" if self.path.endswith(".jsonl") else "record"
    return f"{self.path}, {unit} {self.position}"

  def field(self, name: str, kind: type | tuple[type, ...] = str) -> Any:
    """The value of a required field, checked to be of `kind` (and non-empty if a string)."""
    value = self.data.get(name)
    if value is None:
      raise ValueError(f"{self.where}: missing field {name!r}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or isinstance(value, bool):
      raise ValueError(f"{self.where}: field {name!r} is {type(value).__name__}, expected "
                       + " or ".join(k.__name__ for k in kinds))
    if isinstance(value, str) and not value.strip():
      raise ValueError(f"{self.where}: field {name!r} is empty")
    return value

  def string_list(self, value: Any, name: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
      raise ValueError(f"{self.where}: field {name!r} must be a list of strings")
    return list(value)


def read_rows(path: str) -> list[Row]:
  """Reads .jsonl (one object a line), .json (a list of objects) or .parquet."""
  path = os.fspath(path)
  if path.endswith(".jsonl"):
    rows = []
    with open(path, "rb") as f:
      for number, raw in enumerate(f, start=1):
        if not raw.strip():
          continue
        try:
          obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
          raise ValueError(f"{path}, line {number}: invalid JSON ({e})") from None
        rows.append(_checked_row(path, number, obj))
    return rows
  if path.endswith(".json"):
    with open(path, "rb") as f:
      try:
        objs = json.loads(f.read().decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(objs, list):
      raise ValueError(f"{path}: expected a JSON list of records, got {type(objs).__name__}")
    return [_checked_row(path, number, obj) for number, obj in enumerate(objs, start=1)]
  if path.endswith(".parquet"):
    try:
      objs = pq.read_table(path).to_pylist()
    except FileNotFoundError:
      raise
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
      raise ValueError(f"{path}: unreadable Parquet ({e})") from None
    return [Row(path, number, obj) for number, obj in enumerate(objs, start=1)]
  raise ValueError(f"{path}: unknown file type; expected .jsonl, .json or .parquet")


def _checked_row(path: str, number: int, obj: Any) -> Row:
  if not isinstance(obj, dict):
    where = Row(path, number, {}).where
    raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
  return Row(path, number, obj)


@dataclasses.dataclass(frozen=True)
class Example:
  """A parsed record: its query text (up to its answer) and the answer a k-shot example shows."""
  id: str
  query: str
  shown_answer: str
  gold: Any
  group: str = ""
  num_choices: int = 0


class Benchmark:
  """Loads one benchmark's records into Items, scores outputs and averages the scores."""
  name: str = ""
  max_new_tokens: int = 0
  default_shots: int = 0
  tags: tuple[str, ...] = ()
  shots_split: str = ""  # the split k-shot examples come from; "" for 0-shot benchmarks
  headline_average: str = "micro"  # what the plain metric names report for grouped benchmarks

  def load(self, path: str, *, shots_path: str | None = None, shots: int | None = None,
           limit: int | None = None) -> list[Item]:
    """Items for the records of `path` (the first `limit`), each with `shots` examples."""
    shots = self.default_shots if shots is None else shots
    if shots < 0 or (limit is not None and limit < 0):
      raise ValueError(f"{self.name}: shots and limit must be >= 0, got {shots}, {limit}")
    if shots and not self.shots_split:
      raise ValueError(f"{self.name} is evaluated 0-shot; got shots={shots}")
    examples: list[Example] = []
    if shots:
      if shots_path is None:
        raise ValueError(f"{self.name} needs --shots-path (the {self.shots_split} split) for "
                         f"{shots}-shot prompts")
      examples = [self.parse(row) for row in read_rows(shots_path)]
      if len(examples) < shots:
        raise ValueError(f"{shots_path} holds {len(examples)} examples; {self.name} needs "
                         f"{shots} for {shots}-shot prompts")
    rows = read_rows(path)
    items, seen = [], {}
    for row in rows[:limit] if limit is not None else rows:
      record = self.parse(row)
      if record.id in seen:
        raise ValueError(f"{row.where}: id {record.id!r} repeats {seen[record.id]}")
      seen[record.id] = row.where
      context = [f"{ex.query} {ex.shown_answer}" for ex in self.pick_shots(record, examples, shots)]
      items.append(Item(record.id, "\n\n".join(context + [record.query]), self.tags,
                        record.gold, record.group, record.num_choices))
    return items

  def parse(self, row: Row) -> Example:
    raise NotImplementedError

  def pick_shots(self, record: Example, examples: list[Example], shots: int) -> list[Example]:
    """The first `shots` examples: deterministic, and the same for every item."""
    del record
    return examples[:shots]

  def score(self, item: Item, output: str) -> dict[str, float]:
    raise NotImplementedError

  def aggregate(self, items: list[Item], scores: list[dict[str, float]]) -> dict[str, float]:
    """Means of every metric; grouped benchmarks also report `_micro`, `_macro` and per group.

    The plain metric name carries `headline_average` (macro over subjects for MMLU, as the
    reference reports it; micro elsewhere); `count` is the number of items.
    """
    if len(items) != len(scores):
      raise ValueError(f"{self.name}: {len(items)} items but {len(scores)} scores")
    result = {"count": float(len(items))}
    if not scores:
      return result
    by_group = collections.defaultdict(list)
    for item, score in zip(items, scores):
      by_group[item.group].append(score)
    grouped = any(item.group for item in items)
    for metric in scores[0]:
      micro = _mean([score[metric] for score in scores])
      if not grouped:
        result[metric] = micro
        continue
      group_means = {g: _mean([s[metric] for s in group]) for g, group in by_group.items()}
      macro = _mean(list(group_means.values()))
      result[metric] = macro if self.headline_average == "macro" else micro
      result[f"{metric}_micro"], result[f"{metric}_macro"] = micro, macro
      for group, mean in sorted(group_means.items()):
        result[f"{metric}/{group or '(none)'}"] = mean
    return result


def _mean(values: list[float]) -> float:
  return sum(values) / len(values)


def _position_id(row: Row, *keys: str) -> str:
  for key in keys:
    if row.data.get(key) not in (None, ""):
      return str(row.data[key])
  return str(row.position)


class GSM8K(Benchmark):
  name, max_new_tokens, tags = "gsm8k", 512, ("synth", "cot")

  def parse(self, row: Row) -> Example:
    question, answer = row.field("question"), row.field("answer")
    if "####" not in answer:
      raise ValueError(f"{row.where}: field 'answer' has no '#### <number>' final answer")
    gold = normalize_number(answer.rsplit("####", 1)[1])
    if gold is None:
      raise ValueError(f"{row.where}: the final answer after '####' is not a number")
    return Example(_position_id(row), question, "", gold)

  def score(self, item: Item, output: str) -> dict[str, float]:
    predicted = normalize_number(last_boxed(output))
    return {"accuracy": float(predicted is not None and predicted == item.gold)}


class MATH(Benchmark):
  name, max_new_tokens, tags = "math", 512, ("synth", "cot")

  def parse(self, row: Row) -> Example:
    problem = row.field("problem")
    if row.data.get("answer") not in (None, ""):
      gold = row.field("answer", (str, int, float))
    else:
      gold = last_boxed(row.field("solution"))
      if gold is None:
        raise ValueError(f"{row.where}: field 'solution' has no \\boxed{{}} answer "
                         "(and there is no 'answer' field)")
    group = row.field("type") if row.data.get("type") is not None else ""
    return Example(_position_id(row, "unique_id", "id"), problem, "", str(gold), group)

  def score(self, item: Item, output: str) -> dict[str, float]:
    return {"accuracy": float(math_equivalent(last_boxed(output), item.gold))}


def _choice_block(question: str, choices: list[str]) -> str:
  options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(choices))
  return f"{question}\n{options}\nAnswer:"


class MultipleChoice(Benchmark):
  """Letter answers: strict accuracy and the reference's 1/n credit for invalid outputs."""
  max_new_tokens, tags = 8, ("direct",)

  def score(self, item: Item, output: str) -> dict[str, float]:
    letter = parse_letter(output, item.num_choices)
    correct = float(letter == item.gold)
    return {"accuracy": correct,
            "accuracy_1n": correct if letter is not None else 1.0 / item.num_choices,
            "valid": float(letter is not None)}


class MMLU(MultipleChoice):
  name, default_shots, shots_split, headline_average = "mmlu", 5, "dev", "macro"

  def parse(self, row: Row) -> Example:
    question, subject = row.field("question"), row.field("subject")
    choices = row.string_list(row.field("choices", (list, tuple)), "choices")
    answer = row.field("answer", (int, str))
    if isinstance(answer, str):  # some exports carry the letter, or the index as text
      text = answer.strip().upper()
      answer = int(text) if text.isdigit() else LETTERS.find(text) if len(text) == 1 else -1
    if not 2 <= len(choices) <= len(LETTERS) or not 0 <= answer < len(choices):
      raise ValueError(f"{row.where}: field 'answer' must index one of the "
                       f"{len(choices)} choices, got {row.data['answer']!r}")
    return Example(_position_id(row), _choice_block(question, choices), LETTERS[answer],
                   LETTERS[answer], subject, len(choices))

  def pick_shots(self, record: Example, examples: list[Example], shots: int) -> list[Example]:
    """The first `shots` dev examples of the item's subject, topped up from other subjects."""
    same = [ex for ex in examples if ex.group == record.group]
    return (same + [ex for ex in examples if ex.group != record.group])[:shots]


class ARCChallenge(MultipleChoice):
  name, default_shots, shots_split = "arc_challenge", 25, "train"

  def parse(self, row: Row) -> Example:
    question, choices = row.field("question"), row.field("choices", dict)
    texts = row.string_list(choices.get("text"), "choices.text")
    labels = row.string_list(choices.get("label"), "choices.label")
    key = str(row.field("answerKey", (str, int))).strip()
    if len(texts) != len(labels) or not 2 <= len(texts) <= len(LETTERS) or key not in labels:
      raise ValueError(f"{row.where}: answerKey {key!r} is not one of the labels {labels} "
                       f"(or choices.text and choices.label differ in length)")
    letter = LETTERS[labels.index(key)]  # by position, so labels "1".."4" read as A..D
    return Example(_position_id(row, "id"), _choice_block(question, texts), letter, letter,
                   "", len(texts))


class DROP(Benchmark):
  name, max_new_tokens, default_shots, shots_split, tags = "drop", 32, 3, "train", ("direct",)

  def parse(self, row: Row) -> Example:
    passage, question = row.field("passage"), row.field("question")
    answers = row.field("answers_spans", dict)
    spans = row.string_list(answers.get("spans"), "answers_spans.spans")
    golds = list(dict.fromkeys(span.strip() for span in spans if span.strip()))
    if not golds:
      raise ValueError(f"{row.where}: field 'answers_spans' holds no answer span")
    return Example(_position_id(row, "query_id"),
                   f"Passage: {passage}\nQuestion: {question}\nAnswer:", golds[0], golds)

  def score(self, item: Item, output: str) -> dict[str, float]:
    lines = output.strip().splitlines()
    em, f1 = drop_em_f1(lines[0].strip() if lines else "", item.gold)
    return {"em": em, "f1": f1}


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (GSM8K(), MATH(), MMLU(), ARCChallenge(), DROP())}

__all__ = ["BENCHMARKS", "Benchmark", "Item", "Row", "drop_em_f1", "last_boxed",
           "math_equivalent", "normalize_math", "normalize_number", "parse_letter",
           "read_rows"]
