"""HRM-Text in JAX/Flax NNX (model, data, training, generation, evaluation).

The model arrives with issue #4, training with #5 and inference/evaluation with #8; this
package exists now so both halves share one installable distribution.
"""
