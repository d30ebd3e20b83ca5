"""Runtimes that run the protocol and return a result payload (diffusers, ComfyUI)."""
