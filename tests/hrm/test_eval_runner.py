"""The evaluation path end to end: load a checkpoint, generate with the cache, score, cache
predictions (resume), write results; the chat command."""

import json
import os
import subprocess
import sys

import pytest
from conftest import TINY, make_model

from hrm_jax.data.tokenizer import BOQ, EOQ, ByteTokenizer
from hrm_jax.eval import runner
from hrm_jax.eval.__main__ import main as eval_main
from hrm_jax.eval.benchmarks import BENCHMARKS, Item
from hrm_jax.generate import generate, prompt_tokens
from hrm_jax.model import hf_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = TINY.replace(max_position_embeddings=256, vocab_size=ByteTokenizer().vocab_size)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("model"))
  hf_io.save_hf(make_model(CONFIG), directory)
  return directory


def _gsm8k_file(path, count=5):
  with open(path, "w", encoding="utf-8") as f:
    for i in range(count):
      f.write(json.dumps({"question": f"Tom has {i} apples and buys 2 more. How many?",
                          "answer": f"He has {i} + 2 = {i + 2}.\n#### {i + 2}"}) + "\n")
  return str(path)


def test_evaluate_scores_every_item_and_resumes_from_the_prediction_cache(hf_dir, tmp_path,
                                                                         monkeypatch):
  model, tokenizer = runner.load_model(hf_dir)
  items = BENCHMARKS["gsm8k"].load(_gsm8k_file(tmp_path / "gsm8k.jsonl"))
  cache = str(tmp_path / "gsm8k.predictions.jsonl")
  first = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items[:3], batch_size=2,
                          max_new_tokens=6, cache_path=cache, progress=False)
  assert first["items"] == 3 and len(open(cache).readlines()) == 3
  calls = []
  real_generate = runner.generate
  monkeypatch.setattr(runner, "generate",
                      lambda *a, **k: calls.append(len(a[1])) or real_generate(*a, **k))
  second = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, batch_size=2,
                           max_new_tokens=6, cache_path=cache, progress=False)
  assert calls == [2]  # only the two items not in the cache were generated
  assert [r["output"] for r in second["per_item"][:3]] == [r["output"] for r in first["per_item"]]
  assert set(second["summary"]) and second["items"] == 5


def test_long_prompts_keep_the_question_and_are_counted(hf_dir, monkeypatch):
  model, tokenizer = runner.load_model(hf_dir)
  item = Item(id="x", prompt="filler " * 100 + "What is 2 + 2?", tags=("synth", "cot"),
              gold="4")
  seen = []
  real_generate = runner.generate
  monkeypatch.setattr(runner, "generate", lambda m, prompts, **k: seen.extend(prompts)
                      or real_generate(m, prompts, **k))
  result = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], [item], max_new_tokens=200,
                           progress=False)
  assert result["truncated_prompts"] == 1
  (prompt,) = seen
  assert len(prompt) == CONFIG.max_position_embeddings - 200  # cut to the room left
  # BOQ and the condition tokens stay at the head; the oldest filler goes, the question stays.
  assert prompt[:3] == [BOQ, *tokenizer.condition_ids(("synth", "cot"))] and prompt[-1] == EOQ
  text = tokenizer.decode(prompt)
  assert text.endswith("filler What is 2 + 2?") and text.count("filler") < 100


def test_cli_writes_json_and_markdown_and_names_bad_arguments(hf_dir, tmp_path, capsys):
  data = _gsm8k_file(tmp_path / "gsm8k.jsonl", 3)
  out = tmp_path / "evals"
  assert eval_main(["--model", hf_dir, "--task", f"gsm8k={data}", "--out", str(out),
                    "--max-new-tokens", "6", "--batch-size", "2", "--no-progress"]) == 0
  results = json.loads((out / "results.json").read_text())
  assert results["results"][0]["benchmark"] == "gsm8k" and results["results"][0]["items"] == 3
  assert "| gsm8k | 3 |" in (out / "results.md").read_text()
  with pytest.raises(SystemExit):
    eval_main(["--model", hf_dir, "--task", f"gsm8kk={data}"])
  assert "gsm8kk" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    eval_main(["--model", str(tmp_path), "--task", f"gsm8k={data}"])
  assert "neither a training run" in capsys.readouterr().err


