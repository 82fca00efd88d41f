"""tpu_gpu_launch: the plan, the estimator, the preflight check, the flags, and the launch
scripts run for real on CPU (two processes through the SSH launcher) or against stand-ins for
gcloud, srun and ssh that record what they were asked to do."""

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from hrm_jax.model.flops import train_flops
from hrm_jax.train import devices
from hrm_jax.train.config import load_config, model_config
from reflex_jax.run import grid
from tests.helpers import run_to_completion, xla_flags
from tpu_gpu_launch import estimate, plan, preflight
from tpu_gpu_launch.distributed import initialize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HRM = os.path.join(ROOT, "experiments", "hrm")


def hrm_config(size, *overrides):
  return load_config([os.path.join(HRM, f"{size}.yaml")], list(overrides))


# --- plan -------------------------------------------------------------------------------------

def test_paper_xl_on_two_h100_nodes_keeps_fsdp_inside_a_node():
  p = plan.plan(hrm_config("XL"), devices=16, device="H100", hosts=2)
  assert (p.mesh.data, p.mesh.fsdp, p.mesh.tensor) == (2, 8, 1)
  assert (p.batch_size, p.accumulation, p.rows_per_device) == (48, 1, 3)
  assert p.memory_gib < p.memory_limit_gib


@pytest.mark.parametrize("size,devices,hosts,device", [
    ("B", 1, 1, "H100"), ("B", 8, 1, "v5e"), ("XL", 8, 1, "NVIDIA H100 80GB HBM3"),
    ("L", 14, 2, "TPU v4"), ("XL", 32, 4, "H100"), ("B", 64, 16, "v5p")])
def test_plans_realize_the_global_batch_within_memory(size, devices, hosts, device):
  config = hrm_config(size)  # 48 rows a step; L 42 (the authors' 172,032 tokens)
  p = plan.plan(config, devices, device, hosts)
  m = p.mesh
  assert m.data * m.fsdp * m.tensor == devices
  assert p.accumulation * p.rows_per_device * m.data * m.fsdp == p.batch_size == \
      config.data.batch_size
  model = model_config(config)
  assert model.num_attention_heads % m.tensor == 0
  assert p.memory_gib <= p.memory_limit_gib
  # The microbatch is the largest that fits: every fewer-microbatch split would not.
  per_row = plan.activation_bytes_per_row(model, config.data.seq_len, 5) / m.tensor / plan.GIB
  state = p.memory_gib - p.rows_per_device * per_row
  rows_each = p.batch_size // (m.data * m.fsdp)
  for fewer in range(1, p.accumulation):
    if rows_each % fewer == 0:
      assert state + rows_each // fewer * per_row > p.memory_limit_gib


def test_a_batch_that_does_not_divide_over_the_devices_is_named():
  with pytest.raises(plan.PlanError, match="42 rows per step cannot be laid out on 16 devices"):
    plan.plan(hrm_config("L"), 16, "TPU v4", 4)


def test_global_tokens_change_rows_and_accumulation():
  p = plan.plan(hrm_config("B"), 1, "H100", global_tokens=96 * 4096)
  assert p.batch_size == 96 and p.accumulation * p.rows_per_device == 96


def test_plan_errors_name_the_problem():
  with pytest.raises(plan.PlanError, match="unknown device 'K80'"):
    plan.plan(hrm_config("B"), 1, "K80")
  with pytest.raises(plan.PlanError, match="does not fit.*16 GiB TPU v5 lite"):
    plan.plan(hrm_config("XL"), 1, "v5e")
  with pytest.raises(plan.PlanError, match="not a whole number"):
    plan.plan(hrm_config("B"), 8, "H100", global_tokens=1000)
  with pytest.raises(plan.PlanError, match="cannot be laid out on 256 devices"):
    plan.plan(hrm_config("B"), 256, "v6e", 64)


def test_one_device_table_serves_the_mfu_the_plan_and_the_estimate():
  """jax's device_kind (the training loop's MFU), a typed name and an alias (plan, estimate)
  find the same row of hrm_jax/train/devices.py."""
  h100 = devices.find("NVIDIA H100 80GB HBM3")
  assert h100 is devices.find("H100") is plan.device_spec("H100")
  assert (h100.memory_gib, h100.peak_flops["bfloat16"]) == (80, 989e12)
  assert devices.find("v5e") is devices.find("TPU v5 lite") is plan.device_spec("v5litepod")
  assert devices.find("TPU v5") is devices.find("v5p")  # the device_kind of a v5p chip
  assert devices.find("cpu") is None
  with pytest.raises(plan.PlanError, match="unknown device 'cpu'"):
    plan.device_spec("cpu")


