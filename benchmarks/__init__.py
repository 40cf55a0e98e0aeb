"""Ratio benchmarks against the building blocks; run with ``python benchmarks/run.py``."""
