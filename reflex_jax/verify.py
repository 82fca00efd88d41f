"""Physics check of a registered reflection: ``python -m reflex_jax.verify <env-id|all>``.

For reachable states s (random-action rollouts from resets) it measures
  1. observation error  max |obs(g·s) − g·obs(s)|,
  2. reward error       max |r(g·s, g·a) − r(s, a)| over the rollout below,
  3. rollout drift      max |obs_t(g·s, g·a_0..t) − g·obs_t(s, a_0..t)| over `horizon` steps,
where g·s mirrors qpos, qvel and mocap targets with the state map derived from the model,
and the task state a locomotion task keeps beside the physics (command, last action, foot
timers, gait phase) by its registered maps. Tasks with a privileged critic observation are
checked on both observations (the larger error is reported). Observation noise, pushes and
command resampling are off while verifying (`SymmetrySpec.verify_overrides`): they are drawn
from mirror-symmetric distributions, so they keep the MDP symmetric but not sample by sample.
Errors are relative to the observation scale (max |obs|, at least 1). It runs in float64 by
default, where an exact symmetry leaves only rounding error; without the asymmetry fixes the
real drift shows.

Chaotic tasks (a falling humanoid) amplify even float64 rounding past any fixed tolerance
within 50 steps. For them the rollout is judged against the task's own chaos: a copy of s
whose velocities are perturbed at the rounding scale (ε = 1e-13, float32 1e-6) is rolled out
under the same actions, and the mirror rollout passes if it drifts no more than
CHAOS_FACTOR times that copy. A wrong map errs by far more than rounding at the first step,
so it still fails.

A task whose model truncates the constraint solve (Op3: one Newton iteration, five line-search
steps) turns rounding into discrete differences: a state and its mirror image can stop the
line search at different points. Such tasks (`SymmetrySpec.verify_converged`) are checked
with the solve run to convergence (CONVERGED_ITERATIONS), which tests the model's symmetry
rather than the truncation's.

It lives above `envs` (which makes the simulators) and `symmetry` (the maps), so that
`symmetry` never imports `envs`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from reflex_jax import envs
from reflex_jax.symmetry import asymmetry, registry
from reflex_jax.symmetry.derive import StateMap
from reflex_jax.symmetry.reflection import Reflection

# Per-check tolerances on relative error, float64. Rounding alone stays far below (contact
# dynamics amplify it about tenfold per ten steps, so rollouts are kept to 50 steps by
# default: ~1e-9 at the end for ant); a wrong sign or index gives errors of order 1e-2 to 1.
TOLERANCE = {"float64": {"obs": 1e-6, "reward": 1e-6, "rollout": 1e-6},
             "float32": {"obs": 1e-5, "reward": 1e-4, "rollout": 1e-3}}
CHAOS_FACTOR = 10.0
PERTURBATION = {"float64": 1e-13, "float32": 1e-6}
CONVERGED_ITERATIONS, CONVERGED_LS_ITERATIONS = 100, 50


@dataclasses.dataclass(frozen=True)
class VerifyResult:
  env_id: str
  kind: str
  equalized: bool
  dtype: str
  obs_error: float
  reward_error: float
  rollout_error: float
  chaos_error: float     # drift of a rounding-perturbed copy, per state where it excuses the rollout
  rollout_within_chaos: bool
  horizon: int
  seconds: float
  asymmetries: tuple[str, ...] = ()
  float32_internals: str = ""  # the spec's note: why its rounding is float32's under x64
  approximate: str = ""  # the spec's note: why even the equalized task is not exactly symmetric
  converged_solver: str = ""  # the spec's note: why its steps were solved to convergence

  @property
  def failures(self) -> list[str]:
    tol = TOLERANCE[self.rounding]
    failed = [name for name, err in (("obs", self.obs_error), ("reward", self.reward_error))
              if not err <= tol[name]]
    if not (self.rollout_error <= tol["rollout"] or self.rollout_within_chaos):
      failed.append("rollout")
    return failed

  @property
  def rounding(self) -> str:
    """The precision that bounds this run's rounding error."""
    return "float32" if self.float32_internals else self.dtype

  @property
  def passed(self) -> bool:
    return not self.failures


