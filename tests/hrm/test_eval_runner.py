"""The evaluation path end to end: load a checkpoint, generate with the cache under the
authors' context budget (over-long prompts answered "", one token for multiple choice,
sampling for majority voting), score, cache predictions (resume), write results; the chat
command."""

import json
import os
import subprocess
import sys

import pytest
from conftest import TINY, make_model

from hrm_jax.data.layout import prompt_tokens
from hrm_jax.data.tokenizer import ByteTokenizer
from hrm_jax.eval import runner
from hrm_jax.eval.__main__ import main as eval_main
from hrm_jax.eval.benchmarks import BENCHMARKS, Item
from hrm_jax.generate import Sampling, generate
from hrm_jax.model import hf_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "eval")
# One layer, one H and one L call: the decoder compiles fastest. Each compiled program costs
# seconds, so the tests share them: greedy batches of 2 GSM8K prompts (width 48, 6 new
# tokens), of 3 MMLU prompts (width 96, 1 token), sampled batches of 6 AIME prompts (width 64).
CONFIG = TINY.replace(max_position_embeddings=256, vocab_size=ByteTokenizer().vocab_size,
                      H_cycles=1, L_cycles=1, num_layers_per_stack=1)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("model"))
  hf_io.save_hf(make_model(CONFIG), directory)
  return directory


@pytest.fixture(scope="module")
def loaded(hf_dir):
  return runner.load_model(hf_dir)


def _gsm8k_file(path, count=5):
  with open(path, "w", encoding="utf-8") as f:
    for i in range(count):
      f.write(json.dumps({"question": f"Tom has {i} apples and buys 2 more. How many?",
                          "answer": f"He has {i} + 2 = {i + 2}.\n#### {i + 2}"}) + "\n")
  return str(path)


def _spy(monkeypatch, name="generate_within"):
  calls = []
  real = getattr(runner, name)
  monkeypatch.setattr(runner, name, lambda model, prompts, limits, **k: calls.append(
      ([len(p) for p in prompts], list(limits))) or real(model, prompts, limits, **k))
  return calls


def test_evaluate_scores_every_item_and_resumes_from_the_prediction_cache(loaded, tmp_path,
                                                                         monkeypatch):
  model, tokenizer = loaded
  items = BENCHMARKS["gsm8k"].load(_gsm8k_file(tmp_path / "gsm8k.jsonl"))
  cache = str(tmp_path / "gsm8k.predictions.jsonl")
  first = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items[:2], batch_size=2,
                          max_new_tokens=6, cache_path=cache, progress=False)
  assert first["items"] == 2 and len(open(cache).readlines()) == 2
  calls = _spy(monkeypatch)
  second = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items[:4], batch_size=2,
                           max_new_tokens=6, cache_path=cache, progress=False)
  assert [len(lengths) for lengths, _ in calls] == [2]  # only the two items not cached
  assert [r["output"] for r in second["per_item"][:2]] == [r["output"] for r in first["per_item"]]
  assert set(second["summary"]) == {"count", "accuracy", "invalid"} and second["items"] == 4


def test_the_context_budget_is_prompt_plus_generated_tokens(loaded, monkeypatch):
  """GSM8K/MATH/DROP generate up to max_context - prompt length (the authors' 3072, capped at
  the model's positions), not a fixed number of new tokens."""
  model, tokenizer = loaded
  settings = runner.generation_settings(model, BENCHMARKS["gsm8k"])
  assert settings == {"max_context": 256, "max_new_tokens": None, "temperature": 0.0}
  assert runner.new_token_limit(40, {"max_context": 3072, "max_new_tokens": None}) == 3032
  assert runner.new_token_limit(40, {"max_context": 4096, "max_new_tokens": 1}) == 1
  assert runner.new_token_limit(3072, {"max_context": 3072, "max_new_tokens": None}) == 0
  items = [Item(str(i), f"Tom has {i} apples and buys 2 more. How many?", ("synth", "cot"),
                i + 2) for i in (0, 10)]  # prompts of 47 and 48 tokens
  calls = _spy(monkeypatch)
  result = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_context=53,
                           progress=False)
  assert calls == [([47, 48], [6, 5])]
  assert result["settings"]["max_context"] == 53 and result["overlong_prompts"] == 0
  for record, length in zip(result["per_item"], (47, 48)):
    assert len(tokenizer.encode(record["output"])) <= 53 - length