def test_tpu_types_give_chips_hosts_and_device():
  assert plan.tpu_topology("v5litepod-8") == (8, 1, "TPU v5 lite")
  assert plan.tpu_topology("v5litepod-16") == (16, 4, "TPU v5 lite")
  assert plan.tpu_topology("v4-32") == (16, 4, "TPU v4")
  assert plan.tpu_topology("v5p-8") == (4, 1, "TPU v5p")
  assert plan.tpu_topology("v6e-256") == (256, 64, "TPU v6 lite")
  with pytest.raises(plan.PlanError, match="unknown TPU type 'v9-8'"):
    plan.tpu_topology("v9-8")


def test_plan_cli_prints_overrides_the_trainer_accepts(capsys):
  assert plan.main(["--config", os.path.join(HRM, "B.yaml"), "--tpu", "v4-32",
                    "--overrides"]) == 0
  overrides = capsys.readouterr().out.split()
  config = hrm_config("B", *overrides)
  assert config.mesh.fsdp == 16 and config.data.batch_size == 48
  with pytest.raises(SystemExit) as done:
    plan.main(["--config", os.path.join(HRM, "B.yaml"), "--devices", "8"])
  assert done.value.code == 2 and "--devices and --device" in capsys.readouterr().err


# --- estimate ---------------------------------------------------------------------------------

def test_paper_xl_46_hours_on_16_h100_implies_a_plausible_mfu():
  config = hrm_config("XL")
  mfu = estimate.mfu_for_hours(config, 16, "H100", 46)
  assert 0.3 < mfu < 0.6
  e = estimate.estimate(config, 16, "H100", mfu)
  assert e.hours == pytest.approx(46)
  assert e.steps == 305_000 and e.tokens == pytest.approx(305_000 * 48 * 4096)
  assert e.cost == pytest.approx(46 * 16 * devices.find("H100").price)
  model = model_config(config)
  # The staircase spends 20 % of the steps growing the window 2 → 5.
  assert train_flops(model, 4096, 2) < e.flops_per_token < train_flops(model, 4096, 5)
  assert estimate.estimate(config, 32, "H100", mfu).hours == pytest.approx(23)


def test_estimate_reads_the_mfu_a_run_measured(tmp_path, capsys):
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text("".join(json.dumps({"step": s, "mfu": m}) + "\n"
                             for s, m in ((100, 0.05), (200, 0.40), (300, 0.42), (400, 0.44))))
  assert estimate.measured_mfu(str(metrics)) == pytest.approx(0.42)  # the first line skipped
  assert estimate.main(["--config", os.path.join(HRM, "B.yaml"), "--devices", "8",
                        "--device", "H100", "--metrics", str(metrics), "--price", "2"]) == 0
  out = capsys.readouterr().out
  assert "MFU                 42.0%" in out and "approximate cost" in out
  (tmp_path / "cpu.jsonl").write_text(json.dumps({"step": 1, "loss": 3.0}) + "\n")
  with pytest.raises(estimate.PlanError, match="no mfu values"):
    estimate.measured_mfu(str(tmp_path / "cpu.jsonl"))
  with pytest.raises(estimate.PlanError, match="MFU must be in"):
    estimate.estimate(hrm_config("B"), 8, "H100", 1.5)


# --- preflight --------------------------------------------------------------------------------

# A small HRM-Text step (one gradient window, a shallow model: seconds to compile on CPU).
SMALL_HRM = ["data.batch_size=8", "data.seq_len=64", "mesh.data=1", "mesh.fsdp=8",
             "schedule.bp_end=2", "model={hidden_size: 64, head_dim: 16, "
             "num_layers_per_stack: 1, H_cycles: 1, L_cycles: 2}"]


def test_preflight_prints_devices_mesh_memory_and_step_time(capsys):
  # The pure-JAX toy task: the Reflex check without compiling MJX physics (tens of seconds).
  code = preflight.main([*SMALL_HRM, "--hrm-steps", "1", "--matmul-size", "256",
                         "--all-reduce-mb", "1", "--reflex-env", "toy/point_mass",
                         "--num-envs", "8"])
  out = capsys.readouterr().out
  assert code == 0, out
  assert f"devices: {jax.device_count()} × cpu" in out
  assert "all-reduce of 1 MiB per device over 8 devices" in out and "correct" in out
  assert "mesh {'data': 1, 'fsdp': 8, 'tensor': 1}" in out
  assert "memory per device (XLA):" in out
  assert "tokens/s" in out and "Reflex env toy/point_mass: 8 envs" in out
  assert out.rstrip().endswith("preflight passed")


def test_preflight_fails_when_the_step_does_not_fit(capsys):
  code = preflight.main([*SMALL_HRM, "--skip", "reflex", "--matmul-size", "64",
                         "--all-reduce-mb", "1", "--memory-limit-gb", "0.0001"])
  assert code == 1
  assert "preflight FAILED: the HRM-Text step needs" in capsys.readouterr().err


# --- flags and launch scripts -----------------------------------------------------------------

def _bash(script: str, env=None, cwd=ROOT):
  return subprocess.run(["bash", "-c", script], env={**os.environ, **(env or {})}, cwd=cwd,
                        capture_output=True, text=True, timeout=300, check=False)


