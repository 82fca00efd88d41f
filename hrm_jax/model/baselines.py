"""Baselines behind the HRM-Text interface (spec §6), sized two ways.

The authors' configurations, `authors_baseline(config, name)`, follow the HRM-Text code's
config/arch/net/*.yaml and models/baselines/*.py. Their size files give n_layers = 2n, where
n = config.num_layers_per_stack: HRM halves n_layers between H and L (`half_layers`), so
"full depth" is both HRM stacks' layers, 2n. x is the scaled embedding; M, L and H are stack
calls (stack.py), each ending in the exit RMSNorm; "from z_L_init" is HRM's fixed random start
for z_L.

  name                  blocks                  calls per token                       bp_steps
  hrm                   H, L: n each            2 × (3 L(z_L, z_H) + H(z_H, z_L))     2 → 5
  transformer           one stack of 2n         one pass M(x)                         1
  ut                    one stack of 2n         z ← M(z, x) 4 times from z_L_init     2
  trm                   one of 2n, shared       2 × (1 L + 1 H): HRM's recurrence     2
  trm_match_recurrence  one of n, shared        2 × (3 L + 1 H)                       5
  rins                  L, H: n each            z_L ← L(z_L, x) 7 times from          5
                                                z_L_init; then H(z_L), no injection

bp_steps counts the calls, from the last, that carry gradient (with H prioritized in the HRM
recurrence; ModelConfig.gradient_calls says which); the others run without gradient, as the authors' calls under
`torch.no_grad`. Only HRM warms its window up (2 → 5 over the first 20 % of training); the
baselines keep theirs fixed (`AUTHORS_BP_STEPS`): UT's 2 of 4 loops (bp_cycles), TRM's last
L and last H call (H_bp_steps = L_bp_steps = 1), the matched-recurrence TRM's H0, L3–L5, H1
(H_bp_steps 2, L_bp_steps 3: the calls HRM trains at bp 5), and RINS's last 4 loops
(L_bp_cycles) and its H call. TRM at bp 2 never trains the embedding: x reaches the last two
calls only through calls without gradient. The training configs at size B are
experiments/hrm/baselines/*.yaml (schedule.bp_schedule: fixed).

All of them but the transformer cost HRM's 8n block calls per token (forward); the
transformer costs 2n. All have HRM's 2n blocks of parameters but the matched-recurrence TRM
(n). At size B (seq 4096): 1.87 GFLOP per token forward, the transformer 0.57; 300.9M
parameters, the matched-recurrence TRM 217.6M.

`matched_flops(config, arch)` is our own sizing, a separate option: each baseline costs the
HRM's forward FLOPs per token with n-block calls (a transformer of 8n blocks, a UT looping
the n-block stack 8 times from zeros, a TRM with HRM's cycles and one stack).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.hrm import HrmText, LanguageModel, fixed_start, run_cached
from hrm_jax.model.stack import Stack


def _start(model, x_BTD):
  """The loops' first state: zeros or z_L_init, per `config.loop_init`."""
  if model.config.loop_init == "zeros":
    return jnp.zeros_like(x_BTD)
  return jnp.broadcast_to(model.z_L_init[...].astype(x_BTD.dtype), x_BTD.shape)


def _loops(config, stack, z, u, cos, sin, mask, count: int, with_grad: int):
  """`count` calls z ← stack(z, u), the last `with_grad` of them with gradient."""
  for frozen, n in ((True, count - with_grad), (False, with_grad)):
    if n:
      z = jax.lax.scan(lambda zz, _, f=frozen: (stack(zz, u, cos, sin, mask, frozen=f), None),
                       z, None, length=n, unroll=config.scan_unroll or 1)[0]
  return z


class Looped(LanguageModel):
  """UT: z ← M(z, x) `num_loops` times from `loop_init`; the last `bp_steps` loops carry
  gradient."""

  num_stacks = 1
  takes_loop_init = True

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    super().__init__(config, rngs=rngs)
    self.stack = Stack(config, config.num_layers_per_stack, rngs=rngs)
    if config.loop_init == "z_L_init":
      self.z_L_init = fixed_start(config, rngs)

  @classmethod
  def num_calls(cls, config: ModelConfig) -> int:
    return config.num_loops

  def core(self, x_BTD, cos_BTK, sin_BTK, mask_B1TT, bp_steps):
    c = self.config
    return _loops(c, self.stack, _start(self, x_BTD), x_BTD, cos_BTK, sin_BTK, mask_B1TT,
                  c.num_calls, sum(c.gradient_calls(bp_steps)))

  def cached_core(self, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache, start_B):
    z = _start(self, x_BtD)
    for call in range(self.num_cached_calls):
      z, cache = run_cached(self.stack, z, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache, call,
                            start_B)
    return z, cache


