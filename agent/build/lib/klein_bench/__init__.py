"""klein-bench: benchmark FLUX.2 [klein] on your GPU and contribute signed results."""

__version__ = "0.1.0"
