"""The ComfyUI runtime: the benchmark protocol run through the user's own ComfyUI.

The agent drives a running ComfyUI over its HTTP API with the built-in Klein 4B graph
(`comfyui_workflow`). Before anything is measured it checks that the server answers,
runs on an NVIDIA GPU, is idle, knows the FLUX.2 nodes, and sees the three model files;
each problem is a KleinBenchError with the fix. Then it asks ComfyUI to unload its
models (`POST /free`), runs one untimed warm-up (which loads them) and the timed runs.

Per image, `seconds` is ComfyUI's own account: the `execution_start` to
`execution_success` timestamps in `/history/<id>`. `wall_seconds` is the agent's clock
from queueing the prompt to hearing it finished; the two are compared and a large gap
is reported. Stage times come from the `executing` messages on `/ws`. Every timed run
uses a prompt and seed that differ from the run before it (the warm-up uses its own),
so ComfyUI's cache never serves an image; the runner checks `execution_cached` to be
sure. Memory is NVML's, for the ComfyUI process and the whole device.

Failures ComfyUI reports (out of memory, other exceptions, an interrupted prompt) and a
server that goes away mid-run become results with the outcome and the stage of the
failing node; only runs that finished are in them.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import itertools
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from queue import Empty
from typing import Any
from urllib.parse import urlsplit

import psutil

from klein_bench.contract.catalog import KLEIN_4B, preset_for
from klein_bench.contract.protocol import CURRENT, Protocol
from klein_bench.errors import KleinBenchError
from klein_bench.gpu import MIB, GpuInfo, driver_versions, gpu_info, nvml, nvml_device, safe
from klein_bench.measure import (
    EnergyMeter,
    MemorySampler,
    energy_section,
    headline,
    system_ram_mb,
    telemetry_section,
)
from klein_bench.progress import Progress
from klein_bench.result import (
    build_payload,
    configuration_section,
    environment_section,
    gpu_section,
    memory_section,
    outcome_section,
    run_record,
)
from klein_bench.runners import comfyui_workflow as workflow
from klein_bench.runners.comfyui_client import (
    CLOSED,
    ComfyUIClient,
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIUnreachable,
    Event,
    EventStream,
    PromptRejected,
)
from klein_bench.scenario import warmup_inputs

RUNTIME = "comfyui"
UPDATE_COMFYUI = "`git pull && pip install -r requirements.txt` in your ComfyUI folder"
# A run may include loading ~12 GB of weights from a slow disk (the warm-up does).
RUN_TIMEOUT_S = 1800.0
# ComfyUI's worker applies /free's flags when it next wakes; waiting this long keeps our
# warm-up from being picked up before the models are unloaded.
FREE_SETTLE_S = 0.5
# How often /history is polled when the WebSocket is not available.
POLL_INTERVAL_S = 0.05
# The agent's clock and ComfyUI's may differ by the HTTP round trips and the history
# poll; beyond this the two accounts of a run disagree.
CLOCK_TOLERANCE_S = 0.5
CLOCK_TOLERANCE_FRACTION = 0.25

# Launch flags that change speed or memory. Anything else on ComfyUI's command line
# (addresses, ports, folders) stays private.
FLAGS = frozenset(
    [
        "--gpu-only",
        "--highvram",
        "--normalvram",
        "--lowvram",
        "--novram",
        "--cpu",
        "--disable-smart-memory",
        "--force-fp32",
        "--force-fp16",
        "--fp32-unet",
        "--fp64-unet",
        "--bf16-unet",
        "--fp16-unet",
        "--fp8_e4m3fn-unet",
        "--fp8_e5m2-unet",
        "--fp8_e8m0fnu-unet",
        "--fp16-vae",
        "--fp32-vae",
        "--bf16-vae",
        "--cpu-vae",
        "--fp8_e4m3fn-text-enc",
        "--fp8_e5m2-text-enc",
        "--fp16-text-enc",
        "--fp32-text-enc",
        "--bf16-text-enc",
        "--force-channels-last",
        "--supports-fp8-compute",
        "--use-split-cross-attention",
        "--use-quad-cross-attention",
        "--use-pytorch-cross-attention",
        "--use-sage-attention",
        "--use-flash-attention",
        "--disable-xformers",
        "--force-upcast-attention",
        "--dont-upcast-attention",
        "--cuda-malloc",
        "--disable-cuda-malloc",
        "--cache-classic",
        "--cache-none",
        "--deterministic",
        "--force-non-blocking",
        "--disable-pinned-memory",
        "--disable-mmap",
        "--mmap-torch-files",
        "--disable-async-offload",
    ]
)
# Flags followed by a value worth keeping (a number or a mode, never a path).
VALUE_FLAGS = frozenset(
    [
        "--reserve-vram",
        "--cache-lru",
        "--cache-ram",
        "--fast",
        "--async-offload",
        "--cuda-device",
        "--preview-method",
    ]
)
ATTENTION_FLAGS = {
    "--use-sage-attention": "sage",
    "--use-flash-attention": "flash",
    "--use-pytorch-cross-attention": "sdpa",
    "--use-split-cross-attention": "split",
    "--use-quad-cross-attention": "quad",
}
OFFLOAD_FLAGS = ("--lowvram", "--novram")


def run_protocol(
    *,
    url: str,
    runs: int,
    gpu_index: int,
    progress: Progress,
    protocol: Protocol = CURRENT,
    run_timeout: float = RUN_TIMEOUT_S,
) -> dict[str, Any]:
    """Run the protocol through the ComfyUI at `url`; the result payload.

    Raises KleinBenchError (one sentence with the fix) for anything that stops the
    benchmark before it measures: the server, its nodes or its model files.
    """
    try:
        client = ComfyUIClient(url)
    except ValueError as exc:
        raise KleinBenchError(
            f"{exc}: pass ComfyUI's address with --comfyui-url, e.g. http://127.0.0.1:8188."
        ) from exc
    try:
        progress.stage("Checking ComfyUI")
        server = preflight(client)
        runner = _Runner(client, server, protocol, gpu_index, progress, run_timeout)
        return runner.run(runs)
    finally:
        progress.done()
        client.close()


# --- preflight -------------------------------------------------------------------------


@dataclass
class Server:
    """What preflight learned about the ComfyUI server."""

    url: str
    stats: dict[str, Any]
    files: workflow.ModelFiles
    flags: list[str]
    device: dict[str, Any]

    @property
    def version(self) -> str | None:
        version = self.stats.get("system", {}).get("comfyui_version")
        return str(version)[:64] if version else None

    @property
    def offload(self) -> str:
        # --lowvram/--novram keep only parts of a model on the GPU at a time.
        return "model" if any(flag in self.flags for flag in OFFLOAD_FLAGS) else "none"

    @property
    def attention(self) -> str | None:
        for flag in self.flags:
            if flag in ATTENTION_FLAGS:
                return ATTENTION_FLAGS[flag]
        return None


def _unreachable(url: str) -> KleinBenchError:
    return KleinBenchError(
        f"ComfyUI is not answering at {url}: start it (`python main.py` in your ComfyUI "
        "folder) or pass its address with --comfyui-url."
    )


def preflight(client: ComfyUIClient) -> Server:
    """Check everything the benchmark needs from the server; KleinBenchError if not."""
    url = client.url
    try:
        stats = client.system_stats()
        object_info = client.object_info()
        queue_state = client.queue()
    except ComfyUIUnreachable as exc:
        raise _unreachable(url) from exc
    except ComfyUIHTTPError as exc:
        raise KleinBenchError(
            f"{url} answered, but not as ComfyUI does ({exc.path} gave HTTP {exc.status}): "
            "check that --comfyui-url points at ComfyUI."
        ) from exc
    if not all(isinstance(answer, dict) for answer in (stats, object_info, queue_state)):
        raise KleinBenchError(
            f"{url} answered, but not as ComfyUI does: check that --comfyui-url points at ComfyUI."
        )

    flags = launch_flags(stats.get("system", {}).get("argv") or [])
    devices = stats.get("devices") or []
    device = devices[0] if devices and isinstance(devices[0], dict) else {}
    device_type = device.get("type")
    if "--cpu" in flags or device_type == "cpu":
        raise KleinBenchError(
            "ComfyUI runs on the CPU (started with --cpu, or it found no CUDA GPU): restart "
            "it on your NVIDIA GPU without --cpu."
        )
    if device_type != "cuda":
        raise KleinBenchError(
            f"ComfyUI runs on a device that is not an NVIDIA GPU ({device_type or 'unknown'}), "
            "but klein-bench benchmarks NVIDIA GPUs: run ComfyUI with a CUDA build of PyTorch "
            "on an NVIDIA GPU."
        )

    busy = len(queue_state.get("queue_running") or []) + len(queue_state.get("queue_pending") or [])
    if busy:
        raise KleinBenchError(
            f"ComfyUI is busy with {busy} queued prompt{'s' if busy != 1 else ''}: wait for "
            f"{'them' if busy != 1 else 'it'} to finish (or clear its queue), then run "
            "klein-bench again."
        )

    probe_files = workflow.ModelFiles(
        workflow.PREFERRED_DIFFUSION_MODEL, workflow.TEXT_ENCODER, workflow.VAE
    )
    probe = workflow.build_workflow(probe_files, CURRENT, prompt="", seed=0)
    missing_nodes = workflow.missing_node_types(probe, object_info)
    if missing_nodes:
        raise KleinBenchError(
            f"This ComfyUI build has no {', '.join(missing_nodes)} node"
            f"{'s' if len(missing_nodes) > 1 else ''} (FLUX.2 [klein] needs a recent "
            f"ComfyUI): update it with {UPDATE_COMFYUI}, then restart it."
        )
    problems = workflow.incompatibilities(probe, object_info)
    if problems:
        raise KleinBenchError(
            f"This ComfyUI build cannot run FLUX.2 [klein] ({'; '.join(problems)}): update it "
            f"with {UPDATE_COMFYUI}, then restart it."
        )

    listings = {
        folder: workflow.file_listing(object_info, folder) for folder in workflow.FILE_INPUTS
    }
    files, missing = workflow.resolve_files(listings)
    if files is None:
        places = [
            f"{path.split('/', 1)[1]} in ComfyUI/models/{path.split('/', 1)[0]}/"
            for path in missing
        ]
        listing = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
        raise KleinBenchError(
            f"ComfyUI cannot find the FLUX.2 [klein] 4B file{'s' if len(missing) > 1 else ''} "
            f"it needs: put {listing}, then run klein-bench again."
        )
    return Server(url=client.url, stats=stats, files=files, flags=flags, device=device)


def launch_flags(argv: list[Any]) -> list[str]:
    """The speed- and memory-relevant flags from ComfyUI's command line, values inline."""
    flags: list[str] = []
    tokens = [str(token) for token in argv[1:]]
    index = 0
    while index < len(tokens):
        name, has_value, value = tokens[index].partition("=")
        index += 1
        if name in FLAGS:
            flags.append(name)
        elif name in VALUE_FLAGS:
            values = [value] if has_value else []
            while not has_value and index < len(tokens) and not tokens[index].startswith("--"):
                values.append(tokens[index])
                index += 1
            flags.append(f"{name}={','.join(values)}"[:64] if values else name)
    return flags[:32]