class Transformer(Looped):
  """One pass of the stack: z = M(loop_init, x)."""

  @classmethod
  def num_calls(cls, config: ModelConfig) -> int:
    return 1


class Rins(LanguageModel):
  """RINS: z_L ← L(z_L, x) `num_loops` times from `loop_init`, then one H pass over z_L
  without input injection, z = H(z_L). H and L are separate n-block stacks. The last
  `bp_steps` calls carry gradient: the H call and the last bp_steps − 1 loops."""

  num_stacks = 2
  takes_loop_init = True

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    super().__init__(config, rngs=rngs)
    n = config.num_layers_per_stack
    self.L_module = Stack(config, n, rngs=rngs)
    self.H_module = Stack(config, n, rngs=rngs)
    if config.loop_init == "z_L_init":
      self.z_L_init = fixed_start(config, rngs)

  @classmethod
  def num_calls(cls, config: ModelConfig) -> int:
    return config.num_loops + 1

  def core(self, x_BTD, cos_BTK, sin_BTK, mask_B1TT, bp_steps):
    c = self.config
    z_L = _loops(c, self.L_module, _start(self, x_BTD), x_BTD, cos_BTK, sin_BTK, mask_B1TT,
                 c.num_loops, sum(c.gradient_calls(bp_steps)) - 1)
    return self.H_module(z_L, None, cos_BTK, sin_BTK, mask_B1TT)

  def gradient_free(self, bp_steps: int | None) -> frozenset[str]:
    """With only the H call in the window (bp 1), neither L nor the embedding (read by the L
    calls only) gets gradient."""
    if any(self.config.gradient_calls(bp_steps)[:-1]):
      return frozenset()
    return frozenset({"embed_tokens", "L_module"})

  def cached_core(self, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache, start_B):
    """Slots 0 … num_loops − 1: the L loops; slot num_loops: the H call."""
    loops = self.config.num_loops
    z = _start(self, x_BtD)
    for call in range(loops):
      z, cache = run_cached(self.L_module, z, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache, call,
                            start_B)
    return run_cached(self.H_module, z, None, cos_BtK, sin_BtK, mask_B1tS, cache, loops, start_B)


# The fixed gradient window each of the authors' baselines trains with (schedule.bp_schedule
# fixed, schedule.bp_end); None: HRM's own warm-up, staircase 2 → 5 over the first 20 %.
AUTHORS_BP_STEPS = {"hrm": None, "transformer": 1, "ut": 2, "trm": 2,
                    "trm_match_recurrence": 5, "rins": 5}
AUTHORS_BASELINES = tuple(AUTHORS_BP_STEPS)


def authors_baseline(config: ModelConfig, name: str) -> ModelConfig:
  """The authors' configuration `name` (AUTHORS_BASELINES) at the size of the HRM `config`
  (n = config.num_layers_per_stack blocks per stack; full depth 2n). The table in this
  module's docstring says what each is; AUTHORS_BP_STEPS gives its gradient window."""
  if config.model_class is not HrmText:
    raise ValueError(f"authors_baseline sizes from an HRM config, got architecture "
                     f"{config.architecture!r}")
  n = config.num_layers_per_stack
  changes = {
      "hrm": dict(H_cycles=2, L_cycles=3),
      "transformer": dict(architecture="transformer", num_layers_per_stack=2 * n),
      "ut": dict(architecture="ut", num_layers_per_stack=2 * n, num_loops=4,
                 loop_init="z_L_init"),
      "trm": dict(architecture="trm", num_layers_per_stack=2 * n, H_cycles=2, L_cycles=1),
      "trm_match_recurrence": dict(architecture="trm", H_cycles=2, L_cycles=3),
      "rins": dict(architecture="rins", num_loops=7, loop_init="z_L_init"),
  }
  if name not in changes:
    raise ValueError(f"unknown baseline {name!r}; choose one of {AUTHORS_BASELINES}")
  return config.replace(**changes[name])


def matched_flops(config: ModelConfig, architecture: str) -> ModelConfig:
  """Our own sizing (not the authors'): a baseline costing the same forward FLOPs per token
  as the HRM `config`: a transformer with num_calls × n layers, a UT looping the n-layer
  stack num_calls times from zeros, a TRM with the same cycles and one shared stack."""
  calls = config.replace(architecture="hrm").num_calls
  changes = {
      "hrm": {},
      "transformer": dict(num_layers_per_stack=config.num_layers_per_stack * calls),
      "ut": dict(num_loops=calls),
      "trm": {},
  }
  if architecture not in changes:
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {tuple(changes)}")
  return config.replace(architecture=architecture, **changes[architecture])