def test_chat_answers_each_line(hf_dir):
  # Prompts of 33 to 48 tokens, as the GSM8K items above: one padded shape, one compiled
  # decoder in the chat process; the one the tests above compiled for a single row here.
  instructions = ["What is 1 + 1? Reply with the number.", "Sort these numbers: 3 1 2 5 4 9 8 7"]
  done = subprocess.run([sys.executable, "-m", "hrm_jax.eval.chat", "--model", hf_dir,
                         "--max-new-tokens", "6"], input="\n".join(instructions) + "\n\n",
                        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"))
  assert done.returncode == 0, done.stderr[-2000:]
  # Each line is the greedy answer to that instruction, prompted with the default tags.
  model, tokenizer = runner.load_model(hf_dir)
  prompts = [prompt_tokens(tokenizer, text, ("synth", "direct")) for text in instructions]
  assert all(32 < len(p) <= 48 for p in prompts)
  expected = [tokenizer.decode(generate(model, [p], max_new_tokens=6)[0]) for p in prompts]
  assert done.stdout == "".join(answer + "\n" for answer in expected)


@pytest.fixture(scope="module")
def other_hf_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("other_model"))
  hf_io.save_hf(make_model(CONFIG, seed=1), directory)
  return directory


def test_a_cache_of_another_model_or_length_is_refused_not_reused(hf_dir, other_hf_dir,
                                                                  tmp_path, capsys):
  data = _gsm8k_file(tmp_path / "gsm8k.jsonl", 2)
  out = tmp_path / "evals"
  args = ["--task", f"gsm8k={data}", "--out", str(out), "--max-new-tokens", "6", "--no-progress"]
  assert eval_main(["--model", hf_dir, *args]) == 0
  cache = (out / "gsm8k.predictions.jsonl").read_text()
  results = (out / "results.json").read_text()
  with pytest.raises(SystemExit) as exit_:
    eval_main(["--model", other_hf_dir, *args])
  err = capsys.readouterr().err
  assert exit_.value.code == 2
  assert f"holds predictions of {os.path.abspath(hf_dir)}" in err
  assert f"not of {os.path.abspath(other_hf_dir)}" in err
  assert (out / "gsm8k.predictions.jsonl").read_text() == cache  # untouched
  assert (out / "results.json").read_text() == results
  # The same model with another answer length would score other outputs: refused too.
  model, tokenizer, identity = runner.load_model_and_identity(hf_dir)
  items = BENCHMARKS["gsm8k"].load(data)
  with pytest.raises(runner.StaleCacheError, match="max_new_tokens 6, not of .* max_new_tokens 7"):
    runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_new_tokens=7,
                    cache_path=str(out / "gsm8k.predictions.jsonl"), cache_key=identity,
                    progress=False)
  # The same model and length resume from it.
  again = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_new_tokens=6,
                          cache_path=str(out / "gsm8k.predictions.jsonl"), cache_key=identity,
                          progress=False)
  cached = {r["id"]: r["output"] for r in map(json.loads, cache.splitlines())}
  assert {r["id"]: r["output"] for r in again["per_item"]} == cached


def test_cli_rejects_a_batch_size_of_zero(hf_dir, tmp_path, capsys):
  data = _gsm8k_file(tmp_path / "gsm8k.jsonl", 1)
  with pytest.raises(SystemExit) as exit_:
    eval_main(["--model", hf_dir, "--task", f"gsm8k={data}", "--batch-size", "0"])
  assert exit_.value.code == 2 and "error: --batch-size 0: must be at least 1" in \
      capsys.readouterr().err
