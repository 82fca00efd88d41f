"""Evaluation benchmarks: loading (prompts, shots, golds, formats, malformed files), answer
extraction and equivalence, per-item scores and their averages. Fixtures are invented records
in the public field layouts."""

from __future__ import annotations

import json
import pathlib
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hrm_jax.eval import BENCHMARKS, Item
from hrm_jax.eval.answers import (drop_em_f1, last_boxed, math_equivalent, normalize_number,
                                  parse_letter)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "eval"


def _path(name: str) -> str:
  return str(FIXTURES / name)


def _records(name: str) -> list[dict]:
  return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def _write(tmp_path, name: str, lines: list[str]) -> str:
  path = tmp_path / name
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def test_registry_matches_the_protocol():
  assert sorted(BENCHMARKS) == ["arc_challenge", "drop", "gsm8k", "math", "mmlu"]
  assert {n: b.default_shots for n, b in BENCHMARKS.items()} == {
      "gsm8k": 0, "math": 0, "mmlu": 5, "arc_challenge": 25, "drop": 3}
  assert BENCHMARKS["gsm8k"].max_new_tokens >= 256 and BENCHMARKS["mmlu"].max_new_tokens <= 16


# ---- GSM8K ----------------------------------------------------------------------------


def test_gsm8k_items_are_zero_shot_questions_with_number_golds():
  items = BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"))
  first = _records("gsm8k.jsonl")[0]
  assert items[0] == Item(id="1", prompt=first["question"], tags=("synth", "cot"), gold="1234")
  assert [item.gold for item in items] == ["1234", "72", "1.5"]
  limited = BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"), limit=2)
  assert [item.id for item in limited] == ["1", "2"]


@pytest.mark.parametrize("output,gold,correct", [
    ("so the total is \\boxed{1,234}.", "1234", 1.0),
    ("\\boxed{\\$72}", "72", 1.0),
    ("\\boxed{$72.00$}", "72", 1.0),
    ("first \\boxed{70} then, correcting, \\boxed{72.0}", "72", 1.0),
    ("\\boxed{72} was a guess; it is \\boxed{71}", "72", 0.0),
    ("\\boxed{1.50}", "1.5", 1.0),
    ("The answer is 72.", "72", 0.0),  # no \boxed: not read
    ("\\boxed{seventy-two}", "72", 0.0),
])
def test_gsm8k_scores_the_last_boxed_number(output, gold, correct):
  item = Item(id="x", prompt="", tags=("synth", "cot"), gold=gold)
  assert BENCHMARKS["gsm8k"].score(item, output) == {"accuracy": correct}


@pytest.mark.parametrize("text,expected", [
    ("$1,234", "1234"), ("72.0", "72"), ("72.00", "72"), (" 1,000. ", "1000"), ("-0", "0"),
    ("0.50", "0.5"), ("12,34", None), ("1e5", None), ("", None), (None, None)])
def test_normalize_number(text, expected):
  assert normalize_number(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("a \\boxed{1} b \\boxed{\\sqrt{\\frac{a}{b}}} c", "\\sqrt{\\frac{a}{b}}"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces are content
    ("\\boxed{\\{} \\boxed{x \\} y}", "x \\} y"),  # even unbalanced ones
    ("\\boxed{3} then a cut-off \\boxed{\\frac{1", "3"),
    ("\\fbox{7}", "7"), ("$\\boxed 5$", "5"), ("no answer", None), ("", None)])
def test_last_boxed(text, expected):
  assert last_boxed(text) == expected


# ---- MATH -----------------------------------------------------------------------------


def test_math_golds_come_from_the_answer_field_or_the_last_boxed_of_the_solution():
  items = BENCHMARKS["math"].load(_path("math.jsonl"))
  assert [item.gold for item in items] == ["\\frac{1}{2}", "2\\sqrt{2}", "(1,1)"]
  assert [item.group for item in items] == ["Prealgebra", "Algebra", "Algebra"]
  assert [item.id for item in items] == ["1", "2", "test/algebra/9001.json"]
  assert items[0].prompt == _records("math.jsonl")[0]["problem"]
  assert items[0].tags == ("synth", "cot")


