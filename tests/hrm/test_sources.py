"""Record sources: validation and its report, each file format, conversion, pickling, Grain."""

import collections
import json
import logging
import pickle
import re
import sys

import grain
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hrm_jax.data import sources
from hrm_jax.data.sources import (ArrayRecordSource, JsonlSource, MalformedRecordError,
                                  ParquetSource, SyntheticSource, TfdsSource, open_source,
                                  write_array_record)
from hrm_jax.data.synthetic import Record, example

GOOD = [{"instruction": "What is 2 + 2?", "response": "\\boxed{4}", "tags": ["synth", "direct"]},
        {"instruction": "Grüße ✓", "response": "hallo", "tags": "noisy"},
        {"instruction": "No tags here", "response": "fine"}]
# one line of each malformed kind, with the start of the reason the report gives
BAD = [(b'{"instruction": "x", "response": ', "invalid_json", "invalid JSON"),
       (b'{"instruction": "caf\xe9", "response": "y"}', "not_utf8", "not UTF-8"),
       (b'["a", "list"]', "not_an_object", "expected an object, got list"),
       (b'{"instruction": "x"}', "missing_field", "field 'response' is missing"),
       (b'{"instruction": "x", "response": null}', "missing_field", "field 'response' is miss"),
       (b'{"instruction": 7, "response": "y"}', "not_a_string", "field 'instruction' is int"),
       (b'{"instruction": "   ", "response": "y"}', "empty_field", "field 'instruction' is emp"),
       (b'{"instruction": "x", "response": ""}', "empty_field", "field 'response' is empty"),
       (b'{"instruction": "x", "response": "y", "tags": ["sarcastic"]}', "unknown_tag",
        r"unknown tags \['sarcastic'\]"),
       (b'{"instruction": "x", "response": "y", "tags": [1]}', "bad_tags", "field 'tags' must"),
       (b'{"instruction": "\\ud800", "response": "y"}', "not_utf8", "field 'instruction' holds")]


def _write_jsonl(path, lines):
  path.write_bytes(b"\n".join(lines) + b"\n")
  return path


def _good_lines():
  return [json.dumps(g, ensure_ascii=False).encode() for g in GOOD]


def test_jsonl_reads_good_lines_and_reports_every_malformed_kind(tmp_path, caplog):
  # good lines 1-3, a blank line 4, bad lines 5-15, a good line 16
  path = _write_jsonl(tmp_path / "mix.jsonl",
                      _good_lines() + [b"  "] + [raw for raw, *_ in BAD] + _good_lines()[:1])
  with caplog.at_level(logging.WARNING):
    src = JsonlSource(path)
  assert len(src) == 4 and src.task == "mix"
  assert src[0] == Record("What is 2 + 2?", "\\boxed{4}", ("synth", "direct"), "mix")
  assert src[1] == Record("Grüße ✓", "hallo", ("noisy",), "mix")
  assert src[2].tags == () and src[3] == src[0] and src[-1] == src[3]
  assert src.problems == collections.Counter(kind for _, kind, _ in BAD)  # blank not counted
  assert len(src.problem_examples) == 5
  for line, (example_text, (_, _, reason)) in enumerate(zip(src.problem_examples, BAD), 5):
    assert example_text.startswith(f"{path}:line {line}: {reason.replace(chr(92), '')}")
  assert str(path) in caplog.text and "skipped 11 malformed records" in caplog.text
  with pytest.raises(IndexError, match="index 4 out of range"):
    src[4]


def test_comma_joined_tags_as_the_authors_write_them(tmp_path):
  rows = [{"instruction": "q1", "response": "a1", "tags": "synth,cot"},
          {"instruction": "q2", "response": "a2", "tags": "synth,noisy,cot"},
          {"instruction": "q3", "response": "a3", "tags": ["direct"]},
          {"instruction": "q4", "response": "a4", "tags": "synth,sarcastic"}]
  path = _write_jsonl(tmp_path / "authors.jsonl", [json.dumps(r).encode() for r in rows])
  src = JsonlSource(path)
  assert [r.tags for r in src] == [("synth", "cot"), ("synth", "noisy", "cot"), ("direct",)]
  assert src.problems == {"unknown_tag": 1}
  assert src.problem_examples[0].startswith(f"{path}:line 4: unknown tags ['sarcastic']")
  with pytest.raises(MalformedRecordError, match=r"authors.jsonl:line 4: unknown tags"):
    JsonlSource(path, on_error="fail")


