"""Evaluation benchmarks: loading (prompts, shots, golds, formats, malformed files), answer
extraction, per-item scores and their averages, each as the paper authors' evaluation code
(github.com/sapientinc/HRM-Text, evaluation/) does it. Fixtures are invented records in the
public field layouts."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hrm_jax.eval import BENCHMARKS, Item
from hrm_jax.eval.answers import drop_em_f1, gsm8k_number, last_boxed, reference_last_boxed
from hrm_jax.eval.benchmarks import Row, drop_golds, math_verified

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "eval"


def _path(name: str) -> str:
  return str(FIXTURES / name)


def _records(name: str) -> list[dict]:
  return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def _write(tmp_path, name: str, lines: list[str]) -> str:
  path = tmp_path / name
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def test_registry_holds_the_authors_protocol():
  """Shots, their split, condition tags, context and new tokens, decoding: as in the
  authors' config/hrm_benchmarking.yaml, hrm_maj_vote_benchmarking.yaml and benchmarks.py."""
  protocol = {name: (b.default_shots, b.shots_split, ",".join(b.tags), b.max_context,
                     b.max_new_tokens, b.temperature, b.default_samples)
              for name, b in BENCHMARKS.items()}
  assert protocol == {
      "gsm8k": (0, "", "synth,cot", 3072, None, 0.0, 1),
      "math": (0, "", "synth,cot", 3072, None, 0.0, 1),
      "mmlu": (5, "dev", "direct", 4096, 1, 0.0, 1),
      "arc_challenge": (25, "validation", "direct", 4096, 1, 0.0, 1),
      "hellaswag": (10, "train", "direct", 4096, 1, 0.0, 1),
      "winogrande": (5, "train", "direct", 4096, 1, 0.0, 1),
      "boolq": (5, "train", "direct", 4096, 1, 0.0, 1),
      "drop": (3, "", "direct", 3072, None, 0.0, 1),
      "aime25": (0, "", "synth,cot", 4096, None, 0.6, 256)}
  assert BENCHMARKS["mmlu"].shots_by_subject == {"high_school_european_history": 3}
  assert BENCHMARKS["aime25"].pass_k == (1, 10, 100)


# ---- the last \boxed{} ------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("a \\boxed{1} b \\boxed{\\sqrt{\\frac{a}{b}}} c", "\\sqrt{\\frac{a}{b}}"),
    ("\\boxed{ 7 }", "7"), ("\\fbox{7}", "7"), ("\\fbox{7} \\boxed{8}", "8"),
    ("\\boxed{8} \\fbox{7}", "8"),  # \fbox only counts when there is no \boxed at all
    ("\\boxed{3} then a cut-off \\boxed{\\frac{1", None),  # the last one decides
    ("$\\boxed 5$", None), ("\\boxed{x \\} y}", "x \\"),  # no escapes
    ("no answer", None), ("", None)])
def test_reference_last_boxed_is_the_authors_rule(text, expected):
  assert reference_last_boxed(text) == expected


def test_the_demos_lenient_last_boxed_stays():
  assert last_boxed("\\boxed{3} then a cut-off \\boxed{\\frac{1") == "3"
  assert last_boxed("$\\boxed 5$") == "5"


# ---- GSM8K ------------------------------------------------------------------------------


def test_gsm8k_items_are_zero_shot_questions_with_integer_golds():
  items = BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"))
  first = _records("gsm8k.jsonl")[0]
  assert items[0] == Item(id="1", prompt=first["question"], tags=("synth", "cot"), gold=1234)
  assert [item.gold for item in items] == [1234, 72, 15]
  limited = BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"), limit=2)
  assert [item.id for item in limited] == ["1", "2"]


@pytest.mark.parametrize("output,number", [
    ("so the total is \\boxed{1,234}.", 1234), ("\\boxed{$72$}", 72), ("\\boxed{72.00}", 72),
    ("72", 72), ("  1,234\n", 1234),  # no \boxed: the whole output, if it is a number
    ("The answer is 72.", None),  # ... and only then
    ("\\boxed{72.9}", 72),  # int(float()) truncates
    ("\\boxed{\\$72}", None), ("\\boxed{seventy-two}", None), ("\\boxed{}", None),
    ("first \\boxed{70} then \\boxed{72}", 72), ("\\boxed{1e3}", 1000), ("\\boxed{inf}", None)])