def test_recommended_gpu_flags_are_known_to_the_pinned_jaxlib():
  # XLA aborts at start-up on an unknown flag, and the CPU jaxlib knows the GPU flags.
  check = ("source tpu_gpu_launch/env.sh gpu && XLA_FLAGS=\"$HRM_XLA_FLAGS $REFLEX_XLA_FLAGS "
           "$EXTRA\" JAX_PLATFORMS=cpu {} -c 'import jax; jax.numpy.zeros(1).block_until_ready()'"
           ).format(sys.executable)
  good = _bash(check, {"EXTRA": ""})
  assert good.returncode == 0, good.stderr[-2000:]
  bad = _bash(check, {"EXTRA": "--xla_gpu_no_such_flag=true"})
  assert bad.returncode != 0
  unknown = _bash("source tpu_gpu_launch/env.sh fpga")
  assert unknown.returncode == 2 and "unknown platform 'fpga'" in unknown.stderr


def _stand_in(directory, name, log):
  """An executable `name` on PATH that appends its arguments (and key env vars) to `log`."""
  path = directory / name
  path.write_text("#!/usr/bin/env bash\n"
                  f"echo \"{name} $* | DISTRIBUTED=${{DISTRIBUTED:-}} "
                  "NUM_DEVICES=${NUM_DEVICES:-} JAX_LOCAL_DEVICE_IDS=${JAX_LOCAL_DEVICE_IDS:-}\""
                  f" >> {log}\n")
  path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_tpu_vm_script_drives_gcloud_on_every_worker(tmp_path):
  log = tmp_path / "calls.log"
  _stand_in(tmp_path, "gcloud", log)
  env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "TPU_NAME": "hrm-1",
         "TPU_ZONE": "us-central2-b", "TPU_TYPE": "v4-32"}
  for action in (["create"], ["run", "hrm", "schedule.steps=10"], ["delete"]):
    done = _bash(f"tpu_gpu_launch/tpu_vm.sh {' '.join(action)}",
                 {**env, "CHECKPOINT_DIR": "gs://bucket/hrm"})
    assert done.returncode == 0, done.stderr
  create, run, delete = log.read_text().splitlines()
  assert "tpu-vm create hrm-1 --zone us-central2-b --accelerator-type v4-32" in create
  assert "--version tpu-ubuntu2204-base" in create
  assert "tpu-vm ssh hrm-1 --zone us-central2-b --worker=all --command" in run
  assert "PLATFORM=tpu DEVICE=v4-32" in run and "CHECKPOINT_DIR=gs://bucket/hrm" in run
  assert "tpu_gpu_launch/run_job.sh hrm schedule.steps=10" in run
  assert "tpu-vm delete hrm-1" in delete


def test_slurm_script_runs_one_process_per_node_on_all_its_gpus(tmp_path):
  log = tmp_path / "calls.log"
  _stand_in(tmp_path, "srun", log)
  env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "SLURM_NNODES": "2",
         "SLURM_GPUS_ON_NODE": "8", "SLURM_SUBMIT_DIR": ROOT}
  assert _bash("bash tpu_gpu_launch/gpu_slurm.sbatch hrm schedule.steps=5", env).returncode == 0
  assert _bash("bash tpu_gpu_launch/gpu_slurm.sbatch reflex", env).returncode == 0
  hrm, reflex = log.read_text().splitlines()
  assert hrm.startswith("srun tpu_gpu_launch/run_job.sh hrm schedule.steps=5")
  assert "DISTRIBUTED=1 NUM_DEVICES=16 JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7" in hrm
  assert "SHARD=\"$SLURM_PROCID/$SLURM_NTASKS\"" in reflex and "run_job.sh reflex" in reflex


def test_run_job_rejects_an_unknown_job_and_a_multi_host_reflex_grid():
  unknown = _bash("tpu_gpu_launch/run_job.sh train", {"PLATFORM": "cpu"})
  assert unknown.returncode == 2 and "unknown job 'train'" in unknown.stderr
  grid_job = _bash("tpu_gpu_launch/run_job.sh reflex", {"PLATFORM": "cpu", "DISTRIBUTED": "1"})
  assert grid_job.returncode == 2 and "SHARD=i/n" in grid_job.stderr