# --- running ---------------------------------------------------------------------------


@dataclass
class Execution:
    """One prompt as ComfyUI ran it."""

    label: str
    status: str = "success"  # success | out_of_memory | error
    stage: str | None = None
    message: str = ""
    seconds: float | None = None
    wall_seconds: float | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    load_seconds: float | None = None
    # The node types ComfyUI served from its cache.
    cached: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    timestamped: bool = True

    @property
    def ok(self) -> bool:
        return self.status == "success"


class _Runner:
    def __init__(
        self,
        client: ComfyUIClient,
        server: Server,
        protocol: Protocol,
        gpu_index: int,
        progress: Progress,
        run_timeout: float,
    ):
        self.client = client
        self.server = server
        self.protocol = protocol
        self.gpu_index = gpu_index
        self.progress = progress
        self.run_timeout = run_timeout
        self.client_id = uuid.uuid4().hex
        self.stream: EventStream | None = None
        self.notes: list[str] = []
        self.disagreements: list[tuple[str, float, float]] = []
        self.pid: int | None = None
        self.nvml_gpu: GpuInfo | None = None

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.progress.note(message)

    # The GPU and the process to watch --------------------------------------------------

    def _locate(self) -> None:
        """Find ComfyUI's process and check NVML's GPU `gpu_index` is the one it uses."""
        if not _is_local(self.server.url):
            self.note(
                "ComfyUI runs on another machine, so the agent cannot watch its GPU: the "
                "VRAM, energy and telemetry figures are left empty."
            )
            return
        self.pid = _comfyui_pid(self.server.url, self.server.stats)
        try:
            pynvml = nvml()
            self.nvml_gpu = gpu_info(self.gpu_index)
        except KleinBenchError:
            self.note(
                "NVML (the NVIDIA driver's monitoring library) is unavailable, so the VRAM, "
                "energy and telemetry figures are left empty: `klein-bench doctor` says why."
            )
            return
        if self.pid is None:
            self.note(
                "The ComfyUI process could not be found (in a container its process is not "
                "visible), so only the device-wide VRAM figure is recorded."
            )
            return
        holders = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            device = pynvml.nvmlDeviceGetHandleByIndex(index)
            processes = safe(pynvml.nvmlDeviceGetComputeRunningProcesses, device) or []
            if any(p.pid == self.pid for p in processes):
                holders.append(index)
        if holders and self.gpu_index not in holders:
            other = gpu_info(holders[0])
            raise KleinBenchError(
                f"ComfyUI runs on GPU {holders[0]} ({other.name}), not GPU {self.gpu_index}: "
                f"pass --gpu {holders[0]}."
            )

    def _gpu_section(self, sampler: MemorySampler | None) -> dict[str, Any]:
        if self.nvml_gpu is not None:
            from klein_bench.state import Home

            return gpu_section(
                self.nvml_gpu,
                salt=Home.from_env().gpu_salt(),
                pcie_generation=sampler.collector.max_pcie_generation if sampler else None,
                pcie_width=sampler.collector.max_pcie_width if sampler else None,
            )
        # Without NVML: what ComfyUI says about its device.
        name = _device_name(str(self.server.device.get("name") or ""))
        total = self.server.device.get("vram_total")
        return {
            "device": "cuda",
            "name": name[:128],
            "memory_total_mb": total / MIB if isinstance(total, (int, float)) and total else None,
            "compute_capability": None,
            "uuid_hash": None,
            "drives_display": None,
            "power_limit_w": None,
            "pcie_generation": None,
            "pcie_width": None,
        }

    # The benchmark ---------------------------------------------------------------------

    def run(self, runs: int) -> dict[str, Any]:
        self._locate()
        watch_gpu = self.nvml_gpu is not None
        device = nvml_device(self.gpu_index) if watch_gpu else None
        # A thread is enough: ComfyUI runs in its own process, so sampling here costs it
        # nothing.
        sampler = MemorySampler(device, pids=[self.pid] if self.pid else None, in_process=True)
        energy = EnergyMeter(device)
        try:
            self.stream = self.client.events(self.client_id)
        except ComfyUIError:
            self.note(
                "ComfyUI's progress WebSocket (/ws) is unavailable, so stage times are left "
                "empty and the agent polls /history."
            )
        # Unload whatever ComfyUI holds so the baseline is an idle GPU and the warm-up
        # measures loading.
        try:
            self.client.free(unload_models=True, free_memory=True)
        except ComfyUIUnreachable as exc:
            raise _unreachable(self.server.url) from exc
        time.sleep(FREE_SETTLE_S)

        sampler.start()
        timed: list[dict[str, Any]] = []
        warmup: Execution | None = None
        failure: Execution | None = None
        evidence: dict[str, Any] | None = None
        phase = "warmup"
        warmup_seconds = 0.0
        try:
            sampler.set_label("warmup", "other")
            for number, (prompt, seed) in enumerate(warmup_inputs(self.protocol)):
                self.progress.stage("Warm-up (ComfyUI loads the model files)", self.protocol.steps)
                execution = self._execute(prompt, seed, "the warm-up")
                warmup = warmup if number else execution
                if not execution.ok:
                    failure = execution
                    break
                warmup_seconds += execution.seconds or 0.0
            if failure is None:
                sampler.set_label("timed", "other")
                phase = "timed"
            for index in range(runs if failure is None else 0):
                prompt, seed = self.protocol.prompt_and_seed(index)
                self.progress.stage(f"Timed run {index + 1} of {runs}", self.protocol.steps)
                before = energy.read_joules()
                execution = self._execute(prompt, seed, f"timed run {index + 1}")
                after = energy.read_joules()
                if not execution.ok:
                    failure = execution
                    break
                self._check_not_cached(execution, index)
                self._check_clocks(execution)
                if index == 0:
                    evidence = self._evidence(execution)
                timed.append(
                    run_record(
                        seconds=execution.seconds,
                        prompt_index=index % len(self.protocol.prompts),
                        seed=seed,
                        text_encoding_seconds=execution.stage_seconds.get("text_encoding"),
                        denoising_seconds=execution.stage_seconds.get("denoising"),
                        vae_decode_seconds=execution.stage_seconds.get("vae_decode"),
                        wall_seconds=execution.wall_seconds,
                        energy_joules=EnergyMeter.delta(before, after),
                    )
                )
        except KeyboardInterrupt:
            # Leave the user's ComfyUI idle, not busy with an abandoned benchmark image.
            with contextlib.suppress(ComfyUIError):
                self.client.interrupt()
            raise
        finally:
            sampler.stop()
            if self.stream is not None:
                self.stream.close()

        if failure is not None:
            outcome = outcome_section(failure.status, failure.stage, failure.message, phase=phase)
        else:
            outcome = outcome_section("success", None, self._clock_report(len(timed)))
        peak_vram, vram_source = headline(
            process_mb=sampler.peak("peak_process_mb"),
            reserved_mb=None,
            context_mb=None,
            device_mb=sampler.peak("peak_device_mb"),
            baseline_mb=sampler.baseline_device_mb,
        )
        memory = memory_section(
            baseline_device_mb=sampler.baseline_device_mb,
            # torch's own peaks exist only inside ComfyUI's process.
            peak_allocated_mb=None,
            peak_reserved_mb=None,
            peak_process_mb=sampler.peak("peak_process_mb"),
            peak_device_mb=sampler.peak("peak_device_mb"),
            peak_rss_mb=sampler.peak("peak_rss_mb") if self.pid else None,
            peak_vram_mb=peak_vram,
            vram_source=vram_source,
            system_ram_mb=system_ram_mb() if _is_local(self.server.url) else _ram_mb(self.server),
            sample_interval_ms=sampler.interval_s * 1000 if watch_gpu or self.pid else None,
        )
        driver, cuda_driver = driver_versions() if watch_gpu else (None, None)
        precision = self.server.files.precision
        offload = self.server.offload
        return build_payload(
            model=KLEIN_4B.slug,
            synthetic=False,
            configuration=configuration_section(
                runtime=RUNTIME,
                precision=precision,
                offload=offload,
                width=self.protocol.width,
                height=self.protocol.height,
                steps=self.protocol.steps,
                preset=_preset(precision, offload),
                fp8_method="bfl-fp8-file" if precision == "fp8-storage" else None,
            ),
            gpu=self._gpu_section(sampler if watch_gpu else None),
            outcome=outcome,
            runs=timed,
            memory=memory,
            environment=self._environment(driver, cuda_driver),
            load_seconds=warmup.load_seconds if warmup else None,
            warmup_seconds=warmup_seconds if failure is None or phase == "timed" else None,
            energy=energy_section(timed),
            telemetry=self._telemetry(sampler) if watch_gpu else None,
            evidence=evidence,
            protocol=self.protocol,
        )

    def _telemetry(self, sampler: MemorySampler) -> dict[str, Any]:
        info = self.nvml_gpu
        assert info is not None
        return telemetry_section(
            sampler.collector.timed,
            power_limit_w=info.power_limit_w,
            default_power_limit_w=info.default_power_limit_w,
            max_sm_clock_mhz=info.max_sm_clock_mhz,
        )

    def _environment(self, driver: str | None, cuda_driver: str | None) -> dict[str, Any]:
        system = self.server.stats.get("system", {})
        torch_version = system.get("pytorch_version")
        cuda = None
        match = re.search(r"\+cu(\d+)(\d)$", str(torch_version or ""))
        if match:
            cuda = f"{match.group(1)}.{match.group(2)}"
        python = str(system.get("python_version") or "").split(" ")[0] or None
        overrides: dict[str, Any] = {
            "python": python,
            "torch": str(torch_version)[:64] if torch_version else None,
            "cuda": cuda,
            "diffusers": None,
            "transformers": None,
        }
        if not _is_local(self.server.url):
            overrides["os"] = str(system.get("os") or "")[:64] or None
        return environment_section(
            runtime_version=self.server.version,
            runtime_flags=self.server.flags,
            attention=self.server.attention,
            driver=driver,
            cuda_driver=cuda_driver,
            **overrides,
        )

    # One prompt ------------------------------------------------------------------------

    def _execute(self, prompt: str, seed: int, label: str) -> Execution:
        graph = workflow.build_workflow(self.server.files, self.protocol, prompt=prompt, seed=seed)
        started = time.perf_counter()
        try:
            prompt_id = self.client.queue_prompt(graph, client_id=self.client_id)
        except PromptRejected as exc:
            raise KleinBenchError(
                f"ComfyUI refused the benchmark graph ({exc}): update ComfyUI with "
                f"{UPDATE_COMFYUI}, then restart it."
            ) from exc
        except ComfyUIUnreachable:
            return self._gone(label, "other")
        except ComfyUIHTTPError as exc:
            raise KleinBenchError(
                f"ComfyUI failed to queue the benchmark graph (HTTP {exc.status}): check its "
                "console, then run klein-bench again."
            ) from exc
        return self._wait(prompt_id, graph, label, started)

    def _wait(self, prompt_id: str, graph: dict[str, Any], label: str, started: float) -> Execution:
        deadline = started + self.run_timeout
        spans: list[tuple[float, str | None]] = []  # (received, node id) of `executing`
        last_node: str | None = None
        finished_at: float | None = None
        next_poll = started
        while True:
            now = time.perf_counter()
            if now > deadline:
                return Execution(
                    label,
                    "error",
                    self._stage_of(graph, last_node),
                    f"ComfyUI did not finish {label} within {self.run_timeout:g} seconds.",
                )
            event = self._next_event()
            if event is not None and event.data.get("prompt_id") in (None, prompt_id):
                if event.type == "executing" and event.data.get("prompt_id") == prompt_id:
                    node = event.data.get("node")
                    spans.append((event.received, node))
                    last_node = node or last_node
                    if node is None:
                        finished_at = event.received
                elif event.type == "progress" and event.data.get("prompt_id") == prompt_id:
                    self.progress.advance(1)
                elif (
                    event.type in ("execution_success", "execution_error", "execution_interrupted")
                    and finished_at is None
                ):
                    finished_at = event.received
                    spans.append((event.received, None))
            if self.stream is None or finished_at is not None or time.perf_counter() >= next_poll:
                # Without the WebSocket, /history is the only news; with it, an occasional
                # look guards against a missed message.
                next_poll = time.perf_counter() + (POLL_INTERVAL_S if self.stream is None else 1.0)
                try:
                    entry = self._history(prompt_id)
                except ComfyUIUnreachable:
                    return self._gone(label, self._stage_of(graph, last_node))
                if entry is not None:
                    done = finished_at if finished_at is not None else time.perf_counter()
                    return self._finish(entry, graph, label, done - started, spans)
            if self.stream is None:
                time.sleep(POLL_INTERVAL_S)

    def _next_event(self) -> Event | None:
        if self.stream is None:
            return None
        try:
            event = self.stream.queue.get(timeout=POLL_INTERVAL_S)
        except Empty:
            return None
        if event.type == CLOSED:
            # The server hung up the WebSocket; polling /history tells whether it is gone.
            self.stream = None
        return event

    def _history(self, prompt_id: str) -> dict[str, Any] | None:
        for attempt in range(3):
            try:
                return self.client.history(prompt_id)
            except ComfyUIUnreachable:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        return None

    def _finish(
        self,
        entry: dict[str, Any],
        graph: dict[str, Any],
        label: str,
        wall: float,
        spans: list[tuple[float, str | None]],
    ) -> Execution:
        status = entry.get("status") or {}
        messages = {
            m[0]: m[1] for m in status.get("messages") or [] if isinstance(m, list) and len(m) == 2
        }
        execution = Execution(label, wall_seconds=round(wall, 6))
        cached = (messages.get("execution_cached") or {}).get("nodes") or []
        execution.cached = [graph[str(n)]["class_type"] for n in cached if str(n) in graph]
        if "execution_error" in messages or "execution_interrupted" in messages:
            return _failed(execution, messages, graph)
        if status.get("status_str") not in (None, "success"):
            execution.status, execution.stage = "error", "other"
            execution.message = f"ComfyUI reported {label} as {status.get('status_str')!r}."
            return execution
        start = (messages.get("execution_start") or {}).get("timestamp")
        end = (messages.get("execution_success") or {}).get("timestamp")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
            execution.seconds = (end - start) / 1000
        else:
            # Older builds do not timestamp their status messages.
            execution.timestamped = False
            execution.seconds = execution.wall_seconds
            if not any("timestamp" in n for n in self.notes):
                self.note(
                    "This ComfyUI build does not timestamp its status messages, so the "
                    "agent's clock timed the runs."
                )
        execution.stage_seconds, execution.load_seconds = _stage_times(spans, graph)
        for output in (entry.get("outputs") or {}).values():
            execution.images.extend(i for i in output.get("images") or [] if isinstance(i, dict))
        return execution

    def _gone(self, label: str, stage: str) -> Execution:
        process = ""
        if self.pid is not None and not psutil.pid_exists(self.pid):
            process = "its process exited; "
        return Execution(
            label,
            "error",
            stage,
            f"ComfyUI stopped answering during {label} ({process}a crash or the operating "
            "system killing it for lack of memory looks like this): see ComfyUI's console.",
        )

    @staticmethod
    def _stage_of(graph: dict[str, Any], node_id: str | None) -> str:
        if node_id is None or node_id not in graph:
            return "other"
        return workflow.STAGE_BY_NODE_TYPE.get(graph[node_id]["class_type"], "other")

    # Checks on a finished run --------------------------------------------------------

    def _check_not_cached(self, execution: Execution, index: int) -> None:
        served = sorted(t for t in execution.cached if t in workflow.PER_IMAGE_NODE_TYPES)
        if served:
            raise KleinBenchError(
                f"ComfyUI served part of timed run {index + 1} ({', '.join(served)}) from its "
                "cache, so it cannot be timed: restart ComfyUI without --cache-lru or "
                f"--cache-ram, or run at most {len(self.protocol.prompts)} timed runs."
            )

    def _check_clocks(self, execution: Execution) -> None:
        if not execution.timestamped or execution.seconds is None or execution.wall_seconds is None:
            return
        comfy, wall = execution.seconds, execution.wall_seconds
        tolerance = max(CLOCK_TOLERANCE_S, CLOCK_TOLERANCE_FRACTION * comfy)
        # ComfyUI's span sits inside the agent's (which adds queueing and HTTP); it can
        # be shorter by the overheads, never longer.
        if comfy > wall + 0.05 or wall - comfy > tolerance:
            self.disagreements.append((execution.label, comfy, wall))

    def _clock_report(self, runs: int) -> str:
        """One sentence on runs whose two timings disagree, for the user and the result."""
        if not self.disagreements:
            return ""
        label, comfy, wall = self.disagreements[0]
        report = (
            f"ComfyUI's clock and the agent's disagree on {len(self.disagreements)} of {runs} "
            f"timed runs ({label}: ComfyUI timed {comfy:.3f} s, the agent {wall:.3f} s)."
        )
        self.note(report)
        return report

    def _evidence(self, execution: Execution) -> dict[str, Any] | None:
        if not execution.images:
            return None
        image = execution.images[0]
        try:
            png = self.client.view(
                str(image.get("filename", "")),
                str(image.get("subfolder", "")),
                str(image.get("type", "temp")),
            )
        except ComfyUIError:
            self.note("ComfyUI did not serve the first image back, so no image evidence is sent.")
            return None
        try:
            from PIL import Image

            from klein_bench.evidence import evidence_section
        except ImportError:
            self.note(
                "Pillow is not installed, so no image evidence (perceptual hash and thumbnail) "
                'is sent: install it with `pip install "klein-bench[comfyui]"`.'
            )
            return None
        try:
            with Image.open(io.BytesIO(png)) as picture:
                return evidence_section(picture.convert("RGB"))
        except (OSError, ValueError):
            self.note("ComfyUI's first image could not be read, so no image evidence is sent.")
            return None