def test_gsm8k_number_reads_as_the_authors_extract_answer(output, number):
  assert gsm8k_number(output) == number


def test_gsm8k_scores_accuracy_and_invalid():
  item = Item(id="x", prompt="", tags=("synth", "cot"), gold=72)
  score = BENCHMARKS["gsm8k"].score
  assert score(item, "\\boxed{72}") == {"accuracy": 1.0, "invalid": 0.0}
  assert score(item, "72") == {"accuracy": 1.0, "invalid": 0.0}  # no \boxed, a bare number
  assert score(item, "\\boxed{71}") == {"accuracy": 0.0, "invalid": 0.0}
  assert score(item, "It is 72 apples.") == {"accuracy": 0.0, "invalid": 1.0}
  assert score(item, "") == {"accuracy": 0.0, "invalid": 1.0}  # an over-long prompt's answer


# ---- MATH -------------------------------------------------------------------------------


def test_math_golds_are_the_last_boxed_of_the_solution_else_the_answer_field():
  items = BENCHMARKS["math"].load(_path("math.jsonl"))
  assert [item.gold for item in items] == ["\\frac{1}{2}", "2\\sqrt{2}", "(1,1)"]
  assert [item.group for item in items] == ["Prealgebra", "Algebra", "Algebra"]
  assert [item.id for item in items] == ["1", "2", "test/algebra/9001.json"]
  assert items[0].prompt == _records("math.jsonl")[0]["problem"]
  assert items[0].tags == ("synth", "cot")


def test_math_scores_with_math_verify_on_the_boxed_answer_else_the_whole_output():
  item = Item(id="x", prompt="", tags=("synth", "cot"), gold="\\frac{1}{2}")
  score = BENCHMARKS["math"].score
  assert score(item, "so it is $\\boxed{\\frac{1}{2}}$.") == {"accuracy": 1.0, "invalid": 0.0}
  assert score(item, "\\boxed{0.5}") == {"accuracy": 1.0, "invalid": 0.0}
  assert score(item, "\\boxed{\\frac{1}{3}}") == {"accuracy": 0.0, "invalid": 0.0}
  # No \boxed: invalid, yet math-verify still reads the whole output, as the authors do.
  assert score(item, "the answer is 1/2") == {"accuracy": 1.0, "invalid": 1.0}
  assert score(item, "") == {"accuracy": 0.0, "invalid": 1.0}


def test_math_verify_parses_bare_strings_as_the_authors_call_it():
  assert math_verified("\\frac{1}{2}", "0.5") and math_verified("10", "10\\text{ cm}")
  assert not math_verified("3", "4")
  # Their gold is the bare \boxed{} content, parsed without $...$: math-verify 0.9.0 reads
  # "\sqrt{8}" as nothing, so such golds can never be matched. Kept: it is their number.
  assert not math_verified("\\sqrt{8}", "\\sqrt{8}")


# ---- AIME: majority voting --------------------------------------------------------------


def test_aime_items_are_samples_per_problem_with_integer_golds():
  items = BENCHMARKS["aime25"].load(_path("aime.jsonl"), samples=3)
  assert [(i.id, i.group, i.gold) for i in items] == [
      ("A1#0", "A1", 1), ("A1#1", "A1", 1), ("A1#2", "A1", 1),
      ("A2#0", "A2", 12), ("A2#1", "A2", 12), ("A2#2", "A2", 12)]
  assert items[0].prompt == _records("aime.jsonl")[0]["problem"]
  assert items[0].tags == ("synth", "cot")
  assert len(BENCHMARKS["aime25"].load(_path("aime.jsonl"), limit=1)) == 256
  with pytest.raises(ValueError, match="gsm8k scores one answer per question"):
    BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"), samples=4)


def test_aime_scores_a_sample_and_its_vote():
  item = Item(id="A#0", prompt="", tags=("synth", "cot"), gold=70, group="A")
  score = BENCHMARKS["aime25"].score
  assert score(item, "so \\boxed{70}") == {"correct": 1.0, "vote": 70}
  assert score(item, "70") == {"correct": 1.0, "vote": 70}
  assert score(item, "\\boxed{1000}") == {"correct": 0.0, "vote": None}  # votes are 1..999
  assert score(item, "\\boxed{x}") == {"correct": 0.0, "vote": None}


