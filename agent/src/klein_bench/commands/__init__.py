"""The `klein-bench` commands by group; klein_bench.cli puts them together."""