def _failed(execution: Execution, messages: dict[str, Any], graph: dict[str, Any]) -> Execution:
    error = messages.get("execution_error") or messages.get("execution_interrupted") or {}
    node_id = str(error.get("node_id", ""))
    node_type = str(error.get("node_type") or graph.get(node_id, {}).get("class_type") or "")
    execution.stage = workflow.STAGE_BY_NODE_TYPE.get(node_type, "other")
    if "execution_interrupted" in messages:
        execution.status = "error"
        execution.message = (
            f"ComfyUI's {execution.label} was interrupted in {node_type} (someone pressed "
            "Cancel or called /interrupt)."
        )
        return execution
    exception_type = str(error.get("exception_type") or "")
    text = str(error.get("exception_message") or "").strip()
    if _is_oom(exception_type, text):
        execution.status = "out_of_memory"
        first_line = text.splitlines()[0].strip() if text else ""
        execution.message = f"Out of memory in {node_type}: {exception_type} {first_line}".strip()
    else:
        execution.status = "error"
        detail = text.splitlines()[0].strip() if text else ""
        execution.message = f"{node_type} failed: {exception_type}: {detail}".strip()
    return execution


def _is_oom(exception_type: str, text: str) -> bool:
    lowered = text.lower()
    return (
        exception_type.endswith("OutOfMemoryError")
        or "out of memory" in lowered
        or "ran out of memory" in lowered
    )