def test_aime_aggregates_maj_pass_at_k_and_unbiased_pass_at_k():
  aime = BENCHMARKS["aime25"]
  items = [Item(f"{p}#{j}", "", ("synth", "cot"), gold, p) for p, gold in (("P", 5), ("Q", 7))
           for j in range(4)]
  outputs = ["\\boxed{3}", "\\boxed{5}", "\\boxed{3}", "no idea",  # P: 3 leads, 5 second
             "\\boxed{7}", "\\boxed{7}", "\\boxed{7}", "\\boxed{7}"]  # Q: all right
  scores = [aime.score(item, out) for item, out in zip(items, outputs)]
  result = aime.aggregate(items, scores)
  assert result["maj_pass@1"] == 0.5 and result["maj_pass@10"] == 1.0
  assert result["maj_pass@100"] == 1.0
  # P: 1 correct of 4 → pass@1 = 1/4; Q: 4 of 4 → 1. pass@10 and @100 need n >= k.
  assert result["pass@1"] == pytest.approx((0.25 + 1.0) / 2)
  assert "pass@10" not in result and result["samples"] == 4.0 and result["count"] == 2.0
  assert result["valid/P"] == 3.0 and result["cons_count/P"] == 2.0
  assert result["cons_count/Q"] == 4.0


def test_aime_unbiased_pass_at_k_matches_the_combinatorial_formula():
  aime, n, c, k = BENCHMARKS["aime25"], 12, 3, 10
  items = [Item(f"P#{j}", "", (), 5, "P") for j in range(n)]
  scores = [{"correct": float(j < c), "vote": None} for j in range(n)]
  from math import comb  # pylint: disable=import-outside-toplevel
  assert aime.aggregate(items, scores)["pass@10"] == pytest.approx(1 - comb(n - c, k) / comb(n, k))


# ---- multiple choice: one token ---------------------------------------------------------


def test_multiple_choice_reads_one_token_stripped_and_uppercased():
  item = Item(id="x", prompt="", tags=("direct",), gold="C", num_choices=4)
  score = BENCHMARKS["mmlu"].score
  assert score(item, "C") == {"accuracy": 1.0, "accuracy_1n": 1.0, "valid": 1.0}
  assert score(item, " c\n") == {"accuracy": 1.0, "accuracy_1n": 1.0, "valid": 1.0}
  assert score(item, "B") == {"accuracy": 0.0, "accuracy_1n": 0.0, "valid": 1.0}
  for invalid in ("(C)", "C.", "The answer is C", "E", "", "AB"):
    assert score(item, invalid) == {"accuracy": 0.0, "accuracy_1n": 0.25, "valid": 0.0}
  five = Item(id="y", prompt="", tags=("direct",), gold="E", num_choices=5)
  assert BENCHMARKS["arc_challenge"].score(five, "e")["accuracy"] == 1.0
  assert BENCHMARKS["arc_challenge"].score(five, "no")["accuracy_1n"] == pytest.approx(0.2)


def test_mmlu_prompt_holds_the_same_subjects_dev_examples_only():
  items = BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots_path=_path("mmlu_dev.jsonl"),
                                  shots=2)
  assert items[0].prompt == (
      "Which planet is closest to the Sun in the toy solar system Zeta?\n"
      "A. Zorb\nB. Mell\nC. Quin\nD. Taro\nAnswer: B\n\n"
      "Which color is the invented star Vela-9?\nA. Red\nB. Blue\nC. Green\nD. White\nAnswer: D\n\n"
      "How many moons does the fictional planet Orlo have?\n"
      "A. One\nB. Two\nC. Three\nD. Four\nAnswer:")
  chemistry = items[2].prompt.split("\n\n")
  assert chemistry[0].startswith("What does the made-up compound") and len(chemistry) == 3
  assert [(i.gold, i.group, i.num_choices, i.tags) for i in items] == [
      ("C", "astronomy", 4, ("direct",)), ("A", "astronomy", 4, ("direct",)),
      ("A", "high_school_chemistry", 4, ("direct",))]