@pytest.mark.long
def test_ssh_launcher_trains_hrm_as_two_processes_of_one_job(tmp_path):
  """Two CPU processes, 2 devices each, one global mesh: the same loss on both, metrics
  written once, and a checkpoint (in CHECKPOINT_DIR) that one process restores whole."""
  run_dir = tmp_path / "run"
  env = {**os.environ, "SSH": os.path.join(ROOT, "tests", "launch", "fake_ssh.sh"),
         "HOSTS": "localhost localhost", "PLATFORM": "cpu", "DEVICE": "", "SIZE": "tiny",
         "RUN_DIR": str(run_dir), "CHECKPOINT_DIR": str(tmp_path / "ckpt"),
         "PORT": str(20000 + os.getpid() % 20000),
         "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": xla_flags(2)}
  # The tiny config with a shallower, narrower model and one gradient window: one program,
  # compiled in seconds.
  done = run_to_completion(
      ["tpu_gpu_launch/gpu_ssh.sh", "hrm", "schedule.steps=4", "data.batch_size=8",
       "data.seq_len=64", "log.every=2", "log.eval_every=0", "log.checkpoint_every=4",
       "log.progress=false", "mesh.data=-1", "schedule.bp_schedule=fixed", "schedule.bp_end=2",
       "model={hidden_size: 32, num_attention_heads: 2, head_dim: 16, "
       "intermediate_size: 64, num_layers_per_stack: 1, H_cycles: 1, L_cycles: 2}"],
      env=env, cwd=ROOT, timeout=600)
  out = done.stdout
  assert "[localhost:0] [process 0/2] 2 local of 4 devices" in out
  assert "[localhost:1] [process 1/2] 2 local of 4 devices" in out
  finals = [line.split("last metrics: ")[1] for line in out.splitlines()
            if "finished at step 4" in line]
  losses = [eval(f, {"np": np})["loss"] for f in finals]  # a printed dict of floats
  assert len(losses) == 2 and losses[0] == losses[1]
  lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  assert [m["step"] for m in lines] == [2, 4] and lines[-1]["loss"] == losses[0]

  assert (tmp_path / "ckpt" / "4").is_dir() and not (run_dir / "checkpoints").exists()
  from hrm_jax.train.loop import load_trained
  model, config = load_trained(str(run_dir), ema=False)
  assert config.schedule.steps == 4
  embedding = np.asarray(model.embed_tokens.embedding.value)
  assert embedding.shape == (512, 32) and np.isfinite(embedding).all()  # the overridden width


# The README forms exactly as written: no extra arguments, XLA_FLAGS unset (the test suite's
# conftest sets it for everything else), and values with spaces and a `;` that must stay data.
# PYTHON is a stand-in: the plan runs for real, the job itself is recorded, not started.

HRM_GPU_FLAGS = ("--xla_gpu_enable_latency_hiding_scheduler=true "
                 "--xla_gpu_enable_while_loop_double_buffering=true")
H100 = "NVIDIA H100 80GB HBM3"  # what nvidia-smi calls it
LAUNCHER_SETTINGS = ("XLA_FLAGS", "PLATFORM", "DEVICE", "NUM_DEVICES", "NUM_HOSTS", "DISTRIBUTED",
                     "SIZE", "GLOBAL_TOKENS", "RUN_DIR", "CHECKPOINT_DIR", "GRID", "SHARD",
                     "PORT", "HOSTS", "GPUS_PER_HOST", "REMOTE_DIR", "TPU_TYPE", "TPU_RUNTIME")


def _fake_python(directory, log):
  """A PYTHON for the launchers that runs the plan (`-m tpu_gpu_launch.plan`, `-c`) for real and
  records any job in `log` (one JSON line: its arguments and settings) instead of starting it.
  With FAKE_PY_START_XLA=1 it also starts XLA with the XLA_FLAGS it was given."""
  path = directory / "python"
  path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
      import json, os, sys
      args = sys.argv[1:]
      if args[:2] == ["-m", "tpu_gpu_launch.plan"] or args[:1] == ["-c"]:
        os.execv(sys.executable, [sys.executable, *args])
      keys = {LAUNCHER_SETTINGS!r} + ("JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID")
      with open({str(log)!r}, "a") as f:
        f.write(json.dumps({{"argv": args, **{{k: os.environ.get(k) for k in keys}}}}) + "\\n")
      if os.environ.get("FAKE_PY_START_XLA"):
        import jax
        jax.numpy.zeros(1).block_until_ready()
      """))
  path.chmod(path.stat().st_mode | stat.S_IEXEC)
  return str(path)


def _readme_env(tmp_path, **settings):
  """The environment of a user who typed a README line: none of the launchers' settings (nor
  the suite's XLA_FLAGS) unless given, stand-ins from tmp_path first on PATH."""
  env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_SETTINGS}
  env.update(PATH=f"{tmp_path}:{os.environ['PATH']}", JAX_PLATFORMS="cpu",
             PYTHON=_fake_python(tmp_path, tmp_path / "jobs.log"), **settings)
  return env


def _launch(command, env, cwd=ROOT):
  """Runs a README line (split as the shell would) with exactly `env`."""
  return subprocess.run(shlex.split(command), env=env, cwd=cwd, capture_output=True, text=True,
                        timeout=300, check=False)


def _jobs(tmp_path):
  log = tmp_path / "jobs.log"
  jobs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
  log.unlink(missing_ok=True)
  return jobs


