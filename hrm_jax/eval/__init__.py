"""Evaluation of HRM-Text on public benchmarks (GSM8K, MATH, MMLU, ARC-Challenge, HellaSwag,
Winogrande, BoolQ, DROP, AIME 2025) with the paper authors' protocol: prompts, gold answers and
scoring, kept free of model code so they test in milliseconds."""

from hrm_jax.eval.benchmarks import BENCHMARKS, Benchmark, Item

__all__ = ["BENCHMARKS", "Benchmark", "Item"]