@pytest.mark.parametrize("raw,kind,reason", BAD, ids=[f"{k}{i}" for i, (_, k, _) in enumerate(BAD)])
def test_jsonl_fail_mode_names_file_line_and_reason(tmp_path, raw, kind, reason):
  del kind
  path = _write_jsonl(tmp_path / "strict.jsonl", _good_lines() + [b""] + [raw])
  with pytest.raises(MalformedRecordError, match=rf"strict.jsonl:line 5: {reason}"):
    JsonlSource(path, on_error="fail")


def test_jsonl_options_and_file_errors(tmp_path):
  path = _write_jsonl(tmp_path / "qa.jsonl", [b'{"q": "Why?", "a": "Because.", "t": "cot"}'])
  src = JsonlSource(path, fields=("q", "a", "t"), task="qa_set")
  assert src[0] == Record("Why?", "Because.", ("cot",), "qa_set")
  with pytest.raises(ValueError, match=r"no valid records .*'missing_field': 1"):
    JsonlSource(path)  # default keys: nothing usable
  with pytest.raises(FileNotFoundError, match="nowhere.jsonl does not exist"):
    JsonlSource(tmp_path / "nowhere.jsonl")
  with pytest.raises(ValueError, match="on_error='skip'"):
    JsonlSource(path, on_error="skip")


def test_parquet_validates_rows(tmp_path, caplog):
  table = pa.table({"instruction": ["a?", None, "c?", "", "e?"],
                    "response": ["A", "B", "C", "D", "E"],
                    "tags": [["cot"], None, ["shouty"], [], ["synth", "direct"]]})
  path = tmp_path / "rows.parquet"
  pq.write_table(table, path)
  with caplog.at_level(logging.WARNING):
    src = ParquetSource(path)
  assert [r.instruction for r in src] == ["a?", "e?"]
  assert src[1] == Record("e?", "E", ("synth", "direct"), "rows")
  assert src.problems == {"missing_field": 1, "unknown_tag": 1, "empty_field": 1}
  assert src.problem_examples[0] == f"{path}:row 1: field 'instruction' is missing or null"
  with pytest.raises(MalformedRecordError, match=r"rows.parquet:row 1: field 'instruction'"):
    ParquetSource(path, on_error="fail")
  pq.write_table(pa.table({"prompt": ["a"], "response": ["b"]}), tmp_path / "cols.parquet")
  with pytest.raises(ValueError, match=r"cols.parquet has no column 'instruction'.*'prompt'"):
    ParquetSource(tmp_path / "cols.parquet")
  assert ParquetSource(tmp_path / "cols.parquet", fields=("prompt", "response"))[0].tags == ()


def test_converter_round_trips_jsonl_and_parquet_to_array_record(tmp_path, capsys):
  path = _write_jsonl(tmp_path / "mix.jsonl", _good_lines() + [BAD[0][0]])
  out = tmp_path / "mix.array_record"
  assert sources.main(["convert", str(path), str(out)]) == 0
  assert "wrote 3 records" in capsys.readouterr().out
  converted, original = ArrayRecordSource(out), JsonlSource(path)
  assert len(converted) == 3 and list(converted) == list(original)
  with pytest.raises(SystemExit):
    sources.main(["convert", str(path), str(tmp_path / "x.array_record"), "--on-error", "fail"])
  assert f"convert: {path}:line 4: invalid JSON" in capsys.readouterr().err
  assert not (tmp_path / "x.array_record").exists()

  pq.write_table(pa.Table.from_pylist(GOOD[:1]), tmp_path / "p.parquet")
  sources.main(["convert", str(tmp_path / "p.parquet"), str(out), "--task", "gsm"])
  assert list(ArrayRecordSource(out)) == [Record("What is 2 + 2?", "\\boxed{4}",
                                                 ("synth", "direct"), "gsm")]
  with pytest.raises(SystemExit):
    sources.main(["convert", str(tmp_path / "data.csv"), str(out)])
  assert "unknown input type '.csv'" in capsys.readouterr().err


def test_array_record_source_validates_what_it_reads(tmp_path):
  records = [example(i) for i in range(5)]
  path = tmp_path / "synth.array_record"
  assert write_array_record(records, path) == 5
  assert list(ArrayRecordSource(path)) == records  # stored tasks are kept
  bad = tmp_path / "bad.array_record"
  write_array_record([records[0], Record("x", "", (), "t"), records[1]], bad)
  src = ArrayRecordSource(bad)
  assert list(src) == records[:2] and src.problems == {"empty_field": 1}
  with pytest.raises(MalformedRecordError, match="bad.array_record:record 1: field 'response'"):
    ArrayRecordSource(bad, on_error="fail")


