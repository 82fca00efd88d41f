"""Record sources for the Grain pipeline: random access (`len`, `[i] -> Record`), picklable.

File sources validate every record once, when opened, and keep the positions of the good
ones; a malformed record is never silently dropped: it is counted in `problems` (with the
first few in `problem_examples` as "path:line N: reason") and summarised in a warning, or,
with on_error="fail", raises MalformedRecordError naming the file, the place and the reason.

Convert JSONL or Parquet to ArrayRecord (validated the same way):
  python -m hrm_jax.data.sources convert INPUT.jsonl|.parquet OUTPUT.array_record
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import inspect
import json
import logging
import os
import sys
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from array_record.python import array_record_module

from hrm_jax.data import synthetic
from hrm_jax.data.synthetic import Record
from hrm_jax.data.tokenizer import CONDITION_TOKENS, split_tags

FIELDS = ("instruction", "response", "tags")
ON_ERROR = ("report", "fail")
_EXAMPLES_KEPT = 5
_OPEN_LOCK = threading.Lock()  # a source's first read opens its file once, whichever thread
log = logging.getLogger(__name__)


class MalformedRecordError(ValueError):
  """A record that cannot become a training example (raised with on_error="fail")."""


class _Problem(Exception):
  def __init__(self, kind: str, reason: str):
    super().__init__(reason)
    self.kind, self.reason = kind, reason


def _to_record(obj, fields=FIELDS, task: str = "") -> Record:
  """Checks one decoded record; raises _Problem(kind, reason) when it is malformed."""
  instruction_key, response_key, tags_key = fields
  if not isinstance(obj, dict):
    raise _Problem("not_an_object", f"expected an object, got {type(obj).__name__}")
  for key in (instruction_key, response_key):
    if obj.get(key) is None:
      raise _Problem("missing_field", f"field {key!r} is missing or null")
    if not isinstance(obj[key], str):
      raise _Problem("not_a_string", f"field {key!r} is {type(obj[key]).__name__}, not str")
    if not obj[key].strip():
      raise _Problem("empty_field", f"field {key!r} is empty")
    try:  # valid JSON may still escape a lone surrogate, which no tokenizer can encode
      obj[key].encode("utf-8")
    except UnicodeEncodeError:
      raise _Problem("not_utf8", f"field {key!r} holds a lone surrogate") from None
  try:
    tags = split_tags(obj.get(tags_key) if tags_key else None)
  except TypeError:
    raise _Problem("bad_tags", f"field {tags_key!r} must be a string (comma-joined tags) or a "
                               "list of strings") from None
  unknown = [t for t in tags if t not in CONDITION_TOKENS]
  if unknown:
    raise _Problem("unknown_tag", f"unknown tags {unknown}; known: {sorted(CONDITION_TOKENS)}")
  return Record(obj[instruction_key], obj[response_key], tuple(tags), task)


def _decode_json(raw: bytes):
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise _Problem("not_utf8", f"not UTF-8 ({e.reason} at byte {e.start})") from None
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise _Problem("invalid_json", f"invalid JSON ({e.msg} at column {e.colno})") from None


def _check_on_error(on_error: str) -> None:
  if on_error not in ON_ERROR:
    raise ValueError(f"on_error={on_error!r}; choose from {ON_ERROR}")


def _check_index(index, length: int) -> int:
  index = int(index)
  if not -length <= index < length:
    raise IndexError(f"index {index} out of range for a source of {length} records")
  return index % length


class SyntheticSource:
  """The built-in generator as a source of `size` records."""

  def __init__(self, size: int, seed: int = 0, tasks=synthetic.TASKS, options=None):
    if size <= 0:
      raise ValueError(f"synthetic source size must be positive, got {size}")
    self.size, self.seed, self.tasks = int(size), int(seed), tuple(tasks)
    # unknown tasks and options fail now, not in a worker
    self.options = synthetic.check_options(self.tasks, options)

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, index) -> Record:
    return synthetic.example(_check_index(index, self.size), self.seed, self.tasks,
                             self.options)


class _FileSource:
  """Scans the file once (`_scan` yields (key, place, raw)) and keeps the keys of good records;
  `_fetch(key)` reads one raw record back, `_parse(raw)` turns it into a Record."""

  def __init__(self, path, *, fields=FIELDS, on_error: str = "report", task: str | None = None):
    _check_on_error(on_error)
    self.path = os.fspath(path)
    if not os.path.isfile(self.path):
      raise FileNotFoundError(f"data file {self.path} does not exist")
    fields = tuple(fields) + (None,) * (3 - len(fields))
    if (len(fields) != 3 or not all(isinstance(f, str) for f in fields[:2])
        or not isinstance(fields[2], (str, type(None)))):
      raise ValueError(f"fields={fields!r}: give (instruction_key, response_key[, tags_key])")
    self.fields, self.on_error = fields, on_error
    self.task = task or os.path.splitext(os.path.basename(self.path))[0]
    self.problems, self.problem_examples = collections.Counter(), []
    keys = []
    for key, place, raw in self._scan():
      try:
        self._parse(raw)
        keys.append(key)
      except _Problem as problem:
        self._note(place, problem)
    self._keys = np.asarray(keys, np.int64)
    if self.problems:
      log.warning("%s: skipped %d malformed records (%s), kept %d; first: %s", self.path,
                  sum(self.problems.values()), dict(self.problems), len(keys),
                  "; ".join(self.problem_examples))
    if not keys:
      raise ValueError(f"{self.path} holds no valid records (problems: {dict(self.problems)})")

  def _note(self, place: str, problem: _Problem) -> None:
    where = f"{self.path}:{place}: {problem.reason}"
    if self.on_error == "fail":
      raise MalformedRecordError(where)
    self.problems[problem.kind] += 1
    if len(self.problem_examples) < _EXAMPLES_KEPT:
      self.problem_examples.append(where)

  def __len__(self) -> int:
    return len(self._keys)

  def __getitem__(self, index) -> Record:
    return self._parse(self._fetch(self._keys[_check_index(index, len(self._keys))]))

  def __getstate__(self):  # open handles stay behind; each process reopens its own
    return {k: v for k, v in self.__dict__.items() if not k.startswith("_handle")}


class JsonlSource(_FileSource):
  """One JSON object per line; blank lines are skipped. Places are 1-based line numbers."""

  def _scan(self):
    offset = 0
    with open(self.path, "rb") as f:
      for number, line in enumerate(f, start=1):
        if line.strip():
          yield (offset, len(line)), f"line {number}", line
        offset += len(line)

  def _fetch(self, key) -> bytes:
    handle = getattr(self, "_handle", None)
    if handle is None:
      # Grain reads from several threads: two opening at once would each install a handle,
      # and the one dropped closes under the thread still reading through it.
      with _OPEN_LOCK:
        handle = getattr(self, "_handle", None)
        if handle is None:
          handle = self._handle = open(self.path, "rb", buffering=0)  # pylint: disable=consider-using-with
    offset, length = (int(k) for k in key)
    return os.pread(handle.fileno(), length, offset)  # no shared position: thread-safe

  def _parse(self, raw) -> Record:
    return _to_record(_decode_json(raw), self.fields, self.task)


class ParquetSource(_FileSource):
  """A Parquet table with the `fields` columns (tags optional). Places are 0-based rows; a
  missing instruction or response column fails the whole file. Each process holds the
  decoded table in memory: convert large files to ArrayRecord."""

  def _columns(self) -> list[str]:
    try:
      present = pq.read_schema(self.path).names
    except (pa.ArrowException, OSError) as e:  # pyarrow's message does not name the file
      raise ValueError(f"{self.path} is not a readable Parquet file: {e}") from None
    for key in self.fields[:2]:
      if key not in present:
        raise ValueError(f"{self.path} has no column {key!r}; its columns: {present}")
    return [key for key in self.fields if key is not None and key in present]

  def _scan(self):
    columns = self._columns()
    try:
      batches = pq.ParquetFile(self.path).iter_batches(columns=columns)
      for row, obj in enumerate(obj for batch in batches for obj in batch.to_pylist()):
        yield row, f"row {row}", obj
    except (pa.ArrowException, OSError) as e:  # a damaged file past its footer
      raise ValueError(f"{self.path} is not a readable Parquet file: {e}") from None

  def _fetch(self, key) -> dict:
    if getattr(self, "_handle", None) is None:
      self._handle = pq.read_table(self.path, columns=self._columns(), memory_map=True)
    return self._handle.slice(int(key), 1).to_pylist()[0]

  def _parse(self, raw) -> Record:
    return _to_record(raw, self.fields, self.task)


class ArrayRecordSource(_FileSource):
  """Records written by `write_array_record` (JSON objects). Places are 0-based records; a
  record's stored task wins over `task`, which names records that have none."""

  def _scan(self):
    reader = array_record_module.ArrayRecordReader(self.path)
    try:
      for start in range(0, reader.num_records(), 1024):
        end = min(start + 1024, reader.num_records())
        for i, raw in enumerate(reader.read(start, end), start=start):
          yield i, f"record {i}", raw
    finally:
      reader.close()

  def _fetch(self, key) -> bytes:
    if getattr(self, "_handle", None) is None:
      self._handle = array_record_module.ArrayRecordReader(
          self.path, "readahead_buffer_size:0,max_parallelism:0")  # tuned for random access
    return self._handle.read([int(key)])[0]

  def _parse(self, raw) -> Record:
    obj = _decode_json(raw)
    task = obj.get("task") if isinstance(obj, dict) else None
    return _to_record(obj, self.fields, task if isinstance(task, str) and task else self.task)


