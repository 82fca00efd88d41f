"""Shared test helpers: chex assertions and with/without-jit variants."""

import chex
import jax
import pytest

# Parametrize a test over the untransformed and the jitted function: `variant(fn)(...)`.
with_and_without_jit = pytest.mark.parametrize(
    "variant", [pytest.param(lambda fn: fn, id="nojit"), pytest.param(jax.jit, id="jit")])

assert_close = chex.assert_trees_all_close
assert_shape = chex.assert_shape
