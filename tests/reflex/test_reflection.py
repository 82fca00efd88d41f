import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reflex_jax.symmetry.reflection import Reflection, ReflectionError, SignedPermutation
from tests.helpers import assert_close, assert_shape, with_and_without_jit


@st.composite
def involutions(draw, max_size=12):
  """Random signed involutions: random disjoint pairs swap, twins share a sign."""
  n = draw(st.integers(1, max_size))
  order = draw(st.permutations(list(range(n))))
  num_pairs = draw(st.integers(0, n // 2))
  perm, sign = np.arange(n), np.ones(n)
  for k in range(num_pairs):
    a, b = order[2 * k], order[2 * k + 1]
    perm[a], perm[b] = b, a
  flips = draw(st.lists(st.booleans(), min_size=n, max_size=n))
  for i in range(n):
    if flips[i] and perm[i] >= i:
      sign[i] = sign[perm[i]] = -1.0
  return SignedPermutation.create(perm, sign)


@settings(max_examples=40, deadline=None)
@given(involutions(), st.integers(0, 2**31 - 1))
def test_involution_matrix_and_batch_consistency(g, seed):
  # numpy draws: jax.random would compile a sampler for each of the examples' sizes
  x = np.random.default_rng(seed).normal(size=(5, g.size)).astype(np.float32)
  assert_close(g(g(x)), x)
  assert_close(g(x), x @ g.matrix.T)
  assert_close(g(x), jax.vmap(g.apply)(x))
  np.testing.assert_array_equal(g.matrix @ g.matrix, np.eye(g.size))
  np.testing.assert_array_equal(g.matrix, g.matrix.T)  # orthogonal involution is symmetric


@with_and_without_jit
def test_apply_any_batch_shape(variant):
  g = SignedPermutation.create([1, 0, 2], [1, 1, -1])
  x = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
  out = variant(g.apply)(x)
  assert_shape(out, (2, 4, 3))
  assert_close(out, jnp.stack([x[..., 1], x[..., 0], -x[..., 2]], axis=-1))


def test_unsigned_drops_signs():
  g = SignedPermutation.create([1, 0], [-1, -1])
  assert g.unsigned.sign == (1.0, 1.0) and g.unsigned.perm == g.perm


@pytest.mark.parametrize("perm,sign,message", [
    ([0, 0, 1], None, "not a permutation"),
    ([1, 2, 0], None, "not an involution: index 0 -> 1 -> 2"),
    ([1, 0], [1, -1], "twins must share a sign"),
    ([0, 1], [1, 0.5], "signs must be ±1"),
    ([0, 1, 2], [1, 1], "perm has 3 entries but sign has 2"),
])
def test_invalid_maps_are_rejected_with_the_reason(perm, sign, message):
  with pytest.raises(ReflectionError, match=message):
    SignedPermutation.create(perm, sign)


def test_wrong_input_size_names_the_shapes():
  g = SignedPermutation.create([0, 1])
  with pytest.raises(ReflectionError, match=r"size 2, got shape \(4, 3\)"):
    g(jnp.zeros((4, 3)))


def test_reflection_checks_kind_plane_and_sizes():
  kwargs = dict(obs_perm=[0, 1], obs_sign=[-1, 1], action_perm=[0], action_sign=[-1])
  r = Reflection.create(kind="axial", plane="x", **kwargs)
  assert_close(r.reflect_obs(jnp.array([2.0, 3.0])), jnp.array([-2.0, 3.0]))
  np.testing.assert_array_equal(r.action_matrix, [[-1.0]])
  with pytest.raises(ReflectionError, match="kind must be one of"):
    Reflection.create(kind="radial", plane="x", **kwargs)
  with pytest.raises(ReflectionError, match="plane"):
    Reflection.create(kind="axial", plane="q", **kwargs)
  with pytest.raises(ReflectionError, match="has 3 observations / 1 actions"):
    r.check_sizes(3, 1, name="toy")
