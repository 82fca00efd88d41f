"""Prompt builders, loaders and scorers for the HRM-Text evaluation protocol.

Each benchmark reads a local file in its public (Hugging Face) field layout, turns every
record into an `Item` (prompt text with the k-shot examples, condition tags, gold answer)
and scores a model output against it. The caller wraps the prompt as BOQ + tags + prompt +
EOQ and decodes; nothing here touches a tokenizer or a model.

Every default below is the authors' evaluation code (github.com/sapientinc/HRM-Text:
evaluation/benchmarks.py, config/hrm_benchmarking.yaml, config/hrm_maj_vote_benchmarking.yaml,
simple_inference_engine.py). "context" is their max_context: prompt + generated tokens; a
prompt of that many tokens or more is not cut but answered "" (scored invalid). "new" is the
most tokens generated (their max_tokens; "fill" = up to the context).

  name           shots (from)                 tags       context/new  scored as
  gsm8k          0                            synth,cot  3072/fill    last \\boxed{} (else the
                 whole output) read as int(float()) vs the integer after ####
  math           0                            synth,cot  3072/fill    math-verify: gold vs the
                 last \\boxed{} (else the whole output, counted invalid)
  mmlu           5 (dev, same subject; 3 for  direct     4096/1       the one token,
                 high_school_european_history)                        strip().upper(), must be
  arc_challenge  25 (validation)              direct     4096/1       one of the letters;
  hellaswag      10 (train)                   direct     4096/1       invalid earns 1/n in
  winogrande     5 (train, debiased)          direct     4096/1       accuracy_1n (the
  boolq          5 (train)                    direct     4096/1       authors' acc)
  drop           3 (the authors' fixed three) direct     3072/fill    the whole stripped
                 output, lm-eval's DROP EM and F1 (max over gold answers)
  aime25         0; 256 samples at T=0.6      synth,cot  4096/fill    math-verify per sample;
                 maj_pass@k (gold among the k most voted answers) and unbiased pass@k, k 1/10/100

Splits the authors evaluate: GSM8K, MATH (EleutherAI/hendrycks_math), MMLU (cais/mmlu) test;
ARC-Challenge test; HellaSwag, Winogrande, BoolQ, DROP (EleutherAI/drop) validation; AIME
2025 (math-ai/aime25) test.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any

import pyarrow.parquet as pq

from hrm_jax.eval.answers import LETTERS, drop_em_f1, gsm8k_number, reference_last_boxed

@dataclasses.dataclass(frozen=True)
class Item:
  """One evaluation question, ready to prompt and to score."""
  id: str  # unique within a benchmark file (the record's id, else its line number)
  prompt: str  # the full instruction text, k-shot examples included
  tags: tuple[str, ...]  # condition tags, e.g. ("synth", "cot") or ("direct",)
  gold: Any  # JSON-serializable gold answer(s)
  group: str = ""  # MMLU subject, MATH type (averaged over); AIME: the problem a sample answers
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

  def field(self, name: str, kind: type | tuple[type, ...] = str, *,
            empty_ok: bool = False) -> Any:
    """The value of a required field, checked to be of `kind` (and non-empty if a string,
    unless `empty_ok`)."""
    value = self.data.get(name)
    if value is None:
      raise ValueError(f"{self.where}: missing field {name!r}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or isinstance(value, bool):
      raise ValueError(f"{self.where}: field {name!r} is {type(value).__name__}, expected "
                       + " or ".join(k.__name__ for k in kinds))
    if isinstance(value, str) and not value.strip() and not empty_ok:
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
  """Loads one benchmark's records into Items, scores outputs and averages the scores.

  The class attributes are the benchmark's protocol; the runner reads the generation ones
  (max_context, max_new_tokens, temperature) and `load` the prompt ones.
  """
  name: str = ""
  tags: tuple[str, ...] = ()  # condition tags: the authors' `condition`
  max_context: int = 3072  # prompt + generated tokens (the authors' max_context)
  max_new_tokens: int | None = None  # the most generated tokens; None: up to max_context
  temperature: float = 0.0  # 0: greedy
  default_samples: int = 1  # answers generated per question (majority voting: more)
  default_shots: int = 0
  shots_split: str = ""  # the split k-shot examples come from; "" when there is no file
  fixed_shots: tuple[str, ...] = ()  # hand-written examples (DROP), used instead of a file
  headline_average: str = "micro"  # what the plain metric names report for grouped benchmarks

  def protocol(self) -> str:
    """One line of defaults, for --help."""
    if self.fixed_shots:
      shots = f"{self.default_shots}-shot (fixed examples)"
    elif self.default_shots:
      shots = f"{self.default_shots}-shot from {self.shots_split}"
    else:
      shots = "0-shot"
    new = "up to the context" if self.max_new_tokens is None else str(self.max_new_tokens)
    decoding = (f"{self.default_samples} samples at temperature {self.temperature:g}"
                if self.temperature else "greedy")
    return (f"{shots}, tags {','.join(self.tags)}, context {self.max_context}, new tokens "
            f"{new}, {decoding}")

  def load(self, path: str, *, shots_path: str | None = None, shots: int | None = None,
           limit: int | None = None, samples: int | None = None) -> list[Item]:
    """Items for the records of `path` (the first `limit`), each with `shots` examples;
    `samples` Items per record (ids "<id>#<j>") for benchmarks that vote over samples."""
    shots = self.default_shots if shots is None else shots
    samples = self.default_samples if samples is None else samples
    if shots < 0 or (limit is not None and limit < 0) or samples < 1:
      raise ValueError(f"{self.name}: shots and limit must be >= 0 and samples >= 1, got "
                       f"{shots}, {limit}, {samples}")
    if samples != 1 and self.default_samples == 1:
      raise ValueError(f"{self.name} scores one answer per question; got samples={samples}")
    if shots and not (self.shots_split or self.fixed_shots):
      raise ValueError(f"{self.name} is evaluated 0-shot; got shots={shots}")
    if self.fixed_shots and shots_path is not None:
      raise ValueError(f"{self.name} uses the authors' {len(self.fixed_shots)} fixed examples; "
                       "it takes no shots file")
    if shots > len(self.fixed_shots) > 0:
      raise ValueError(f"{self.name} has {len(self.fixed_shots)} fixed examples; got "
                       f"shots={shots}")
    examples: list[Example] = []
    if shots and not self.fixed_shots:
      if shots_path is None:
        raise ValueError(f"{self.name} needs --shots-path (the {self.shots_split} split) for "
                         f"{shots}-shot prompts")
      examples = self.read_shots(shots_path, shots)
    rows = read_rows(path)
    items, seen = [], {}
    for row in rows[:limit] if limit is not None else rows:
      record = self.parse(row)
      if record.id in seen:
        raise ValueError(f"{row.where}: id {record.id!r} repeats {seen[record.id]}")
      seen[record.id] = row.where
      context = (list(self.fixed_shots[:shots]) if self.fixed_shots else
                 [f"{ex.query} {ex.shown_answer}"
                  for ex in self.pick_shots(record, examples, shots, shots_path)])
      # The authors' engine strips the prompt before tokenizing it.
      item = Item(record.id, "\n\n".join(context + [record.query]).strip(), self.tags,
                  record.gold, record.group, record.num_choices)
      if self.default_samples == 1:
        items.append(item)
      else:
        items.extend(dataclasses.replace(item, id=f"{record.id}#{j}", group=record.id)
                     for j in range(samples))
    return items

  def parse(self, row: Row) -> Example:
    raise NotImplementedError

  def read_shots(self, shots_path: str, shots: int) -> list[Example]:
    """The first `shots` records of the shots file (the authors' `split[:k]`)."""
    rows = read_rows(shots_path)
    if len(rows) < shots:
      raise ValueError(f"{shots_path} holds {len(rows)} examples; {self.name} needs {shots} "
                       f"for {shots}-shot prompts")
    return [self.parse(row) for row in rows[:shots]]

  def pick_shots(self, record: Example, examples: list[Example], shots: int,
                 shots_path: str | None) -> list[Example]:
    """The first `shots` examples: deterministic, and the same for every item."""
    del record, shots_path
    return examples[:shots]

  def score(self, item: Item, output: str) -> dict[str, Any]:
    raise NotImplementedError

  def aggregate(self, items: list[Item], scores: list[dict[str, Any]]) -> dict[str, float]:
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


def math_verified(gold: str, answer: str) -> bool:
  """math-verify's verdict, called as the authors call it: both sides parsed."""
  from math_verify import parse, verify  # pylint: disable=import-outside-toplevel
  return bool(verify(parse(gold), parse(answer)))


# ---- math: GSM8K, MATH, AIME --------------------------------------------------------------


class GSM8K(Benchmark):
  name, tags = "gsm8k", ("synth", "cot")

  def parse(self, row: Row) -> Example:
    question, answer = row.field("question"), row.field("answer")
    if "####" not in answer:
      raise ValueError(f"{row.where}: field 'answer' has no '#### <number>' final answer")
    final = answer.rsplit("####", 1)[1].strip().replace(",", "")
    try:
      gold = int(final)
    except ValueError:
      raise ValueError(f"{row.where}: the final answer after '####' is not an integer: "
                       f"{final!r}") from None
    return Example(_position_id(row), question, "", gold)

  def score(self, item: Item, output: str) -> dict[str, float]:
    predicted = gsm8k_number(output)
    return {"accuracy": float(predicted is not None and predicted == item.gold),
            "invalid": float(predicted is None)}


class MATH(Benchmark):
  name, tags = "math", ("synth", "cot")

  def parse(self, row: Row) -> Example:
    problem = row.field("problem")
    # The authors' gold is the last \boxed{} of the solution; files without a solution
    # (MATH-500 style) give it in 'answer'.
    gold = None
    if row.data.get("solution") not in (None, ""):
      gold = reference_last_boxed(row.field("solution"))
    if gold is None and row.data.get("answer") not in (None, ""):
      gold = str(row.field("answer", (str, int, float)))
    if gold is None:
      raise ValueError(f"{row.where}: field 'solution' has no \\boxed{{}} answer "
                       "(and there is no 'answer' field)")
    group = row.field("type") if row.data.get("type") is not None else ""
    return Example(_position_id(row, "unique_id", "id"), problem, "", gold, group)

  def score(self, item: Item, output: str) -> dict[str, float]:
    answer = reference_last_boxed(output)
    return {"accuracy": float(math_verified(item.gold, output if answer is None else answer)),
            "invalid": float(answer is None)}


class AIME(Benchmark):
  """Majority voting over `samples` answers per problem (the authors' AIMEMajorityVoting)."""
  name, tags, max_context = "aime25", ("synth", "cot"), 4096
  temperature, default_samples = 0.6, 256
  pass_k: tuple[int, ...] = (1, 10, 100)

  def parse(self, row: Row) -> Example:
    problem = row.field("problem")
    if row.data.get("answer") not in (None, ""):
      gold = row.field("answer", (str, int))
    else:
      gold = reference_last_boxed(row.field("solution"))
    try:
      gold = int(gold)
    except (TypeError, ValueError):
      raise ValueError(f"{row.where}: the answer ('answer', else the last \\boxed{{}} of "
                       f"'solution') is not an integer: {gold!r}") from None
    return Example(_position_id(row, "id"), problem, "", gold)

  def score(self, item: Item, output: str) -> dict[str, Any]:
    boxed = reference_last_boxed(output)
    text = output if boxed is None else boxed
    try:
      vote = int(text)
    except ValueError:
      vote = None
    return {"correct": float(math_verified(str(item.gold), text)),
            "vote": vote if vote is not None and 1 <= vote <= 999 else None}

  def aggregate(self, items: list[Item], scores: list[dict[str, Any]]) -> dict[str, float]:
    """maj_pass@k: the gold is among the k most frequent valid answers (1..999); pass@k: the
    unbiased estimate 1 - C(n-c, k)/C(n, k) from c correct of n samples, reported for k <= n
    (the authors' code reports 0 there). Per problem: valid/<id>, cons_count/<id>."""
    if len(items) != len(scores):
      raise ValueError(f"{self.name}: {len(items)} items but {len(scores)} scores")
    problems: dict[str, tuple[Any, list[dict]]] = {}
    for item, score in zip(items, scores):
      problems.setdefault(item.group, (item.gold, []))[1].append(score)
    result: dict[str, float] = {"count": float(len(problems))}
    if not problems:
      return result
    maj = dict.fromkeys(self.pass_k, 0.0)
    passed = dict.fromkeys(self.pass_k, 0.0)
    n = min(len(samples) for _, samples in problems.values())
    for problem, (gold, samples) in problems.items():
      votes = [s["vote"] for s in samples if s["vote"] is not None]
      ranked = collections.Counter(votes).most_common()  # ties: first voted first
      correct = sum(s["correct"] for s in samples)
      result[f"valid/{problem}"] = float(len(votes))
      result[f"cons_count/{problem}"] = float(ranked[0][1] if ranked else 0)
      for k in self.pass_k:
        maj[k] += float(gold in [answer for answer, _ in ranked[:k]])
        if len(samples) >= k:
          fail = 1.0
          for j in range(k):
            fail *= (len(samples) - correct - j) / (len(samples) - j)
          passed[k] += 1.0 - fail
    result["samples"] = float(n)
    result |= {f"maj_pass@{k}": v / len(problems) for k, v in maj.items()}
    result |= {f"pass@{k}": v / len(problems) for k, v in passed.items() if k <= n}
    return result


# ---- multiple choice: one generated token -------------------------------------------------


def _choice_block(question: str, choices: list[str]) -> str:
  """The authors' _format_mcq: the stripped question, "X. choice" lines, "Answer:"."""
  options = "".join(f"{LETTERS[i]}. {text.strip()}\n" for i, text in enumerate(choices))
  return f"{question.strip()}\n{options}Answer:"


def _index(row: Row, name: str, value: Any, offset: int = 0) -> int:
  """An answer index given as an int or a digit string (minus `offset`)."""
  if isinstance(value, str) and value.strip().isdigit():
    value = int(value)
  if not isinstance(value, int) or isinstance(value, bool):
    raise ValueError(f"{row.where}: field {name!r} must be an index, got {value!r}")
  return value - offset


class MultipleChoice(Benchmark):
  """The authors' StandardMCQBenchmark: one generated token; strip().upper() must be one of
  the letters. accuracy is strict; accuracy_1n gives an invalid answer 1/n (their acc)."""
  tags, max_context, max_new_tokens = ("direct",), 4096, 1
  id_fields: tuple[str, ...] = ()

  def question(self, row: Row) -> tuple[str, list[str], int]:
    """(question, choices, index of the right choice) of a record."""
    raise NotImplementedError

  def parse(self, row: Row) -> Example:
    question, choices, answer = self.question(row)
    if not 2 <= len(choices) <= len(LETTERS) or not 0 <= answer < len(choices):
      raise ValueError(f"{row.where}: the answer must index one of the {len(choices)} "
                       f"choices, got {answer}")
    letter = LETTERS[answer]
    return Example(_position_id(row, *self.id_fields), _choice_block(question, choices),
                   letter, letter, self.group(row), len(choices))

  def group(self, row: Row) -> str:
    del row
    return ""

  def score(self, item: Item, output: str) -> dict[str, float]:
    letter = output.strip().upper()
    valid = letter in set(LETTERS[:item.num_choices])  # a set: "" and "AB" are no letters
    correct = float(letter == item.gold)
    return {"accuracy": correct, "accuracy_1n": correct if valid else 1.0 / item.num_choices,
            "valid": float(valid)}


class MMLU(MultipleChoice):
  name, default_shots, shots_split, headline_average = "mmlu", 5, "dev", "macro"
  # The authors' special_shots: this subject's prompts are too long for 5.
  shots_by_subject = {"high_school_european_history": 3}

  def protocol(self) -> str:
    return super().protocol().replace(
        "from dev", "from dev, same subject (high_school_european_history: 3)")

  def question(self, row: Row) -> tuple[str, list[str], int]:
    choices = row.string_list(row.field("choices", (list, tuple)), "choices")
    answer = row.field("answer", (int, str))
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
      answer = LETTERS.find(answer.strip().upper())  # some exports carry the letter
    return row.field("question"), choices, _index(row, "answer", answer)

  def group(self, row: Row) -> str:
    return row.field("subject")

  def read_shots(self, shots_path: str, shots: int) -> list[Example]:
    return [self.parse(row) for row in read_rows(shots_path)]  # chosen per subject

  def pick_shots(self, record: Example, examples: list[Example], shots: int,
                 shots_path: str | None) -> list[Example]:
    """The first dev examples of the item's own subject (5; 3 for the subjects in
    shots_by_subject, never more than `shots`)."""
    k = min(shots, self.shots_by_subject.get(record.group, shots))
    same = [ex for ex in examples if ex.group == record.group]
    if len(same) < k:
      raise ValueError(f"{shots_path} holds {len(same)} examples of subject "
                       f"{record.group!r}; {self.name} needs {k} for {k}-shot prompts")
    return same[:k]


class ARCChallenge(MultipleChoice):
  name, default_shots, shots_split, id_fields = "arc_challenge", 25, "validation", ("id",)

  def question(self, row: Row) -> tuple[str, list[str], int]:
    choices = row.field("choices", dict)
    texts = row.string_list(choices.get("text"), "choices.text")
    labels = row.string_list(choices.get("label"), "choices.label")
    key = str(row.field("answerKey", (str, int))).strip()
    if len(texts) != len(labels) or key not in labels:
      raise ValueError(f"{row.where}: answerKey {key!r} is not one of the labels {labels} "
                       f"(or choices.text and choices.label differ in length)")
    return row.field("question"), texts, labels.index(key)  # by position: "1".."4" are A..D


class HellaSwag(MultipleChoice):
  name, default_shots, shots_split, id_fields = "hellaswag", 10, "train", ("ind",)

  def question(self, row: Row) -> tuple[str, list[str], int]:
    # str.capitalize() also lowercases the rest of ctx_b, as the authors' prompt does.
    context = (f"{row.field('ctx_a')} {row.field('ctx_b', empty_ok=True).capitalize()}\n"
               "Question: Which is the most logical continuation?")
    endings = row.string_list(row.field("endings", (list, tuple)), "endings")
    return context, endings, _index(row, "label", row.field("label", (int, str)))


class Winogrande(MultipleChoice):
  name, default_shots, shots_split = "winogrande", 5, "train"

  def question(self, row: Row) -> tuple[str, list[str], int]:
    options = [row.field("option1"), row.field("option2")]
    return row.field("sentence"), options, _index(row, "answer",
                                                  row.field("answer", (int, str)), offset=1)


class BoolQ(MultipleChoice):
  name, default_shots, shots_split = "boolq", 5, "train"

  def question(self, row: Row) -> tuple[str, list[str], int]:
    answer = row.data.get("answer")
    if not isinstance(answer, bool):
      raise ValueError(f"{row.where}: field 'answer' must be true or false, got {answer!r}")
    text = f"{row.field('passage')}\nQuestion: {row.field('question').capitalize()}?"
    return text, ["Yes", "No"], 0 if answer else 1


# ---- DROP ---------------------------------------------------------------------------------

_DROP_SHOTS = (  # the authors' DROP.EXAMPLES, verbatim
    ("To start the season, the Lions traveled south to Tampa, Florida to take on the Tampa "
     "Bay Buccaneers. The Lions scored first in the first quarter with a 23-yard field goal "
     "by Jason Hanson. The Buccaneers tied it up with a 38-yard field goal by Connor Barth, "
     "then took the lead when Aqib Talib intercepted a pass from Matthew Stafford and ran "
     "it in 28 yards. The Lions responded with a 28-yard field goal. In the second quarter, "
     "Detroit took the lead with a 36-yard touchdown catch by Calvin Johnson, and later "
     "added more points when Tony Scheffler caught an 11-yard TD pass. Tampa Bay responded "
     "with a 31-yard field goal just before halftime. The second half was relatively quiet, "
     "with each team only scoring one touchdown. First, Detroit's Calvin Johnson caught a "
     "1-yard pass in the third quarter. The game's final points came when Mike Williams of "
     "Tampa Bay caught a 5-yard pass. The Lions won their regular season opener for the "
     "first time since 2007\n"
     "Q: How many points did the buccaneers need to tie in the first?\n"
     "A: 3"),
    ("Trying to snap a two-game skid, the Bills flew to Gillette Stadium for a Week 3 "
     "divisional fight with the New England Patriots. In the first quarter, QB J. P. Losman "
     "was immediately injured on the first offensive play of the game. He would finish the "
     "series, but ended up on the bench for the rest of the game. After New England took "
     "the lead with kicker Stephen Gostkowski's 24-yard field goal, rookie QB Trent Edwards "
     "played the rest of the game for Buffalo. The Bills would get their only score of the "
     "game as RB Marshawn Lynch got an 8-yard TD run, and a Rian Lindell extra point put "
     "the Bills ahead surprisingly 7-3. However, in the second quarter, the Patriots were "
     "able to open up their running game when Bills rookie standout Paul Posluszny was lost "
     "due to a broken arm. This left passing lanes open, and for the rest of the game, the "
     "Patriots dominated. QB Tom Brady's 8-yard TD pass to TE Benjamin Watson and a 3-yard "
     "TD pass to WR Randy Moss made it 17-7 at the half. In the third quarter, New England "
     "continued its conquest with Brady's 4-yard TD pass to WR Jabar Gaffney and RB Sammy "
     "Morris' 4-yard TD run. In the fourth quarter, the Patriots ended the day with Brady "
     "and Moss hooking up with each other again on a 45-yard TD pass.\n"
     "Q: How many games had the Bills won before this game?\n"
     "A: 0"),
    ("The French king, John II, had been held captive in England. The Treaty of Brétigny "
     "set his ransom at 3 million crowns and allowed for hostages to be held in lieu of "
     "John. The hostages included two of his sons, several princes and nobles, four "
     "inhabitants of Paris, and two citizens from each of the nineteen principal towns of "
     "France. While these hostages were held, John returned to France to try and raise "
     "funds to pay the ransom. In 1362 John's son Louis of Anjou, a hostage in English-held "
     "Calais, escaped captivity. So, with his stand-in hostage gone, John felt honor-bound "
     "to return to captivity in England. The French crown had been at odds with Navarre "
     "since 1354, and in 1363 the Navarrese used the captivity of John II in London and the "
     "political weakness of the Dauphin to try to seize power. Although there was no formal "
     "treaty, Edward III supported the Navarrese moves, particularly as there was a "
     "prospect that he might gain control over the northern and western provinces as a "
     "consequence. With this in mind, Edward deliberately slowed the peace negotiations. In "
     "1364, John II died in London, while still in honourable captivity. Charles V "
     "succeeded him as king of France. On 7 May 1364, one month after the dauphin's "
     "accession and three days before his coronation as Charles V, the Navarrese suffered a "
     "crushing defeat at the Battle of Cocherel.\n"
     "Q: How many years before Navarrase used the captivity of John II?\n"
     "A: 9"),
)


def _drop_answer(row: Row, answer: Any, name: str) -> list[str]:
  """lm-eval's parse_answer: the number if there is one, else the spans, else the date."""
  if not isinstance(answer, dict):
    raise ValueError(f"{row.where}: field {name!r} must be an object with number, spans, date")
  number, spans, date = answer.get("number", ""), answer.get("spans", []), answer.get("date")
  if number not in ("", None):
    return [str(number)]
  if spans:
    return row.string_list(spans, f"{name}.spans")
  date = date if isinstance(date, dict) else {}
  return [" ".join(str(date.get(part, "")) for part in ("day", "month", "year")).strip()]


def drop_golds(row: Row) -> list[list[str]]:
  """The gold answers of a DROP record, each a list of spans, as lm-eval's get_answers builds
  them from EleutherAI/drop (answer, then validated_answers; duplicates dropped). A record in
  the ucinlp/drop layout (answers_spans) gives one answer: its spans."""
  if "answer" in row.data:
    candidates = [_drop_answer(row, row.data["answer"], "answer")]
    validated = row.data.get("validated_answers") or {}
    if not isinstance(validated, dict):
      raise ValueError(f"{row.where}: field 'validated_answers' must be an object of lists")
    numbers = validated.get("number") or []
    for i in range(len(numbers)):
      try:
        candidate = {key: validated[key][i] for key in ("number", "date", "spans")}
      except (KeyError, IndexError, TypeError):
        raise ValueError(f"{row.where}: field 'validated_answers' needs number, date and "
                         "spans lists of one length") from None
      candidates.append(_drop_answer(row, candidate, "validated_answers"))
    golds = []
    for candidate in candidates:
      if candidate not in golds:
        golds.append(candidate)
    return golds
  answers = row.field("answers_spans", dict)
  spans = row.string_list(answers.get("spans"), "answers_spans.spans")
  if not any(span.strip() for span in spans):
    raise ValueError(f"{row.where}: field 'answers_spans' holds no answer span")
  return [spans]


class DROP(Benchmark):
  """The authors' prompt: their three hand-written examples, then "passage\\nQ: question\\nA:";
  the whole stripped output is the answer (no stop string), scored by lm-eval's DROP."""
  name, tags, default_shots, fixed_shots = "drop", ("direct",), 3, _DROP_SHOTS

  def parse(self, row: Row) -> Example:
    passage, question = row.field("passage"), row.field("question")
    return Example(_position_id(row, "query_id"), f"{passage}\nQ: {question}\nA:", "",
                   drop_golds(row))

  def score(self, item: Item, output: str) -> dict[str, float]:
    em, f1 = drop_em_f1(output.strip(), item.gold)
    return {"em": em, "f1": f1}


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (GSM8K(), MATH(), MMLU(), ARCChallenge(), HellaSwag(), Winogrande(),
                      BoolQ(), DROP(), AIME())}

__all__ = ["BENCHMARKS", "Benchmark", "Item", "Row", "drop_em_f1", "gsm8k_number",
           "math_verified", "read_rows", "reference_last_boxed"]