def test_over_long_prompts_are_answered_empty_and_counted_not_cut(loaded, monkeypatch):
  model, tokenizer = loaded
  fits = BENCHMARKS["mmlu"].load(os.path.join(FIXTURES, "mmlu_test.jsonl"), shots=0)
  long = Item(id="long", prompt="filler " * 20 + fits[0].prompt, tags=("direct",), gold="C",
              num_choices=4)
  calls = _spy(monkeypatch)
  result = runner.evaluate(model, tokenizer, BENCHMARKS["mmlu"], [long, *fits],
                           max_context=94, progress=False)  # the others are 81 to 93 tokens
  assert calls == [([81, 87, 93], [1, 1, 1])]  # the long one is never generated for
  assert result["overlong_prompts"] == 1
  first = result["per_item"][0]
  assert (first["id"], first["output"], first["overlong"]) == ("long", "", True)
  assert first["scores"] == {"accuracy": 0.0, "accuracy_1n": 0.25, "valid": 0.0}
  assert not any(r["overlong"] for r in result["per_item"][1:])
  # A prompt of exactly max_context tokens is over-long too (the authors' `>=`).
  again = runner.evaluate(model, tokenizer, BENCHMARKS["mmlu"], fits[:1], max_context=93,
                          progress=False)
  assert again["overlong_prompts"] == 1 and again["per_item"][0]["output"] == ""


def test_multiple_choice_generates_exactly_one_token(loaded, monkeypatch):
  model, tokenizer = loaded
  items = BENCHMARKS["mmlu"].load(os.path.join(FIXTURES, "mmlu_test.jsonl"), shots=0)
  calls = _spy(monkeypatch)
  result = runner.evaluate(model, tokenizer, BENCHMARKS["mmlu"], items, progress=False)
  assert [limit for _, limits in calls for limit in limits] == [1, 1, 1]
  assert result["settings"] == {"max_context": 256, "max_new_tokens": 1, "temperature": 0.0}
  assert all(len(tokenizer.encode(r["output"])) <= 1 for r in result["per_item"])


def test_majority_voting_samples_reproducibly_and_resumes_identically(loaded, tmp_path):
  """AIME: n samples per problem at the benchmark's temperature; a seed per batch of a plan
  over all items, so an interrupted and resumed run equals an uninterrupted one. (Before the
  test below: it compiles the sampled program that one compares against.)"""
  model, tokenizer = loaded
  aime = BENCHMARKS["aime25"]
  items = aime.load(os.path.join(FIXTURES, "aime.jsonl"), samples=3)
  kwargs = {"batch_size": 6, "max_new_tokens": 5, "progress": False}
  full = runner.evaluate(model, tokenizer, aime, items, cache_path=str(tmp_path / "a.jsonl"),
                         **kwargs)
  assert full["settings"] == {"max_context": 256, "max_new_tokens": 5, "temperature": 0.6,
                              "seed": 0, "batch_size": 6}
  outputs = [r["output"] for r in full["per_item"]]
  assert len(set(outputs)) > 1  # samples, not one greedy answer repeated
  assert {"maj_pass@1", "maj_pass@100", "pass@1", "samples"} <= set(full["summary"])
  lines = open(tmp_path / "a.jsonl").read().splitlines()
  (tmp_path / "b.jsonl").write_text("\n".join(lines[::2]) + "\n")  # an interrupted run
  resumed = runner.evaluate(model, tokenizer, aime, items, cache_path=str(tmp_path / "b.jsonl"),
                            **kwargs)
  assert [r["output"] for r in resumed["per_item"]] == outputs
  with pytest.raises(runner.StaleCacheError, match="seed 0, batch_size 6, not of .* seed 1"):
    runner.evaluate(model, tokenizer, aime, items, cache_path=str(tmp_path / "a.jsonl"),
                    seed=1, **kwargs)
  with pytest.raises(runner.StaleCacheError, match="temperature 0.6.*temperature 1.0"):
    runner.evaluate(model, tokenizer, aime, items, cache_path=str(tmp_path / "a.jsonl"),
                    temperature=1.0, **kwargs)


def test_generate_within_gives_the_tokens_of_exact_limits(loaded, monkeypatch):
  """The compiled length rounds up (fewer programs); the outputs are cut back to the limits."""
  model, tokenizer = loaded
  monkeypatch.setattr(runner, "LIMIT_BUCKET", 4)
  items = BENCHMARKS["aime25"].load(os.path.join(FIXTURES, "aime.jsonl"), samples=3)
  prompts = [prompt_tokens(tokenizer, item.prompt, item.tags) for item in items]
  seen = []
  monkeypatch.setattr(runner, "generate", lambda m, p, **k: seen.append(k["max_new_tokens"])
                      or generate(m, p, **k))
  sampling, limits = Sampling(temperature=0.6), [5, 3, 5, 3, 5, 3]  # sampled: the harder case
  got = runner.generate_within(model, prompts, limits, sampling=sampling, seed=3)
  assert seen == [[8, 3, 5, 3, 5, 3]]  # compiled for 8 new tokens
  exact = generate(model, prompts, max_new_tokens=limits, sampling=sampling, seed=3)
  assert got == exact and len(set(map(tuple, got))) > 1