def write_array_record(records, path) -> int:
  """Writes Records as JSON objects, one per ArrayRecord entry (group_size 1 for random
  access); returns how many were written."""
  writer, count = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1"), 0
  try:
    for count, record in enumerate(records, start=1):
      writer.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False).encode("utf-8"))
  finally:
    writer.close()
  return count


class TfdsSource:
  """A TFDS dataset through `tfds.data_source` (random access over its ArrayRecord files).

  TFDS features are typed, so a malformed item means a wrong key mapping: the first item is
  checked when opened, and any later bad item raises MalformedRecordError when read.
  `data_source` replaces the tfds one (tests, or a source built elsewhere)."""

  def __init__(self, name: str, split: str, *, data_dir: str | None = None,
               instruction_key: str, response_key: str, tags_key: str | None = None,
               on_error: str = "report", task: str | None = None, data_source=None):
    _check_on_error(on_error)
    if data_source is None:
      try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
      except ImportError as e:
        raise ImportError("TfdsSource needs tensorflow-datasets: pip install .[tfds]") from e
      data_source = tfds.data_source(name, split=split, data_dir=data_dir)
    self.name, self.split, self.task = name, split, task or name
    self.fields = (instruction_key, response_key, tags_key)
    self.data_source = data_source
    if len(self) == 0:
      raise ValueError(f"tfds {name}[{split}] is empty")
    _ = self[0]  # a wrong key mapping fails here, not in a worker

  def __len__(self) -> int:
    return len(self.data_source)

  def __getitem__(self, index) -> Record:
    index = _check_index(index, len(self))
    item = dict(self.data_source[index])
    try:
      return _to_record({k: _from_tfds(v) for k, v in item.items()}, self.fields, self.task)
    except (_Problem, UnicodeDecodeError) as problem:
      raise MalformedRecordError(f"tfds {self.name}[{self.split}] item {index}: "
                                 f"{getattr(problem, 'reason', problem)} "
                                 f"(keys: {sorted(item)})") from None


