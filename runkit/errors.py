"""The errors both halves raise for a user to act on. One class each, re-exported by the
halves (reflex_jax.run.config.ConfigError, hrm_jax.train.loop.NonFiniteError, ...), so an
`except` written against either name catches both."""


class ConfigError(ValueError):
  """A bad config file, key or value; the message names it."""


class NonFiniteError(FloatingPointError):
  """Training produced a NaN/inf (a loss, a gradient, the parameters, a simulator state); the
  message names the step."""
