"""TfdsSource against the real tensorflow-datasets (the `tfds` extra), end to end, offline.

A tiny dataset is built in tmp_path by a GeneratorBasedBuilder writing ArrayRecord (tfds 4.9.x
does that without TensorFlow), then opened by name through `open_source` -> `tfds.data_source`.
"""

import pickle
import socket

import pytest

from hrm_jax.data.sources import MalformedRecordError, TfdsSource, open_source
from hrm_jax.data.synthetic import Record

tfds = pytest.importorskip("tensorflow_datasets")

# (question, answer, style) in the order written; the last answer is empty: a malformed row
ROWS = [("Wie viel ist 3 + 4?", "\\boxed{7}", ["synth", "cot"]),
        ("Grüße ✓ — what is 2 · 5?", "zehn\n\\boxed{10}", ["noisy"]),
        ("No tags here", "fine", []),
        ("Where is the answer?", "", ["direct"])]
BAD_INDEX = 3


class HrmTinyQa(tfds.core.GeneratorBasedBuilder):
  """Registered by tfds as "hrm_tiny_qa" (module level: a name registers once per process)."""

  VERSION = tfds.core.Version("1.0.0")
  built = False  # set once the test has prepared it: tfds.data_source must not build it again

  def _info(self):
    # DatasetInfo directly: dataset_info_from_configs reads metadata files next to the module.
    # disable_shuffling keeps the written order, so the malformed row stays at BAD_INDEX.
    return tfds.core.DatasetInfo(builder=self, disable_shuffling=True,
                                 features=tfds.features.FeaturesDict({
                                     "question": tfds.features.Text(),
                                     "answer": tfds.features.Text(),
                                     "style": tfds.features.Sequence(tfds.features.Text())}))

  def _split_generators(self, dl_manager):
    del dl_manager
    # tfds.data_source prepares a registered dataset it cannot find in data_dir; here that
    # would mean the source looked somewhere else
    assert not self.built, f"hrm_tiny_qa built again in {self.data_dir}: data_dir was not used"
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i, (question, answer, style) in enumerate(ROWS):
      yield i, {"question": question, "answer": answer, "style": style}


@pytest.mark.slow
def test_tfds_source_reads_a_real_array_record_dataset(tmp_path, monkeypatch):
  def no_network(*args, **kwargs):
    raise AssertionError(f"network access at test time: {args}")
  monkeypatch.setattr(socket.socket, "connect", no_network)
  monkeypatch.setattr(socket, "create_connection", no_network)
  default_dir = tmp_path / "default"  # tfds looks here without data_dir, not ~/tensorflow_datasets
  monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(default_dir))
  data_dir = tmp_path / "data"

  builder = HrmTinyQa(data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare()
  assert list((data_dir / "hrm_tiny_qa" / "1.0.0").glob("hrm_tiny_qa-train.array_record-*"))
  monkeypatch.setattr(HrmTinyQa, "built", True)

  spec = {"kind": "tfds", "name": "hrm_tiny_qa", "split": "train", "data_dir": str(data_dir),
          "instruction_key": "question", "response_key": "answer", "tags_key": "style"}
  src = open_source(spec)
  assert isinstance(src, TfdsSource)
  assert len(src) == len(ROWS)
  for i, (question, answer, style) in enumerate(ROWS):
    if i != BAD_INDEX:
      assert src[i] == Record(question, answer, tuple(style), "hrm_tiny_qa"), i
  assert pickle.loads(pickle.dumps(src))[1] == src[1]

  with pytest.raises(MalformedRecordError,
                     match=rf"tfds hrm_tiny_qa\[train\] item {BAD_INDEX}: field 'answer' is empty"
                           r" \(keys: \['answer', 'question', 'style'\]\)"):
    src[BAD_INDEX]

  # without tags_key, a task name given, the same text
  src = open_source({**spec, "tags_key": None, "task": "qa"})
  assert src[0] == Record(ROWS[0][0], ROWS[0][1], (), "qa")
  # a key mapping the dataset does not have fails at open, naming the item and the real keys
  with pytest.raises(MalformedRecordError, match=r"item 0: field 'prompt' is missing.*'question'"):
    open_source({**spec, "instruction_key": "prompt"})
  assert not default_dir.exists()
