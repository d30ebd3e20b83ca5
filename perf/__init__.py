"""Benchmarks of the platform's own speed (`make perf`); see docs/benchmarks.md."""