def test_mmlu_european_history_gets_three_shots_and_a_short_subject_is_refused(tmp_path):
  dev = [{"question": f"Invented question {i}?", "subject": "high_school_european_history",
          "choices": ["w", "x", "y", "z"], "answer": i % 4} for i in range(5)]
  test = dev[0] | {"question": "Which invented treaty came first?"}
  items = BENCHMARKS["mmlu"].load(_write(tmp_path, "t.jsonl", [json.dumps(test)]),
                                  shots_path=_write(tmp_path, "d.jsonl", map(json.dumps, dev)))
  assert items[0].prompt.count("Answer:") == 4  # 3 shots + the question
  with pytest.raises(ValueError, match=r"mmlu_dev\.jsonl holds 2 examples of subject "
                                       r"'astronomy'; mmlu needs 5 for 5-shot prompts"):
    BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots_path=_path("mmlu_dev.jsonl"))


def test_mcq_format_strips_question_and_choices(tmp_path):
  record = {"question": "  Which invented gas glows?\n", "subject": "s",
            "choices": [" neon-x ", "argo-z"], "answer": "b"}
  item = BENCHMARKS["mmlu"].load(_write(tmp_path, "m.jsonl", [json.dumps(record)]), shots=0)[0]
  assert item.prompt == "Which invented gas glows?\nA. neon-x\nB. argo-z\nAnswer:"
  assert item.gold == "B"


def test_mmlu_answer_may_be_an_index_a_digit_string_or_a_letter(tmp_path):
  record = _records("mmlu_test.jsonl")[0]
  lines = [json.dumps(record | {"answer": answer}) for answer in (2, "2", "c")]
  items = BENCHMARKS["mmlu"].load(_write(tmp_path, "m.jsonl", lines), shots=0)
  assert [item.gold for item in items] == ["C", "C", "C"]


def test_k_shot_needs_a_shots_file_but_zero_shot_does_not():
  with pytest.raises(ValueError, match=r"mmlu needs --shots-path \(the dev split\) for 5-shot"):
    BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"))
  with pytest.raises(ValueError, match=r"holds 3 examples; arc_challenge needs 25"):
    BENCHMARKS["arc_challenge"].load(_path("arc_test.jsonl"),
                                     shots_path=_path("arc_validation.jsonl"))
  with pytest.raises(ValueError, match="gsm8k is evaluated 0-shot"):
    BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"), shots=2)
  item = BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots=0)[0]
  assert item.prompt.startswith("How many moons") and item.prompt.endswith("D. Four\nAnswer:")


def test_mmlu_averages_macro_over_subjects_and_micro_over_items():
  mmlu = BENCHMARKS["mmlu"]
  items = [Item(str(i), "", ("direct",), "A", "big", 4) for i in range(3)]
  items.append(Item("3", "", ("direct",), "A", "small", 4))
  scores = [mmlu.score(item, out) for item, out in zip(items, ["A", "A", "A", "?"])]
  result = mmlu.aggregate(items, scores)
  assert result["accuracy_micro"] == pytest.approx(3 / 4)
  assert result["accuracy_macro"] == pytest.approx((1 + 0) / 2)
  assert result["accuracy"] == result["accuracy_macro"]  # MMLU's headline is macro
  assert result["accuracy_1n_micro"] == pytest.approx(3.25 / 4)
  assert result["accuracy_1n_macro"] == pytest.approx((1 + 0.25) / 2)
  assert result["accuracy/small"] == 0.0 and result["count"] == 4
  with pytest.raises(ValueError, match="4 items but 3 scores"):
    mmlu.aggregate(items, scores[:3])


def test_ungrouped_benchmarks_report_plain_means():
  gsm8k = BENCHMARKS["gsm8k"]
  items = [Item(str(i), "", ("synth", "cot"), 1) for i in range(4)]
  scores = [gsm8k.score(item, f"\\boxed{{{out}}}") for item, out in zip(items, "1121")]
  assert gsm8k.aggregate(items, scores) == {"count": 4.0, "accuracy": 0.75, "invalid": 0.0}
  assert gsm8k.aggregate([], []) == {"count": 0.0}


