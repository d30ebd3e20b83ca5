"""The ComfyUI runtime: the protocol run through the user's own ComfyUI.

`runner` (`run_protocol`: sets the run up), `preflight` (the server's checks), `process`
(its process and GPU), `client` (HTTP and WebSocket), `execution` (one prompt), `logs`
(what ComfyUI's log says ran), `workflow` (the graph), `backend` (ComfyUIBackend on the
shared loop), `tiny` (the tiny test model's files) and `doctor` (doctor's checks).
"""

from klein_bench.backends.comfyui.client import DEFAULT_URL
from klein_bench.backends.comfyui.runner import run_protocol

__all__ = ["DEFAULT_URL", "run_protocol"]
