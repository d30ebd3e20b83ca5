"""The diffusers runtime: Flux2KleinPipeline in this process.

`backend` (DiffusersBackend and `run_protocol`), `pipeline` (device, refusals, loading),
`tiny` (the tiny random pipeline and the full-size synthetic one), `weights` (the Hugging
Face weights on disk) and `kernels` (the kernel observer).
"""

from klein_bench.backends.diffusers.backend import DiffusersBackend, run_protocol

__all__ = ["DiffusersBackend", "run_protocol"]
