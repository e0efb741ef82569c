"""Evaluation: workloads, the runner, metrics, reports and micro-benchmarks."""
