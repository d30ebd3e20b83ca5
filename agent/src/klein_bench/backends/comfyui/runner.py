"""The ComfyUI runtime: the benchmark protocol run through the user's own ComfyUI.

The agent drives a running ComfyUI over its HTTP API with the built-in FLUX.2 [klein]
graph of the official template (`workflow`), the model's files and its own protocol.
This module sets the run up: `preflight` checks the server
(version, device, idle queue, nodes, the three files; each problem is a KleinBenchError
with the fix), the tiny test model's files are written where needed (`tiny`),
ComfyUI's process and GPU are found (`process`) and ComfyUI is emptied. The shared
measurement loop (klein_bench.scenario) then runs the protocol on `ComfyUIBackend`, as it
does on the diffusers one: the same warm-ups, trackers, failure rules and payload.

Per image, `seconds` is ComfyUI's own account (`execution_start` to `execution_success`
in `/history/<id>`), `wall_seconds` the agent's clock; the scenario reports a large gap
between them. Every timed run uses a prompt and seed that differ from the run before it,
so ComfyUI's cache never serves an image; each run's `execution_cached` is checked.

With a tiny test model (`--model klein-tiny-random` and the others) the agent writes tiny
random-weight files into the model folders of a ComfyUI on this machine (`tiny`) and runs
the model's graph on them at 64x64 (the base variants with their guidance): on a GPU, or
on a CPU ComfyUI (allowed for the test models only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from klein_bench import scenario
from klein_bench.backends.comfyui import tiny as comfyui_tiny
from klein_bench.backends.comfyui.backend import ComfyUIBackend, Located
from klein_bench.backends.comfyui.client import ComfyUIClient, ComfyUIUnreachable
from klein_bench.backends.comfyui.execution import RUN_TIMEOUT_S
from klein_bench.backends.comfyui.preflight import Server, preflight, unreachable
from klein_bench.backends.comfyui.process import check_gpu, comfyui_pid, is_local
from klein_bench.catalog import model_spec, protocol_of
from klein_bench.contract.models import DEFAULT_MODEL
from klein_bench.contract.protocol import Protocol
from klein_bench.errors import KleinBenchError
from klein_bench.gpu import gpu_info, nvml, nvml_device
from klein_bench.progress import Progress

# ComfyUI's worker applies /free's flags when it next wakes; waiting this long keeps the
# warm-up from being picked up before the models are unloaded.
FREE_SETTLE_S = 0.5


def run_protocol(
    *,
    url: str,
    runs: int,
    gpu_index: int,
    progress: Progress,
    model: str = DEFAULT_MODEL,
    weights: str = "auto",
    protocol: Protocol | None = None,
    run_timeout: float = RUN_TIMEOUT_S,
) -> dict[str, Any]:
    """Run the model's protocol (its current one unless given) through the ComfyUI at
    `url`; the result payload.

    `weights` picks the model's diffusion model file: "fp8", "bf16" or "auto" (FP8 when
    listed).
    Raises KleinBenchError (one sentence with the fix) for anything that stops the
    benchmark before it measures, and for a setup that fails while it runs (a damaged or
    mismatched model file): those are not results.
    """
    spec = model_spec(model)
    protocol = protocol_of(spec, protocol)
    if runs < protocol.min_timed_runs:
        raise KleinBenchError(
            f"--runs {runs} is too few: the protocol times at least "
            f"{protocol.min_timed_runs} generations."
        )
    try:
        client = ComfyUIClient(url)
    except ValueError as exc:
        raise KleinBenchError(
            f"{exc}: pass ComfyUI's address with --comfyui-url, e.g. http://127.0.0.1:8188."
        ) from exc
    try:
        progress.stage("Checking ComfyUI")
        server = preflight(client, spec, choice=weights)
        if spec.built_in:
            if not is_local(server.url):
                raise KleinBenchError(
                    "The tiny test model is written into ComfyUI's model folders, so it needs "
                    "a ComfyUI on this machine: start one here, or use the diffusers runtime "
                    "for the tiny model."
                )
            progress.stage("Writing the tiny test model for ComfyUI")
            server.files = comfyui_tiny.install(client, progress.note)
        located = locate(server, gpu_index, progress.note)
        assert server.files is not None
        progress.note(
            f"ComfyUI {server.version or '(version unknown)'} runs "
            f"{server.files.diffusion_model_basename}."
        )
        empty(client, server)
        backend = ComfyUIBackend(
            client, server, spec, protocol, progress, located, run_timeout=run_timeout
        )
        try:
            # ComfyUI runs in its own process: a sampling thread here costs it nothing.
            return scenario.run(backend, protocol, runs, progress, in_process_sampler=True)
        finally:
            backend.release()
    finally:
        client.close()


def locate(server: Server, gpu_index: int, note: Callable[[str], None]) -> Located:
    """ComfyUI's process and NVML's GPU `gpu_index`, as far as the agent can watch them;
    KleinBenchError when NVML shows ComfyUI on another GPU."""
    if not is_local(server.url):
        note(
            "ComfyUI runs on another machine, so the agent cannot watch its GPU: the "
            "VRAM, energy and telemetry figures are left empty."
        )
        return Located(local=False)
    located = Located(local=True, pid=comfyui_pid(server.url, server.stats))
    if server.on_cpu:
        return located
    try:
        pynvml = nvml()
        located.info = gpu_info(gpu_index)
        located.nvml = nvml_device(gpu_index)
    except KleinBenchError:
        note(
            "NVML (the NVIDIA driver's monitoring library) is unavailable, so the VRAM, "
            "energy and telemetry figures are left empty: `klein-bench doctor` says why."
        )
        return located
    if located.pid is None:
        note(
            "The ComfyUI process could not be found (in a container its process is not "
            "visible), so only the device-wide VRAM figure is recorded."
        )
        return located
    check_gpu(pynvml, located.pid, gpu_index)
    return located


def empty(client: ComfyUIClient, server: Server) -> None:
    """Unload ComfyUI's models and cached results (`POST /free`), so the baseline is an
    idle GPU and the first warm-up loads the three files."""
    try:
        client.free(unload_models=True, free_memory=True)
    except ComfyUIUnreachable as exc:
        raise unreachable(server.url) from exc
    time.sleep(FREE_SETTLE_S)