@pytest.mark.parametrize("predicted,gold", [
    ("\\dfrac{1}{2}", "0.5"), ("\\frac12", "\\frac{1}{2}"), ("\\sqrt{8}", "2\\sqrt{2}"),
    ("\\sqrt[3]{8}", "2"), ("10\\text{ cm}", "10"), ("\\text{Monday}", "Monday"),
    ("90^\\circ", "90"), ("x = 5", "5"), ("\\$1,000", "1000"),
    ("\\left( 3, \\pi \\right)", "(3,\\pi)"), ("\\frac{x^2-1}{x-1}", "x+1"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"), ("x^{-1}", "\\frac{1}{x}"),
    ("(1, 2\\sqrt{2})", "(1,\\sqrt{8})"), ("(x+1)^2", "x^2+2x+1"), ("2\\pi r", "2r\\pi"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"), ("2^{10}", "1024"), ("4.", "4")])
def test_math_equivalent_answers(predicted, gold):
  assert math_equivalent(predicted, gold)


@pytest.mark.parametrize("predicted,gold", [
    ("0.333", "\\frac{1}{3}"), ("(1,2]", "(1,2)"), ("(1,2)", "(2,1)"), ("3", "4"),
    ("east", "seat"),  # words are not products of single-letter variables
    ("\\sqrt{x^2}", "x"), ("a+b+c+d", "a+b+c+e"), ("3.14159", "\\pi"),
    ("2^10", "1024"),  # LaTeX reads 2^10 as 2^1 followed by 0
    ("\\sqrt{8}", None), (None, "1"), ("", "0")])
def test_math_different_answers(predicted, gold):
  assert not math_equivalent(predicted, gold)


def test_math_equivalence_cannot_hang_or_raise_on_hostile_input():
  start = time.perf_counter()
  for predicted in ("9^{9^{9}}", "10^{100000}", "\\frac{1}{0}", "((((", "\\sqrt[", "x" * 5000,
                    "\\frac{" * 200, "1" * 400, "\\unknown{3}", "(x+y+z)^{100}",
                    "\\frac{(x+y+z)^{50}}{(x-y)^{50}}"):  # sympy.simplify: minutes on these
    assert not math_equivalent(predicted, "1")
  assert math_equivalent("(x+y+z)^{100}", "(z+y+x)^{100}")
  assert time.perf_counter() - start < 5


def test_math_scores_the_last_boxed_answer():
  item = Item(id="x", prompt="", tags=("synth", "cot"), gold="\\frac{1}{2}")
  score = BENCHMARKS["math"].score
  assert score(item, "so it is $\\boxed{\\dfrac{1}{2}}$.") == {"accuracy": 1.0}
  assert score(item, "\\boxed{0.5}") == {"accuracy": 1.0}
  assert score(item, "\\boxed{\\frac{1}{3}}") == {"accuracy": 0.0}
  assert score(item, "the answer is 1/2") == {"accuracy": 0.0}


# ---- multiple choice: MMLU and ARC ----------------------------------------------------


@pytest.mark.parametrize("text,letter", [
    ("B", "B"), (" (C)", "C"), ("The answer is D.", "D"), ("Answer: c", "C"), ("(b)", "B"),
    ("I think B", "B"), ("A. Zorb", "A"), ("Banana", None), ("E", None), ("a banana", None),
    ("", None), ("Dd", None)])
def test_parse_letter(text, letter):
  assert parse_letter(text, 4) == letter


def test_parse_letter_range_follows_the_number_of_choices():
  assert parse_letter("E", 5) == "E" and parse_letter("E", 4) is None


def test_mmlu_prompt_holds_same_subject_shots_first_then_others():
  items = BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots_path=_path("mmlu_dev.jsonl"),
                                  shots=3)
  assert items[0].prompt == (
      "Which planet is closest to the Sun in the toy solar system Zeta?\n"
      "A. Zorb\nB. Mell\nC. Quin\nD. Taro\nAnswer: B\n\n"
      "Which color is the invented star Vela-9?\nA. Red\nB. Blue\nC. Green\nD. White\nAnswer: D\n\n"
      "What does the made-up compound Xq2 contain?\n"
      "A. Xenon\nB. Quartz\nC. Both\nD. Neither\nAnswer: C\n\n"
      "How many moons does the fictional planet Orlo have?\n"
      "A. One\nB. Two\nC. Three\nD. Four\nAnswer:")
  chemistry = items[2].prompt.split("\n\n")
  assert chemistry[0].startswith("What does the made-up compound") and len(chemistry) == 4
  assert [(i.gold, i.group, i.num_choices, i.tags) for i in items] == [
      ("C", "astronomy", 4, ("direct",)), ("A", "astronomy", 4, ("direct",)),
      ("A", "high_school_chemistry", 4, ("direct",))]


def test_mmlu_answer_may_be_an_index_a_digit_string_or_a_letter(tmp_path):
  record = _records("mmlu_test.jsonl")[0]
  lines = [json.dumps(record | {"answer": answer}) for answer in (2, "2", "c")]
  items = BENCHMARKS["mmlu"].load(_write(tmp_path, "m.jsonl", lines), shots=0)
  assert [item.gold for item in items] == ["C", "C", "C"]


def test_k_shot_needs_a_shots_file_but_zero_shot_does_not():
  with pytest.raises(ValueError, match=r"mmlu needs --shots-path \(the dev split\) for 5-shot"):
    BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"))
  with pytest.raises(ValueError, match="holds 4 examples; mmlu needs 5"):
    BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots_path=_path("mmlu_dev.jsonl"))
  with pytest.raises(ValueError, match="gsm8k is evaluated 0-shot"):
    BENCHMARKS["gsm8k"].load(_path("gsm8k.jsonl"), shots=2)
  item = BENCHMARKS["mmlu"].load(_path("mmlu_test.jsonl"), shots=0)[0]
  assert item.prompt.startswith("How many moons") and item.prompt.endswith("D. Four\nAnswer:")


def test_multiple_choice_scores_give_invalid_outputs_one_nth_credit():
  item = Item(id="x", prompt="", tags=("direct",), gold="C", num_choices=4)
  score = BENCHMARKS["mmlu"].score
  assert score(item, "C") == {"accuracy": 1.0, "accuracy_1n": 1.0, "valid": 1.0}
  assert score(item, "B") == {"accuracy": 0.0, "accuracy_1n": 0.0, "valid": 1.0}
  assert score(item, "Banana") == {"accuracy": 0.0, "accuracy_1n": 0.25, "valid": 0.0}
  five = Item(id="y", prompt="", tags=("direct",), gold="A", num_choices=5)
  assert BENCHMARKS["arc_challenge"].score(five, "no idea")["accuracy_1n"] == pytest.approx(0.2)


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
  items = [Item(str(i), "", ("synth", "cot"), "1") for i in range(4)]
  scores = [gsm8k.score(item, f"\\boxed{{{out}}}") for item, out in zip(items, "1121")]
  assert gsm8k.aggregate(items, scores) == {"count": 4.0, "accuracy": 0.75}
  assert gsm8k.aggregate([], []) == {"count": 0.0}


def test_arc_maps_digit_labels_to_letters():
  items = BENCHMARKS["arc_challenge"].load(_path("arc_test.jsonl"),
                                           shots_path=_path("arc_train.jsonl"), shots=2)
  assert [(i.id, i.gold, i.num_choices) for i in items] == [
      ("Invented_Test_1", "C", 4), ("Invented_Test_2", "E", 5)]
  shots, _, query = items[0].prompt.rpartition("\n\n")
  assert query == ("Which body part helps a fish breathe?\n"
                   "A. fins\nB. scales\nC. gills\nD. tail\nAnswer:")
  assert shots.endswith("A. it freezes\nB. it grows\nC. it evaporates\nD. it glows\nAnswer: C")
  assert shots.startswith("Which tool best measures") and "candle flame" not in shots
  assert "E. copper\nAnswer:" in items[1].prompt
  assert BENCHMARKS["arc_challenge"].score(items[0], "(C)")["accuracy"] == 1.0
  assert BENCHMARKS["arc_challenge"].score(items[0], "3")["valid"] == 0.0  # digits are not read


# ---- DROP -----------------------------------------------------------------------------


def test_drop_prompt_has_passage_question_answer_shots():
  items = BENCHMARKS["drop"].load(_path("drop_test.jsonl"), shots_path=_path("drop_train.jsonl"))
  assert [(i.id, i.gold) for i in items] == [("q-test-1", ["2,000", "2000"]),
                                             ("q-test-2", ["Tam Brooks"])]
  blocks = items[1].prompt.split("\n\n")
  assert len(blocks) == 4 and blocks[2].endswith("Question: Who kicked the field goal?\n"
                                                 "Answer: Mira Sol")
  assert blocks[0].startswith("Passage: The town of Ardel") and blocks[0].endswith("Answer: 5")
  assert blocks[3] == ("Passage: The Owls opened with a 12-yard touchdown run by Tam Brooks, then "
                       "added a field goal.\nQuestion: Who scored the opening touchdown?\nAnswer:")


@pytest.mark.parametrize("prediction,golds,em,f1", [
    ("1000", ["1,000"], 1.0, 1.0), ("1000.0", ["1,000"], 1.0, 1.0),
    ("The Tam Brooks.", ["Tam Brooks"], 1.0, 1.0),
    ("Tam", ["Tam Brooks"], 0.0, 2 / 3),
    ("Tam Brooks ran", ["Tam Brooks"], 0.0, 0.8),
    ("15 yards", ["12 yards"], 0.0, 0.0),  # a wrong number earns no token credit
    ("12 yard", ["12 yards"], 0.0, 0.5),
    ("Mira", ["Sol", "Mira"], 1.0, 1.0), ("", ["Sol"], 0.0, 0.0)])
def test_drop_em_f1(prediction, golds, em, f1):
  assert drop_em_f1(prediction, golds) == pytest.approx((em, f1))


def test_drop_scores_the_first_line_of_the_output():
  item = Item(id="q", prompt="", tags=("direct",), gold=["2,000", "2000"])
  assert BENCHMARKS["drop"].score(item, " 2000\nQuestion: next?") == {"em": 1.0, "f1": 1.0}
  assert BENCHMARKS["drop"].score(item, "about 1250\n2000") == {"em": 0.0, "f1": 0.0}


# ---- file formats and malformed files -------------------------------------------------


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


def test_malformed_golds_and_files_are_refused(tmp_path):
  gsm8k = _write(tmp_path, "g.jsonl", ['{"question": "q", "answer": "it is 4"}'])
  with pytest.raises(ValueError, match=r"g\.jsonl, line 1: field 'answer' has no '####"):
    BENCHMARKS["gsm8k"].load(gsm8k)
  math = _write(tmp_path, "m.jsonl", ['{"problem": "p", "solution": "It is 4."}'])
  with pytest.raises(ValueError, match=r"m\.jsonl, line 1: .*no \\boxed"):
    BENCHMARKS["math"].load(math)
  arc = _records("arc_test.jsonl")[0] | {"answerKey": "5"}
  with pytest.raises(ValueError, match=r"a\.jsonl, line 1: answerKey '5' is not one of"):
    BENCHMARKS["arc_challenge"].load(_write(tmp_path, "a.jsonl", [json.dumps(arc)]), shots=0)
  drop = _records("drop_test.jsonl")[0] | {"answers_spans": {"spans": [], "types": []}}
  with pytest.raises(ValueError, match=r"d\.json, record 1: .*no answer span"):
    BENCHMARKS["drop"].load(_write(tmp_path, "d.json", [json.dumps([drop])]), shots=0)
  with pytest.raises(ValueError, match="expected a JSON list"):
    BENCHMARKS["drop"].load(_write(tmp_path, "x.json", ["{}"]), shots=0)
  with pytest.raises(ValueError, match="unknown file type"):
    BENCHMARKS["gsm8k"].load(_write(tmp_path, "x.csv", ["question,answer"]))
  twice = _write(tmp_path, "t.jsonl", [json.dumps(_records("arc_test.jsonl")[0])] * 2)
  with pytest.raises(ValueError, match=r"t\.jsonl, line 2: id 'Invented_Test_1' repeats"):
    BENCHMARKS["arc_challenge"].load(twice, shots=0)