def test_arc_shots_come_from_validation_and_digit_labels_become_letters():
  items = BENCHMARKS["arc_challenge"].load(_path("arc_test.jsonl"),
                                           shots_path=_path("arc_validation.jsonl"), shots=2)
  assert [(i.id, i.gold, i.num_choices) for i in items] == [
      ("Invented_Test_1", "C", 4), ("Invented_Test_2", "E", 5)]
  shots, _, query = items[0].prompt.rpartition("\n\n")
  assert query == ("Which body part helps a fish breathe?\n"
                   "A. fins\nB. scales\nC. gills\nD. tail\nAnswer:")
  assert shots.endswith("A. it freezes\nB. it grows\nC. it evaporates\nD. it glows\nAnswer: C")
  assert shots.startswith("Which tool best measures") and "candle flame" not in shots
  assert "E. copper\nAnswer:" in items[1].prompt


def test_hellaswag_prompt_capitalizes_ctx_b_and_asks_for_the_continuation():
  items = BENCHMARKS["hellaswag"].load(_path("hellaswag_validation.jsonl"),
                                       shots_path=_path("hellaswag_train.jsonl"), shots=2)
  (item,) = items
  shot1, shot2, query = item.prompt.split("\n\n")
  assert shot1.startswith("A woman stands at a counter with a bowl of dough. She\n")
  # str.capitalize(): "THEN the Referee" -> "Then the referee", as in the authors' prompt
  assert shot2 == ("Two players hit a glowing ball over a rope. Then the referee\n"
                   "Question: Which is the most logical continuation?\n"
                   "A. eats the rope.\nB. blows a whistle to end the point.\nC. flies away.\n"
                   "D. reads a novel.\nAnswer: B")
  assert query == ("A man fills a tub with warm water and lifts a dog into it. \n"
                   "Question: Which is the most logical continuation?\n"
                   "A. He scrubs the dog with soap.\nB. He plants a tree.\nC. He bakes bread.\n"
                   "D. He flies a kite.\nAnswer:")
  assert (item.id, item.gold, item.num_choices, item.tags) == ("24", "A", 4, ("direct",))


def test_winogrande_and_boolq_prompts():
  (wino,) = BENCHMARKS["winogrande"].load(_path("winogrande_validation.jsonl"),
                                          shots_path=_path("winogrande_train.jsonl"), shots=2)
  assert wino.prompt.endswith("\n\nThe invented glass broke the invented stone because the _ "
                              "was harder.\nA. glass\nB. stone\nAnswer:")
  assert "Mia lent Zoe a pen because _ had forgotten hers.\nA. Mia\nB. Zoe\nAnswer: B" in \
      wino.prompt
  assert (wino.gold, wino.num_choices) == ("A", 2)
  (boolq,) = BENCHMARKS["boolq"].load(_path("boolq_validation.jsonl"),
                                      shots_path=_path("boolq_train.jsonl"), shots=2)
  assert boolq.prompt == (
      "The Vell is an invented river of 140 km.\n"
      "Question: Is the invented river vell longer than 100 km?\nA. Yes\nB. No\nAnswer: A\n\n"
      "Orra is a fictional flat island without mountains.\n"
      "Question: Does the fictional island orra have a volcano?\nA. Yes\nB. No\nAnswer: B\n\n"
      "The Tiko is a made-up flightless bird.\n"
      "Question: Can the made-up bird tiko fly?\nA. Yes\nB. No\nAnswer:")
  assert (boolq.gold, boolq.num_choices) == ("B", 2)


# ---- DROP -------------------------------------------------------------------------------


def test_drop_shots_are_the_authors_three_examples_verbatim():
  """sha256 of the three EXAMPLES of the authors' evaluation/benchmarks.py (commit da566c9),
  joined by blank lines."""
  shots = BENCHMARKS["drop"].fixed_shots
  assert len(shots) == 3
  assert hashlib.sha256("\n\n".join(shots).encode()).hexdigest() == \
      "80cdec2babe20c15d5cc2b3d2629be5db4ea1bf900f0ab22241e40a3a8a1f32d"
  assert shots[0].endswith("\nQ: How many points did the buccaneers need to tie in the first?"
                           "\nA: 3")