def _from_tfds(value):
  """TFDS text arrives as bytes, sequences as numpy arrays."""
  if isinstance(value, np.ndarray):
    value = value.tolist()
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, list):
    return [_from_tfds(v) for v in value]
  return value


KINDS = {"synthetic": SyntheticSource, "jsonl": JsonlSource, "parquet": ParquetSource,
         "array_record": ArrayRecordSource, "tfds": TfdsSource}


def open_source(spec: dict):
  """A source from a config dict: {"kind": one of KINDS, plus that source's arguments}."""
  spec = dict(spec)
  kind = spec.pop("kind", None)
  if kind not in KINDS:
    raise ValueError(f"source kind {kind!r} is unknown; valid kinds: {sorted(KINDS)}")
  parameters = inspect.signature(KINDS[kind]).parameters
  valid = [name for name in parameters if name != "data_source"]
  unknown = sorted(set(spec) - set(valid))
  if unknown:
    raise ValueError(f"{kind} source: unknown key {unknown[0]!r}; valid keys: {valid}")
  missing = [name for name in valid if parameters[name].default is inspect.Parameter.empty
             and name not in spec]
  if missing:
    raise ValueError(f"{kind} source: missing key {missing[0]!r}; valid keys: {valid}")
  return KINDS[kind](**spec)


def main(argv=None) -> int:
  """The converter CLI (see the module docstring)."""
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.data.sources")
  commands = parser.add_subparsers(dest="command", required=True)
  convert = commands.add_parser("convert", help="validate JSONL/Parquet, write ArrayRecord")
  convert.add_argument("input")
  convert.add_argument("output")
  convert.add_argument("--on-error", choices=ON_ERROR, default="report")
  convert.add_argument("--fields", nargs="+", default=list(FIELDS),
                       help="instruction, response and (optional) tags keys")
  convert.add_argument("--task", default=None, help="task name stored with each record")
  args = parser.parse_args(argv)
  readers = {".jsonl": JsonlSource, ".json": JsonlSource, ".parquet": ParquetSource}
  extension = os.path.splitext(args.input)[1].lower()
  if extension not in readers:
    parser.error(f"{args.input}: unknown input type {extension!r}; use {sorted(readers)}")
  try:
    source = readers[extension](args.input, fields=args.fields, on_error=args.on_error,
                                task=args.task)
  except (OSError, ValueError) as e:  # MalformedRecordError included: name it, no traceback
    parser.exit(1, f"convert: {e}\n")
  count = write_array_record((source[i] for i in range(len(source))), args.output)
  print(f"wrote {count} records to {args.output}; skipped {sum(source.problems.values())} "
        f"malformed {dict(source.problems)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
