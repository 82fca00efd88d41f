"""The physics check of every registered legged task, with the equalizing fixes on and off
(issue 24): float64 MJX, 4 sampled states each. Writes one JSON record per check to --out as it
goes (a rerun skips the checks already there) and prints the README's table.

  python experiments/reflex/legged/verify_legged.py \
      --out experiments/reflex/results/legged/verify.json

Bipeds use 10 warm-up and 20 rollout steps: they collide only their feet with the floor, and
under random actions fall within about 50 steps and sink through it, which amplifies
rounding to order 1 (the verifier's chaos floor). Quadrupeds use the verifier's 30 and 50.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from reflex_jax import verify
from reflex_jax.envs import playground
from reflex_jax.symmetry import registry

BIPEDS = ("G1", "T1", "Berkeley", "Op3", "Apollo")  # H1 passes the quadrupeds' longer check


def legged_ids() -> list[str]:
  return [k for k, s in registry.SPECS.items()
          if s.has_reflection and k.split("/")[1] in playground.locomotion_names()]


def steps(env_id: str) -> dict:
  biped = any(f"/{b}" in env_id for b in BIPEDS)
  return {"warmup": 10, "horizon": 20} if biped else {"warmup": 30, "horizon": 50}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--only", nargs="*", help="env ids (default: every legged task)")
  parser.add_argument("--fixes", choices=("on", "off", "both"), default="both")
  parser.add_argument("--table", action="store_true", help="only print the table of --out")
  args = parser.parse_args()
  done = json.load(open(args.out)) if os.path.exists(args.out) else []
  have = {(r["env_id"], r["equalized"]) for r in done}
  for env_id in [] if args.table else args.only or legged_ids():
    for equalize in {"on": (True,), "off": (False,), "both": (True, False)}[args.fixes]:
      if (env_id, equalize) in have:
        continue
      result = verify.verify(env_id, equalize=equalize, num_states=4, **steps(env_id))
      print(verify.format_table([result]), flush=True)
      done.append({**dataclasses.asdict(result), "passed": result.passed,
                   "failures": list(result.failures), **steps(env_id)})
      os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
      with open(args.out + ".tmp", "w") as f:
        json.dump(done, f, indent=1)
      os.replace(args.out + ".tmp", args.out)
  print("| task | fixes | obs err (policy and critic) | reward err | rollout err | result |")
  print("|---|---|---|---|---|---|")
  for r in done:
    verdict = "pass" if r["passed"] else ", ".join(r["failures"])
    if r.get("approximate") and not r["passed"] and r["equalized"]:
      verdict = "approximate: " + verdict
    if r.get("converged_solver"):
      verdict += " (solve converged)"
    print(f"| {r['env_id']} | {'on' if r['equalized'] else 'off'} | {r['obs_error']:.2g} | "
          f"{r['reward_error']:.2g} | {r['rollout_error']:.2g} | {verdict} |")


if __name__ == "__main__":
  main()