def test_drop_prompt_is_fixed_shots_then_passage_q_a():
  items = BENCHMARKS["drop"].load(_path("drop_validation.jsonl"))
  blocks = items[1].prompt.split("\n\n")
  assert blocks[:3] == list(BENCHMARKS["drop"].fixed_shots)
  assert blocks[3] == ("The Owls opened with a 12-yard touchdown run by Tam Brooks, then added "
                       "a field goal by Lee Park.\nQ: Who scored for the Owls?\nA:")
  # Only the whole prompt is stripped (the authors' engine), not the passage inside it.
  assert items[2].prompt.endswith("\n\n  The invented fort of Kell fell on 3 May 1410. \n"
                                  "Q: When did Kell fall?\nA:")
  assert BENCHMARKS["drop"].load(_path("drop_validation.jsonl"), shots=0)[0].prompt == (
      "In 1900 the village of Pell had 1,250 residents; by 1950 it had 2,000.\n"
      "Q: How many residents did Pell have in 1950?\nA:")
  with pytest.raises(ValueError, match="drop has 3 fixed examples; got shots=4"):
    BENCHMARKS["drop"].load(_path("drop_validation.jsonl"), shots=4)
  with pytest.raises(ValueError, match="takes no shots file"):
    BENCHMARKS["drop"].load(_path("drop_validation.jsonl"), shots_path=_path("gsm8k.jsonl"))


def test_drop_golds_are_lm_evals_answers():
  items = BENCHMARKS["drop"].load(_path("drop_validation.jsonl"))
  assert [(i.id, i.gold) for i in items] == [
      ("q-val-1", [["2000"], ["2,000"]]),  # answer, then validated answers, duplicates dropped
      ("q-val-2", [["Tam Brooks", "Lee Park"], ["Tam Brooks"]]),  # a multi-span answer
      ("q-val-3", [["3 May 1410"]])]  # a date: day month year
  ucinlp = Row("x.jsonl", 1, {"answers_spans": {"spans": ["Tam Brooks", "Lee Park"],
                                                "types": ["span", "span"]}})
  assert drop_golds(ucinlp) == [["Tam Brooks", "Lee Park"]]  # one answer of two spans


@pytest.mark.parametrize("prediction,golds,em,f1", [
    ("1000", [["1,000"]], 1.0, 1.0), ("1000.0", [["1,000"]], 1.0, 1.0),
    ("The Tam Brooks.", [["Tam Brooks"]], 1.0, 1.0),
    ("Tam", [["Tam Brooks"]], 0.0, 0.67),  # F1 rounded to 2 decimals
    ("Tam Brooks ran", [["Tam Brooks"]], 0.0, 0.8),
    ("New York New York", [["New York"]], 0.0, 1.0),  # token sets, not multisets
    ("15 yards", [["12 yards"]], 0.0, 0.0),  # a wrong number earns no token credit
    ("12 yard", [["12 yards"]], 0.0, 0.5),
    ("Tam Brooks and Lee Park", [["Tam Brooks", "Lee Park"]], 0.0, 0.29),  # spans aligned
    ("Mira", [["Sol"], ["Mira"]], 1.0, 1.0), ("", [["Sol"]], 0.0, 0.0),
    ("Sol", [[""], ["Sol"]], 1.0, 1.0), ("", [[" "]], 0.0, 0.0)])  # blank golds are skipped
def test_drop_em_f1_as_lm_eval(prediction, golds, em, f1):
  assert drop_em_f1(prediction, golds) == pytest.approx((em, f1))


def test_drop_scores_the_whole_stripped_output():
  item = Item(id="q", prompt="", tags=("direct",), gold=[["2000"], ["2,000"]])
  assert BENCHMARKS["drop"].score(item, " 2000 \n") == {"em": 1.0, "f1": 1.0}
  # No first-line cut: the authors score everything generated (lm-eval splits tokens at
  # spaces and hyphens only, so "2000\nQ:" is one token, and no number matches).
  assert BENCHMARKS["drop"].score(item, "2000\nQ: next?") == {"em": 0.0, "f1": 0.0}
  assert BENCHMARKS["drop"].score(item, "2000 or so") == {"em": 0.0, "f1": 0.5}


# ---- file formats and malformed files ---------------------------------------------------


def test_json_and_parquet_load_like_jsonl(tmp_path):
  records = _records("arc_test.jsonl")
  (tmp_path / "arc.json").write_text(json.dumps(records))
  pq.write_table(pa.Table.from_pylist(records), tmp_path / "arc.parquet")
  arc = BENCHMARKS["arc_challenge"]
  expected = arc.load(_path("arc_test.jsonl"), shots=0)
  assert arc.load(str(tmp_path / "arc.json"), shots=0) == expected
  assert arc.load(str(tmp_path / "arc.parquet"), shots=0) == expected