def test_sources_pickle_and_feed_grain(tmp_path):
  jsonl = _write_jsonl(tmp_path / "g.jsonl", _good_lines())
  pq.write_table(pa.Table.from_pylist([GOOD[0], {**GOOD[1], "tags": ["noisy"]}, GOOD[2]]),
                 tmp_path / "g.parquet")
  write_array_record([example(i) for i in range(4)], tmp_path / "g.array_record")
  opened = [SyntheticSource(10, seed=3), JsonlSource(jsonl), ParquetSource(tmp_path / "g.parquet"),
            ArrayRecordSource(tmp_path / "g.array_record")]
  for src in opened:
    src[1]  # open the file handles before pickling
    copy = pickle.loads(pickle.dumps(src))
    assert len(copy) == len(src) and all(copy[i] == src[i] for i in range(len(src)))
    dataset = grain.MapDataset.source(src)
    assert len(dataset) == len(src) and dataset[2] == src[2]
    assert list(dataset.map(lambda r: r.task)) == [r.task for r in src]


def test_synthetic_source():
  src = SyntheticSource(50, seed=7, tasks=("sudoku", "reversal"))
  assert len(src) == 50 and src[np.int64(9)] == example(9, 7, ("sudoku", "reversal"))
  with pytest.raises(ValueError, match="size must be positive"):
    SyntheticSource(0)
  with pytest.raises(ValueError, match="unknown synthetic tasks"):
    SyntheticSource(5, tasks=("chess",))


class _FakeTfds:
  """What tfds.data_source returns: random access to dicts of bytes and numpy arrays."""

  def __init__(self, items):
    self.items = items

  def __len__(self):
    return len(self.items)

  def __getitem__(self, i):
    return self.items[i]


def test_tfds_maps_fields_and_needs_the_extra(monkeypatch):
  fake = _FakeTfds([{"question": b"Wie viel ist 3 + 4?", "answer": b"\\boxed{7}",
                     "style": np.array([b"synth", b"cot"])},
                    {"question": b"Q", "answer": b"", "style": np.array([], dtype=bytes)}])
  src = TfdsSource("gsm8k", "train", instruction_key="question", response_key="answer",
                   tags_key="style", data_source=fake)
  assert len(src) == 2
  assert src[0] == Record("Wie viel ist 3 + 4?", "\\boxed{7}", ("synth", "cot"), "gsm8k")
  assert pickle.loads(pickle.dumps(src))[0] == src[0]
  with pytest.raises(MalformedRecordError, match=r"tfds gsm8k\[train\] item 1: field 'answer'"):
    src[1]
  with pytest.raises(MalformedRecordError, match=r"item 0: field 'prompt' is missing.*'answer'"):
    TfdsSource("gsm8k", "train", instruction_key="prompt", response_key="answer",
               data_source=fake)
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
  with pytest.raises(ImportError, match=r"pip install \.\[tfds\]"):
    open_source({"kind": "tfds", "name": "gsm8k", "split": "train",
                 "instruction_key": "question", "response_key": "answer"})


def test_open_source_builds_each_kind_and_names_bad_keys(tmp_path):
  jsonl = _write_jsonl(tmp_path / "o.jsonl", _good_lines())
  assert len(open_source({"kind": "synthetic", "size": 8, "seed": 1})) == 8
  assert open_source({"kind": "jsonl", "path": str(jsonl), "fields": ["instruction", "response"],
                      "on_error": "fail"})[1].tags == ()
  with pytest.raises(ValueError, match=r"kind 'csv' is unknown; valid kinds: \['array_record'"):
    open_source({"kind": "csv", "path": "x"})
  with pytest.raises(ValueError, match=r"jsonl source: unknown key 'paht'; valid keys: \['path'"):
    open_source({"kind": "jsonl", "paht": str(jsonl)})
  with pytest.raises(ValueError, match="tfds source: missing key 'instruction_key'"):
    open_source({"kind": "tfds", "name": "gsm8k", "split": "train", "response_key": "a"})
  with pytest.raises(ValueError, match="unknown key 'data_source'"):
    open_source({"kind": "tfds", "data_source": None})
  with pytest.raises(FileNotFoundError, match="missing.parquet does not exist"):
    open_source({"kind": "parquet", "path": str(tmp_path / "missing.parquet")})


def test_a_file_that_is_not_parquet_is_named(tmp_path):
  path = tmp_path / "notes.parquet"
  path.write_text("instruction,response\nhi,there\n")
  with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is not a readable Parquet file"):
    open_source({"kind": "parquet", "path": str(path)})