def test_cli_writes_json_and_markdown_and_names_bad_arguments(hf_dir, tmp_path, capsys):
  data = _gsm8k_file(tmp_path / "gsm8k.jsonl", 2)
  out = tmp_path / "evals"
  assert eval_main(["--model", hf_dir, "--task", f"gsm8k={data}", "--out", str(out),
                    "--max-new-tokens", "6", "--batch-size", "2", "--no-progress"]) == 0
  results = json.loads((out / "results.json").read_text())
  first = results["results"][0]
  assert first["benchmark"] == "gsm8k" and first["items"] == 2
  assert first["overlong_prompts"] == 0 and first["settings"]["max_new_tokens"] == 6
  assert "| gsm8k | 2 |" in (out / "results.md").read_text()
  with pytest.raises(SystemExit):
    eval_main(["--model", hf_dir, "--task", f"gsm8kk={data}"])
  assert "gsm8kk" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    eval_main(["--model", str(tmp_path), "--task", f"gsm8k={data}"])
  assert "neither a training run" in capsys.readouterr().err


def test_cli_help_states_the_authors_defaults(capsys):
  with pytest.raises(SystemExit):
    eval_main(["--help"])
  text = " ".join(capsys.readouterr().out.split())
  assert "the paper authors' evaluation code" in text
  assert ("gsm8k 0-shot, tags synth,cot, context 3072, new tokens up to the context, greedy"
          in text)
  assert "arc_challenge 25-shot from validation, tags direct, context 4096, new tokens 1" in text
  assert "aime25 0-shot, tags synth,cot, context 4096, new tokens up to the context, 256 " \
         "samples at temperature 0.6" in text
  assert "high_school_european_history: 3" in text and "drop 3-shot (fixed examples)" in text


def test_chat_answers_each_line(hf_dir, loaded):
  # Prompts of 33 to 48 tokens, as the GSM8K items above: one padded shape, one compiled
  # decoder in the chat process; here the one the tests above compiled for two rows.
  instructions = ["What is 1 + 1? Reply with the number.", "Sort these numbers: 3 1 2 5 4 9 8 7"]
  done = subprocess.run([sys.executable, "-m", "hrm_jax.eval.chat", "--model", hf_dir,
                         "--max-new-tokens", "6"], input="\n".join(instructions) + "\n\n",
                        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"))
  assert done.returncode == 0, done.stderr[-2000:]
  # Each line is the greedy answer to that instruction, prompted with the default tags.
  model, tokenizer = loaded
  prompts = [prompt_tokens(tokenizer, text, ("synth", "direct")) for text in instructions]
  assert all(32 < len(p) <= 48 for p in prompts)
  expected = [tokenizer.decode(answer) for answer in generate(model, prompts, max_new_tokens=6)]
  assert done.stdout == "".join(answer + "\n" for answer in expected)


@pytest.fixture(scope="module")
def other_hf_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("other_model"))
  hf_io.save_hf(make_model(CONFIG, seed=1), directory)
  return directory


def test_a_cache_of_another_model_or_settings_is_refused_not_reused(hf_dir, other_hf_dir,
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
  # The same model with another answer length or context would score other outputs: refused.
  model, tokenizer, identity = runner.load_model_and_identity(hf_dir)
  items = BENCHMARKS["gsm8k"].load(data)
  path = str(out / "gsm8k.predictions.jsonl")
  with pytest.raises(runner.StaleCacheError, match="max_new_tokens 6, .*not of .* max_new_tokens 7"):
    runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_new_tokens=7,
                    cache_path=path, cache_key=identity, progress=False)
  with pytest.raises(runner.StaleCacheError, match="max_context 256, .*not of .* max_context 99"):
    runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_new_tokens=6,
                    max_context=99, cache_path=path, cache_key=identity, progress=False)
  # The same model and settings resume from it.
  again = runner.evaluate(model, tokenizer, BENCHMARKS["gsm8k"], items, max_new_tokens=6,
                          cache_path=path, cache_key=identity, progress=False)
  cached = {r["id"]: r["output"] for r in map(json.loads, cache.splitlines())}
  assert {r["id"]: r["output"] for r in again["per_item"]} == cached


def test_cli_rejects_a_batch_size_of_zero(hf_dir, tmp_path, capsys):
  data = _gsm8k_file(tmp_path / "gsm8k.jsonl", 1)
  with pytest.raises(SystemExit) as exit_:
    eval_main(["--model", hf_dir, "--task", f"gsm8k={data}", "--batch-size", "0"])
  assert exit_.value.code == 2 and "error: --batch-size 0: must be at least 1" in \
      capsys.readouterr().err