def _stage_times(
    spans: list[tuple[float, str | None]], graph: dict[str, Any]
) -> tuple[dict[str, float], float | None]:
    """Seconds per benchmark stage from the `executing` messages (each node runs until
    the next message), and the loaders' seconds."""
    if not spans or spans[-1][1] is not None:
        return {}, None
    totals: dict[str, float] = {}
    load = 0.0
    saw_loader = False
    for (start, node_id), (end, _) in itertools.pairwise(spans):
        if node_id is None or node_id not in graph:
            continue
        class_type = graph[node_id]["class_type"]
        if class_type in workflow.LOADER_TYPES:
            load += end - start
            saw_loader = True
            continue
        stage = workflow.STAGE_BY_NODE_TYPE.get(class_type)
        if stage in ("text_encoding", "denoising", "vae_decode"):
            totals[stage] = totals.get(stage, 0.0) + end - start
    return {k: round(v, 6) for k, v in totals.items()}, round(load, 6) if saw_loader else None


def _preset(precision: str, offload: str) -> str | None:
    preset = preset_for(precision, offload)
    return preset.name if preset else None


def _device_name(comfy_name: str) -> str:
    """'cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync' -> 'NVIDIA GeForce RTX 4090'."""
    name = re.sub(r"^cuda:\d+\s+", "", comfy_name)
    return name.rsplit(" : ", 1)[0].strip()


def _ram_mb(server: Server) -> float | None:
    total = server.stats.get("system", {}).get("ram_total")
    return total / MIB if isinstance(total, (int, float)) and total else None


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    local = {
        address.address.split("%")[0]
        for entries in psutil.net_if_addrs().values()
        for address in entries
    }
    for address in addresses:
        try:
            if ipaddress.ip_address(address.split("%")[0]).is_loopback:
                return True
        except ValueError:
            continue
        if address in local:
            return True
    return False


def _comfyui_pid(url: str, stats: dict[str, Any]) -> int | None:
    """The PID of the process listening on ComfyUI's port, else the one whose command
    line ends with the argv ComfyUI reports."""
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if (
                connection.status == psutil.CONN_LISTEN
                and connection.laddr
                and connection.laddr.port == port
                and connection.pid
            ):
                return connection.pid
    except (psutil.AccessDenied, OSError):
        pass
    argv = [str(a) for a in stats.get("system", {}).get("argv") or []]
    if not argv:
        return None
    matches = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if len(cmdline) >= len(argv) and cmdline[-len(argv) :] == argv:
            matches.append(process.info["pid"])
    return matches[0] if len(matches) == 1 else None
