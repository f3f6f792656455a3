"""Synthetic datasets with known ground truth, for demos, tests and benchmarks."""