def mirror_physics(sim: envs.SimulatorEnv, state_map: StateMap, state):
  """(qpos, qvel, mocap_pos, mocap_quat) of the mirror image g·s of `state`."""
  qpos, qvel = sim.physics_qpos_qvel(state)
  mocap_pos, mocap_quat = sim.mocap(state)
  m = jnp.asarray(state_map.diag, qpos.dtype)
  mocap = jnp.asarray(state_map.mocap, jnp.int32)
  return (state_map.qpos.apply(qpos), state_map.qvel.apply(qvel),
          mocap_pos[mocap] * m,
          jnp.concatenate([mocap_quat[mocap, :1], -mocap_quat[mocap, 1:] * m], axis=-1))


def mirror_state(sim: envs.SimulatorEnv, spec: registry.SymmetrySpec, state, last_action,
                 reflection: Reflection):
  """g·s as a simulator state: the physics mirrored by the derived state map and, for tasks
  that keep task state (command, last actions, foot timers, gait phase, past observations),
  that state and the actuator controls mirrored by the spec's maps and `reflection`.
  `last_action` is the action that led to s (brax observations include it)."""
  g_act = reflection.reflect_action
  state_map = spec.state_map(sim.mj_model)
  info_maps = spec.info_maps(sim.mj_model)
  extra = {}
  if info_maps:
    info = {k: info_maps[k].apply(v) if k in info_maps else v
            for k, v in _unshifted(spec, sim.info(state)).items()}
    extra = {"info": info, "ctrl": g_act(state.native.data.ctrl)}
    if sim.history_in_observation:  # past observations are task state too
      extra["obs"] = reflection.reflect_obs(state.obs)
  return sim.with_physics(state, *mirror_physics(sim, state_map, state), g_act(last_action),
                          **extra)


def _unshifted(spec: registry.SymmetrySpec, info: dict) -> dict:
  """The task state with the histories that computing an observation shifts forward
  (spec.obs_history) shifted back, so that with_physics's observation restores them."""
  info = dict(info)
  for key, width in spec.obs_history:
    info[key] = jnp.roll(info[key], -width, axis=-1)
  return info