def _executable(path, text):
  path.write_text(text)
  path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_run_job_sets_xla_flags_only_with_something_in_them(tmp_path):
  # A blank XLA_FLAGS makes XLA abort at start-up, so on CPU and TPU it stays unset.
  for platform in ("cpu", "tpu"):
    env = _readme_env(tmp_path, PLATFORM=platform, FAKE_PY_START_XLA="1")
    done = _launch("tpu_gpu_launch/run_job.sh reflex", env)
    assert done.returncode == 0, done.stderr[-2000:]
    [job] = _jobs(tmp_path)
    assert job["argv"] == ["-m", "reflex_jax.run.grid", "--config",
                           "experiments/reflex/grid_gpu.yaml", "--shard", "0/1"]
    assert job["XLA_FLAGS"] is None
  # The job's flags first, then the user's (later flags win); nothing blank around them.
  reflex_flags = "--xla_gpu_triton_gemm_any=true"
  for preset, expected in ((None, reflex_flags),
                           ("--xla_dump_to=/tmp/x", f"{reflex_flags} --xla_dump_to=/tmp/x")):
    env = _readme_env(tmp_path, PLATFORM="gpu", **({"XLA_FLAGS": preset} if preset else {}))
    assert _launch("tpu_gpu_launch/run_job.sh reflex", env).returncode == 0
    assert _jobs(tmp_path)[0]["XLA_FLAGS"] == expected
  env = _readme_env(tmp_path, PLATFORM="cpu", XLA_FLAGS="--xla_dump_to=/tmp/x")
  assert _launch("tpu_gpu_launch/run_job.sh reflex", env).returncode == 0
  assert _jobs(tmp_path)[0]["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"


def test_run_job_takes_the_device_as_data_and_names_a_bad_size(tmp_path):
  marker = tmp_path / "ran"
  # Pasted into Python source, this DEVICE would have created the marker.
  env = _readme_env(tmp_path, PLATFORM="tpu",
                    DEVICE=f"v4-8')[1]); open({str(marker)!r}, 'w'); print(tpu_topology('v4-8")
  done = _launch("tpu_gpu_launch/run_job.sh preflight", env)
  assert done.returncode != 0 and "unknown TPU type" in done.stderr
  env = _readme_env(tmp_path, PLATFORM="cpu", SIZE=f"B; touch {marker}")
  done = _launch("tpu_gpu_launch/run_job.sh hrm", env)
  assert done.returncode == 2 and "no HRM-Text config experiments/hrm/B; touch" in done.stderr
  assert not marker.exists() and _jobs(tmp_path) == []


def test_gpu_single_readme_forms(tmp_path):
  _executable(tmp_path / "nvidia-smi",
              "#!/usr/bin/env bash\n"
              f"for i in 0 1 2 3 4 5 6 7; do [[ $1 == -L ]] && echo \"GPU $i: {H100}\" "
              f"|| echo '{H100}'; done\n")
  env = _readme_env(tmp_path)
  for line in ("tpu_gpu_launch/gpu_single.sh preflight", "tpu_gpu_launch/gpu_single.sh reflex"):
    done = _launch(line, env)
    assert done.returncode == 0, done.stderr[-2000:]
  done = _launch("tpu_gpu_launch/gpu_single.sh hrm", {**env, "SIZE": "B"})
  assert done.returncode == 0, done.stderr[-2000:]
  preflight_job, reflex_job, hrm_job = _jobs(tmp_path)
  assert preflight_job["argv"][:4] == ["-m", "tpu_gpu_launch.preflight", "--hrm-config",
                                       "experiments/hrm/B.yaml"]
  assert "mesh.fsdp=8" in preflight_job["argv"] and "" not in preflight_job["argv"]
  assert preflight_job["DEVICE"] == H100 and preflight_job["NUM_DEVICES"] == "8"
  assert preflight_job["XLA_FLAGS"] == HRM_GPU_FLAGS
  assert reflex_job["argv"][-2:] == ["--shard", "0/1"]
  assert reflex_job["XLA_FLAGS"] == "--xla_gpu_triton_gemm_any=true"
  assert hrm_job["argv"][:4] == ["-m", "hrm_jax.train", "--config", "experiments/hrm/B.yaml"]
  assert hrm_job["argv"][-1] == "log.dir=runs/hrm-B" and "" not in hrm_job["argv"]


def test_gpu_ssh_readme_forms_keep_values_with_spaces_and_semicolons_as_data(tmp_path):
  marker = tmp_path / "ran"
  payload = f"; touch {marker}"
  env = _readme_env(tmp_path, SSH=os.path.join(ROOT, "tests", "launch", "fake_ssh.sh"),
                    HOSTS="localhost localhost", DEVICE=H100)
  done = _launch("tpu_gpu_launch/gpu_ssh.sh preflight", env)
  assert done.returncode == 0, done.stdout[-2000:]
  jobs = sorted(_jobs(tmp_path), key=lambda job: job["JAX_PROCESS_ID"])
  assert [job["JAX_PROCESS_ID"] for job in jobs] == ["0", "1"]
  for job in jobs:
    assert job["argv"][:5] == ["-m", "tpu_gpu_launch.distributed", "tpu_gpu_launch.preflight",
                               "--hrm-config", "experiments/hrm/B.yaml"]
    assert "mesh.data=2" in job["argv"] and "" not in job["argv"]
    assert job["DEVICE"] == H100 and job["NUM_DEVICES"] == "16"
    assert job["JAX_COORDINATOR_ADDRESS"] == "localhost:12355"
    assert job["XLA_FLAGS"] == HRM_GPU_FLAGS
  # SIZE=XL CHECKPOINT_DIR=... gpu_ssh.sh hrm, with spaces and a `;` in the directories and
  # the device (the plan matches the name inside it).
  run_dir, checkpoints = f"{tmp_path}/my runs{payload}", f"/shared/ckpt/hrm XL{payload}"
  done = _launch("tpu_gpu_launch/gpu_ssh.sh hrm", {**env, "SIZE": "XL", "RUN_DIR": run_dir,
                                                   "CHECKPOINT_DIR": checkpoints,
                                                   "DEVICE": f"{H100}{payload}"})
  assert done.returncode == 0, done.stdout[-2000:]
  jobs = _jobs(tmp_path)
  assert len(jobs) == 2
  for job in jobs:
    assert job["argv"][-2:] == [f"log.dir={run_dir}", f"log.checkpoint_dir={checkpoints}"]
    assert "experiments/hrm/XL.yaml" in job["argv"] and job["DEVICE"] == f"{H100}{payload}"
  done = _launch("tpu_gpu_launch/gpu_ssh.sh reflex", env)
  assert done.returncode == 0, done.stdout[-2000:]
  shards = sorted(job["argv"][-1] for job in _jobs(tmp_path))
  assert shards == ["0/2", "1/2"]
  # Values that must be simple are checked before any host starts, with the reason.
  for setting, message in (({"PORT": f"12355{payload}"}, "PORT must be a port number"),
                           ({"HOSTS": f"localhost{payload}"}, "is not a host name"),
                           ({"HOSTS": "-oProxyCommand=sh"}, "is not a host name"),
                           ({"GPUS_PER_HOST": f"a[$(touch {marker})]"}, "GPUS_PER_HOST must be")):
    done = _launch("tpu_gpu_launch/gpu_ssh.sh hrm", {**env, **setting})
    assert done.returncode == 2 and message in done.stderr, (setting, done.stderr)
  done = subprocess.run(["tpu_gpu_launch/gpu_ssh.sh", f"hrm{payload}"], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=60, check=False)
  assert done.returncode == 2 and "unknown job" in done.stderr
  # Others reach the host as data, where run_job.sh turns them down.
  done = _launch("tpu_gpu_launch/gpu_ssh.sh hrm", {**env, "SIZE": f"B{payload}"})
  assert done.returncode == 2 and "no HRM-Text config" in done.stdout
  assert not marker.exists() and _jobs(tmp_path) == []


def test_slurm_readme_forms_run_the_job_on_each_node(tmp_path):
  # srun starts the task here, as node 0 of 2.
  _executable(tmp_path / "srun", "#!/usr/bin/env bash\n"
                                 "SLURM_PROCID=0 SLURM_NTASKS=2 exec \"$@\"\n")
  env = _readme_env(tmp_path, SLURM_NNODES="2", SLURM_GPUS_ON_NODE="8", SLURM_SUBMIT_DIR=ROOT)
  for line in ("bash tpu_gpu_launch/gpu_slurm.sbatch preflight",
               "bash tpu_gpu_launch/gpu_slurm.sbatch reflex"):
    done = _launch(line, env)
    assert done.returncode == 0, done.stderr[-2000:]
  done = _launch("bash tpu_gpu_launch/gpu_slurm.sbatch hrm", {**env, "DEVICE": H100})
  assert done.returncode == 0, done.stderr[-2000:]
  preflight_job, reflex_job, hrm_job = _jobs(tmp_path)
  assert preflight_job["argv"][:3] == ["-m", "tpu_gpu_launch.distributed",
                                       "tpu_gpu_launch.preflight"]
  assert "mesh.data=2" in preflight_job["argv"] and "" not in preflight_job["argv"]
  assert preflight_job["XLA_FLAGS"] == HRM_GPU_FLAGS and preflight_job["NUM_DEVICES"] == "16"
  assert reflex_job["argv"][-2:] == ["--shard", "0/2"] and reflex_job["DISTRIBUTED"] == "0"
  assert hrm_job["DEVICE"] == H100 and hrm_job["argv"][-1] == "log.dir=runs/hrm-B"
  bad = _launch("bash tpu_gpu_launch/gpu_slurm.sbatch train", env)
  assert bad.returncode == 2 and "unknown job 'train'" in bad.stderr


def test_tpu_vm_readme_forms_keep_values_with_spaces_and_semicolons_as_data(tmp_path):
  """gcloud's stand-in records its arguments and runs `--command` here, as each worker's shell
  would (tmp_path is the worker's home; `my runs` in it is this checkout)."""
  marker = tmp_path / "ran"
  payload = f"; touch {marker}"
  calls = tmp_path / "gcloud.log"
  _executable(tmp_path / "gcloud", textwrap.dedent(f"""\
      #!/usr/bin/env bash
      printf '%s\\n' "$*" >> {shlex.quote(str(calls))}
      args=("$@")
      for i in "${{!args[@]}}"; do
        if [[ ${{args[$i]}} == --command && $FAKE_GCLOUD_RUN == 1 ]]; then
          cd {shlex.quote(str(tmp_path))} && exec bash -c "${{args[$((i + 1))]}}"
        fi
      done
      """))
  _executable(tmp_path / "git", "#!/usr/bin/env bash\n: > \"${@: -2:1}\"\n")  # archive -o FILE HEAD
  (tmp_path / "my runs").symlink_to(ROOT)
  env = _readme_env(tmp_path, TPU_NAME="hrm-1", TPU_ZONE="us-central2-b", TPU_TYPE="v4-32",
                    REMOTE_DIR="my runs")
  for line in ("create", "install", "ssh", "delete"):
    done = _launch(f"tpu_gpu_launch/tpu_vm.sh {line}", env)
    assert done.returncode == 0, done.stderr
  create, scp, install, ssh, delete = calls.read_text().splitlines()
  assert create.endswith("--accelerator-type v4-32 --version tpu-ubuntu2204-base")
  assert "tpu-vm scp" in scp and ssh.endswith("tpu-vm ssh hrm-1 --zone us-central2-b --worker=0")
  assert shlex.split(install.split("--command ", 1)[1])[:9] == [
      "mkdir", "-p", "my runs", "&&", "tar", "-xzf", "repo.tar.gz", "-C", "my runs"]
  assert "tpu-vm delete hrm-1" in delete
  env["FAKE_GCLOUD_RUN"] = "1"
  done = _launch("tpu_gpu_launch/tpu_vm.sh run preflight", env)
  assert done.returncode == 0, done.stderr[-2000:]
  [job] = _jobs(tmp_path)
  assert job["argv"][:5] == ["-m", "tpu_gpu_launch.distributed", "tpu_gpu_launch.preflight",
                             "--hrm-config", "experiments/hrm/B.yaml"]
  assert "mesh.fsdp=16" in job["argv"] and "" not in job["argv"]
  assert job["DEVICE"] == "v4-32" and job["XLA_FLAGS"] is None
  done = _launch("tpu_gpu_launch/tpu_vm.sh run hrm", {
      **env, "SIZE": "XL", "CHECKPOINT_DIR": "gs://my-bucket/hrm-XL", "RUN_DIR": "runs/hrm-XL"})
  assert done.returncode == 0, done.stderr[-2000:]
  [job] = _jobs(tmp_path)
  assert job["argv"][-2:] == ["log.dir=runs/hrm-XL", "log.checkpoint_dir=gs://my-bucket/hrm-XL"]
  assert "experiments/hrm/XL.yaml" in job["argv"]
  # The grid on a single-host type, with a space and a `;` in GRID and SHARD.
  grid_file, shard = f"my grid{payload}.yaml", f"1/2{payload}"
  done = _launch("tpu_gpu_launch/tpu_vm.sh run reflex",
                 {**env, "TPU_TYPE": "v4-8", "GRID": grid_file, "SHARD": shard})
  assert done.returncode == 0, done.stderr[-2000:]
  assert _jobs(tmp_path)[0]["argv"][-4:] == ["--config", grid_file, "--shard", shard]
  # Checked here before gcloud runs, with the reason...
  for setting, message in (({"TPU_TYPE": f"v4-32{payload}"}, "is not a TPU type"),
                           ({"TPU_NAME": "--project=other"}, "is not a TPU name"),
                           ({"TPU_ZONE": f"us-central2-b{payload}"}, "is not a zone")):
    done = _launch("tpu_gpu_launch/tpu_vm.sh run hrm", {**env, **setting})
    assert done.returncode == 2 and message in done.stderr, (setting, done.stderr)
  done = subprocess.run(["tpu_gpu_launch/tpu_vm.sh", "run", f"hrm{payload}"], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=60, check=False)
  assert done.returncode == 2 and "unknown job" in done.stderr
  # ... or on the worker, as data.
  done = _launch("tpu_gpu_launch/tpu_vm.sh run hrm", {**env, "SIZE": f"XL{payload}"})
  assert done.returncode == 2 and "no HRM-Text config" in done.stderr
  done = _launch("tpu_gpu_launch/tpu_vm.sh run hrm", {**env, "REMOTE_DIR": f"my runs{payload}"})
  assert done.returncode != 0
  assert not marker.exists() and _jobs(tmp_path) == []


def test_launch_scripts_pass_shellcheck():
  if shutil.which("shellcheck") is None:
    pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
  launch = os.path.join(ROOT, "tpu_gpu_launch")
  scripts = sorted(os.path.join(launch, name) for name in os.listdir(launch)
                   if name.endswith((".sh", ".sbatch")))
  scripts.append(os.path.join(ROOT, "tests", "launch", "fake_ssh.sh"))
  done = subprocess.run(["shellcheck", "--external-sources", *scripts], capture_output=True,
                        text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stdout[-4000:]


def test_distributed_wrapper_names_missing_settings(monkeypatch):
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
  with pytest.raises(SystemExit, match="set both JAX_NUM_PROCESSES and JAX_PROCESS_ID"):
    initialize()
  monkeypatch.setenv("JAX_PROCESS_ID", "0")
  monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
  with pytest.raises(SystemExit, match="JAX_COORDINATOR_ADDRESS"):
    initialize()


def test_grid_shards_split_the_cells_between_machines(monkeypatch):
  ran = []
  monkeypatch.setattr(grid, "run_experiment", lambda config, **kwargs: ran.append(config.out_dir))
  _, configs = grid.load_grid(os.path.join(ROOT, "experiments", "reflex", "grid_gpu.yaml"))
  shards = []
  for index in range(3):
    ran.clear()
    message = grid.run_grid("runs/g", configs, grid.parse_shard(f"{index}/3"))
    assert f"shard {index}/3 done" in message and "reflex_jax.run.report runs/g" in message
    shards.append(list(ran))
  everything = [c.out_dir for c in configs]
  assert sorted(sum(shards, [])) == sorted(everything) and len(set(sum(shards, []))) == 16
  for bad in ("3/3", "1", "a/b"):
    with pytest.raises(grid.run_config.ConfigError, match="--shard"):
      grid.parse_shard(bad)


def test_checkpoints_go_to_a_bucket_uri_unchanged_or_an_absolute_local_path(tmp_path):
  from hrm_jax.train.checkpoint import checkpoint_directory
  assert checkpoint_directory("runs/x", "gs://bucket/hrm-XL") == "gs://bucket/hrm-XL"
  assert checkpoint_directory("runs/x") == os.path.abspath("runs/x/checkpoints")
  assert checkpoint_directory(str(tmp_path), "elsewhere") == os.path.abspath("elsewhere")


# --- plan and estimate: invalid numbers are named, not tracebacks -----------------------------

@pytest.mark.parametrize("args, message", [
    (["--devices", "8", "--device", "H100", "--global-tokens", "-4096"],
     "plan error: --global-tokens -4096: must be positive"),
    (["--devices", "8", "--device", "H100", "--global-tokens", "0"],
     "plan error: --global-tokens 0: must be positive"),
    (["--devices", "0", "--device", "H100"], "plan error: --devices 0: must be positive"),
    (["--devices", "8", "--device", "H100", "--max-rows-per-device", "0"],
     "plan error: --max-rows-per-device 0: must be positive"),
    (["--devices", "8", "--device", "H100", "data.batch_size=0"],
     "plan error: data.batch_size=0 is invalid: it must be positive")])
def test_plan_cli_names_invalid_numbers(args, message, capsys):
  with pytest.raises(SystemExit) as done:
    plan.main(["--config", os.path.join(HRM, "B.yaml"), *args])
  assert done.value.code == 2 and capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("args, message", [
    (["--devices", "0", "--mfu", "0.4"], "estimate error: --devices 0: must be positive"),
    (["--devices", "0", "--target-hours", "46"], "estimate error: --devices 0: must be positive"),
    (["--devices", "8", "--target-hours", "0"], "estimate error: --target-hours 0.0: must be "
                                                "positive"),
    (["--devices", "8", "--mfu", "0.4", "--price", "-1"],
     "estimate error: --price -1.0: must not be negative")])
def test_estimate_cli_names_invalid_numbers(args, message, capsys):
  with pytest.raises(SystemExit) as done:
    estimate.main(["--config", os.path.join(HRM, "B.yaml"), "--device", "H100", *args])
  assert done.value.code == 2 and capsys.readouterr().err.strip() == message


def test_cli_modules_start_without_the_heavy_libraries_they_do_not_need():
  """Reading an HRM config (train CLI, plan, estimate) needs no Grain, and the Reflex CLI no
  scipy.stats until it writes a report: each costs 1.5-2.5 s at every start."""
  check = ("import sys, hrm_jax.train.config, tpu_gpu_launch.plan, tpu_gpu_launch.estimate, "
           "reflex_jax.run.cli; "
           "print(sorted(m for m in ('grain', 'scipy.stats') if m in sys.modules))")
  done = run_to_completion([sys.executable, "-c", check], cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"))
  assert done.stdout.strip() == "[]"
