"""Runtimes as backends (optimum-benchmark's shape): each runtime is a package that loads
the pipeline and generates one image at a time, and klein_bench.scenario runs the
protocol on it (warm-ups, the timed loop, trackers, failures, the payload).

- `backends.diffusers`: Flux2KleinPipeline in this process (backend, pipeline loading,
  the tiny test model, the weights lookup, the kernel observer).
- `backends.comfyui`: the user's own ComfyUI over its HTTP API (preflight, process,
  client, execution, logs, graph, the tiny test model's files, doctor's checks).

Each package's `run_protocol` sets a run up and hands its backend to the scenario.
"""