def _check_fn(sim, reflection: Reflection, state_map: StateMap, num_states: int,
              warmup: int, horizon: int, perturbation: float, spec: registry.SymmetrySpec):
  g_obs, g_act = reflection.reflect_obs, reflection.reflect_action
  critic_map = spec.critic_observation_map(sim.mj_model)

  def pin(state):  # task state held fixed while verifying (spec.verify_info)
    if not spec.verify_info:
      return state
    info = dict(sim.info(state))
    info.update({k: jnp.asarray(v, info[k].dtype) for k, v in spec.verify_info})
    return state.replace(native=state.native.replace(info=info))

  def obs_error(s, sm):
    scale = jnp.maximum(1.0, jnp.abs(s.obs).max())
    err = jnp.abs(sm.obs - g_obs(s.obs)).max() / scale
    if critic_map is not None:
      c, cm = sim.critic_observation(s), sim.critic_observation(sm)
      err = jnp.maximum(err, jnp.abs(cm - critic_map.apply(c)).max()
                        / jnp.maximum(1.0, jnp.abs(c).max()))
    return err

  def random_action(key, dtype):
    return jax.random.uniform(key, (sim.action_size,), dtype, -1.0, 1.0)

  def one(key):
    key_reset, key_warm, key_roll, key_noise = jax.random.split(key, 4)
    state = pin(sim.reset(key_reset))
    dtype = state.obs.dtype

    def warm(carry, k):
      s, _ = carry
      a = random_action(k, dtype)
      return (sim.step(s, a), a), None

    zero_action = jnp.zeros((sim.action_size,), dtype)
    (state, last_action), _ = jax.lax.scan(warm, (state, zero_action),
                                           jax.random.split(key_warm, warmup))
    qpos, qvel = sim.physics_qpos_qvel(state)
    mocap_pos, mocap_quat = sim.mocap(state)
    # the original's observation is recomputed too (as the mirror image's is), from the same
    # task state; histories the observation shifts are shifted back first
    same = {"info": _unshifted(spec, sim.info(state))} if spec.obs_history else {}
    original = sim.with_physics(state, qpos, qvel, mocap_pos, mocap_quat, last_action, **same)
    mirrored = mirror_state(sim, spec, state, last_action, reflection)
    noise = jax.random.normal(key_noise, qvel.shape, qvel.dtype)
    perturbed = sim.with_physics(
        state, qpos, qvel + perturbation * jnp.maximum(1.0, jnp.abs(qvel).max()) * noise,
        mocap_pos, mocap_quat, last_action, **same)
    first_error = obs_error(original, mirrored)

    def roll(carry, k):
      s, sm, sp = carry
      a = random_action(k, dtype)
      s, sm, sp = sim.step(s, a), sim.step(sm, g_act(a)), sim.step(sp, a)
      scale = jnp.maximum(1.0, jnp.abs(s.obs).max())
      obs_err = obs_error(s, sm)
      chaos_err = jnp.abs(sp.obs - s.obs).max() / scale
      rew_err = jnp.abs(sm.reward - s.reward) / jnp.maximum(1.0, jnp.abs(s.reward))
      return (s, sm, sp), (obs_err, chaos_err, rew_err)

    _, (rollout_errors, chaos_errors, reward_errors) = jax.lax.scan(
        roll, (original, mirrored, perturbed), jax.random.split(key_roll, horizon))
    return first_error, reward_errors.max(), rollout_errors.max(), chaos_errors.max()

  return jax.jit(lambda key: jax.vmap(one)(jax.random.split(key, num_states)))


def verify(env_id: str, *, equalize: bool = True, x64: bool = True, num_states: int = 8,
           warmup: int = 30, horizon: int = 50, seed: int = 0,
           reflection: Reflection | None = None) -> VerifyResult:
  """Checks `env_id`'s registered reflection (or `reflection`, to test a candidate map)."""
  start = time.perf_counter()
  with jax.enable_x64(x64):
    spec = registry.get(env_id)
    overrides = {"config_overrides": dict(spec.verify_overrides)} if spec.verify_overrides else {}
    sim = envs.make_simulator(env_id, equalize_asymmetries=equalize, **overrides)
    # The constraint solver stops at opt.tolerance (1e-8): a state and its mirror image may
    # stop an iteration apart. Run every iteration so only rounding separates them.
    model = copy.copy(sim.mj_model)
    model.opt.tolerance = 0.0
    if spec.verify_converged:  # a truncated solve's last step can differ by more than rounding
      model.opt.iterations = max(model.opt.iterations, CONVERGED_ITERATIONS)
      model.opt.ls_iterations = max(model.opt.ls_iterations, CONVERGED_LS_ITERATIONS)
    sim.push_model(model)
    state_map = spec.state_map(sim.mj_model)
    reflection = reflection or spec.reflection(sim.mj_model, sim.observation_size)
    dtype = "float64" if x64 else "float32"
    check = _check_fn(sim, reflection, state_map, num_states, warmup, horizon,
                      PERTURBATION[dtype], spec)
    obs_err, rew_err, roll_err, chaos_err = (np.asarray(e) for e in check(jax.random.key(seed)))
  within_chaos = bool(np.all(roll_err <= CHAOS_FACTOR * chaos_err))
  return VerifyResult(env_id, spec.kind, equalize, dtype, float(obs_err.max()),
                      float(rew_err.max()), float(roll_err.max()), float(chaos_err.max()),
                      within_chaos, horizon, time.perf_counter() - start,
                      tuple(asymmetry.find_asymmetries(sim.mj_model, state_map)),
                      spec.float32_internals, spec.approximate, spec.verify_converged)