GOOD_MMLU = json.dumps(_records("mmlu_test.jsonl")[0])


@pytest.mark.parametrize("bad_line,reason", [
    ('{"question": "q", "subject": "s", "choices": ["a", "b"]}', "missing field 'answer'"),
    ('{"question": "q", "subject": "s", "choices": ["a", "b"], "answer": 2}',
     "must index one of the 2 choices"),
    ('{"question": "q", "subject": "s", "choices": "ab", "answer": 0}', "'choices' is str"),
    ('{"question": "q", "subject": "s", "choices": ["a", 1], "answer": 0}', "list of strings"),
    ('{"question": "", "subject": "s", "choices": ["a", "b"], "answer": 0}', "'question' is empty"),
    ('{"question": "q", "subject": ', "invalid JSON"), ('["a list"]', "expected a JSON object")])
def test_malformed_record_names_file_line_and_problem(tmp_path, bad_line, reason):
  path = _write(tmp_path, "mmlu.jsonl", [GOOD_MMLU, "", bad_line])
  with pytest.raises(ValueError, match=rf"mmlu\.jsonl, line 3: .*{reason}"):
    BENCHMARKS["mmlu"].load(path, shots=0)


@pytest.mark.parametrize("name,record,reason", [
    ("gsm8k", {"question": "q", "answer": "it is 4"}, "field 'answer' has no '####"),
    ("gsm8k", {"question": "q", "answer": "#### 1.5"}, "not an integer: '1.5'"),
    ("math", {"problem": "p", "solution": "It is 4."}, "no \\\\boxed"),
    ("aime25", {"problem": "p", "answer": "x"}, "not an integer: 'x'"),
    ("hellaswag", {"ctx_a": "a", "ctx_b": "b", "endings": ["x", "y"], "label": ""},
     "'label' is empty"),
    ("winogrande", {"sentence": "s _", "option1": "a", "option2": "b", "answer": "3"},
     "must index one of the 2 choices"),
    ("boolq", {"passage": "p", "question": "q", "answer": "False"}, "must be true or false"),
    ("drop", {"passage": "p", "question": "q", "answers_spans": {"spans": [], "types": []}},
     "no answer span"),
    ("drop", {"passage": "p", "question": "q", "answer": {"number": "", "spans": [],
                                                         "date": {}},
              "validated_answers": {"number": ["1"]}}, "validated_answers' needs number")])
def test_malformed_golds_are_refused_with_file_and_line(tmp_path, name, record, reason):
  path = _write(tmp_path, "b.jsonl", ["", json.dumps(record)])
  kwargs = {"samples": 1} if name == "aime25" else {"shots": 0}
  with pytest.raises(ValueError, match=rf"b\.jsonl, line 2: .*{reason}"):
    BENCHMARKS[name].load(path, **kwargs)


def test_malformed_files_are_refused(tmp_path):
  arc = _records("arc_test.jsonl")[0] | {"answerKey": "5"}
  with pytest.raises(ValueError, match=r"a\.jsonl, line 1: answerKey '5' is not one of"):
    BENCHMARKS["arc_challenge"].load(_write(tmp_path, "a.jsonl", [json.dumps(arc)]), shots=0)
  drop = _records("drop_validation.jsonl")[0] | {"answer": "2000"}
  with pytest.raises(ValueError, match=r"d\.json, record 1: field 'answer' must be an object"):
    BENCHMARKS["drop"].load(_write(tmp_path, "d.json", [json.dumps([drop])]), shots=0)
  with pytest.raises(ValueError, match="expected a JSON list"):
    BENCHMARKS["drop"].load(_write(tmp_path, "x.json", ["{}"]), shots=0)
  with pytest.raises(ValueError, match="unknown file type"):
    BENCHMARKS["gsm8k"].load(_write(tmp_path, "x.csv", ["question,answer"]))
  twice = _write(tmp_path, "t.jsonl", [json.dumps(_records("arc_test.jsonl")[0])] * 2)
  with pytest.raises(ValueError, match=r"t\.jsonl, line 2: id 'Invented_Test_1' repeats"):
    BENCHMARKS["arc_challenge"].load(twice, shots=0)