def format_row(r: VerifyResult) -> str:
  verdict = "pass" if r.passed else "FAIL (" + ", ".join(r.failures) + ")"
  if r.approximate and not r.passed:  # measured, not judged: the spec says why
    verdict = "approximate (" + ", ".join(r.failures) + ")"
  return (f"{r.env_id:32} {r.kind:9} {'on' if r.equalized else 'off':5} "
          f"{len(r.asymmetries):4d} {r.dtype:7} "
          f"{r.obs_error:9.1e} {r.reward_error:10.1e} {r.rollout_error:11.1e} "
          f"{r.chaos_error:11.1e} {r.seconds:5.0f}s  {verdict}")


def format_table(results: list[VerifyResult], verbose: bool = False) -> str:
  header = (f"{'environment':32} {'kind':9} {'fixes':5} {'asym':>4} {'dtype':7} {'obs err':>9} "
            f"{'reward err':>10} {'rollout err':>11} {'chaos floor':>11} {'time':>6}  result")
  lines = [header, "-" * len(header)]
  lines += [format_row(r) for r in results]
  tol = "; ".join(f"{dtype}: " + ", ".join(f"{k} ≤ {v:g}" for k, v in t.items())
                  for dtype, t in TOLERANCE.items())
  lines.append("relative errors (÷ max(1, |obs|) or max(1, |r|)); asym = model parameters that "
               "break the mirror (listed with --verbose)")
  lines.append(f"tolerances by rounding precision: {tol}; or rollout ≤ {CHAOS_FACTOR:g} × chaos "
               "floor (drift of a copy perturbed at the rounding scale) for every state")
  notes = {r.env_id: r.float32_internals for r in results if r.float32_internals}
  lines += [f"  {env_id}: float32 tolerances, {why}" for env_id, why in notes.items()]
  approx = {r.env_id: r.approximate for r in results if r.approximate}
  lines += [f"  {env_id}: approximately symmetric, {why}" for env_id, why in approx.items()]
  converged = {r.env_id: r.converged_solver for r in results if r.converged_solver}
  lines += [f"  {env_id}: solved to convergence, {why}" for env_id, why in converged.items()]
  for r in results:
    if verbose:
      lines += [f"  {r.env_id}: {a}" for a in r.asymmetries]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.verify", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("env_ids", nargs="+", help="environment ids, or 'all' for every "
                      "symmetric task: " + ", ".join(registry.symmetric_env_ids()))
  parser.add_argument("--no-equalize", action="store_true",
                      help="keep the models' known asymmetries (shows the drift they cause)")
  parser.add_argument("--float32", action="store_true", help="simulate in float32")
  parser.add_argument("--states", type=int, default=8, help="sampled states per task")
  parser.add_argument("--horizon", type=int, default=50, help="rollout steps per state")
  parser.add_argument("--verbose", action="store_true", help="list the model asymmetries")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  ids = registry.symmetric_env_ids() if args.env_ids == ["all"] else args.env_ids
  for env_id in ids:  # fail fast, before any compile, naming the problem
    try:
      registry.get(env_id).require()
    except (registry.UnknownEnvironmentError, registry.NoReflectionError) as err:
      parser.error(str(err))
  results = []
  for env_id in ids:
    results.append(verify(env_id, equalize=not args.no_equalize, x64=not args.float32,
                          num_states=args.states, horizon=args.horizon, seed=args.seed))
    print(format_row(results[-1]), flush=True)
  print()
  print(format_table(results, verbose=args.verbose))
  return 0 if all(r.passed for r in results) or args.no_equalize else 1


if __name__ == "__main__":
  sys.exit(main())
