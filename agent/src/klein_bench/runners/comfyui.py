"""The ComfyUI runtime: the benchmark protocol run through the user's own ComfyUI.

The agent drives a running ComfyUI over its HTTP API with the built-in Klein 4B graph
(`comfyui_workflow`). `comfyui_preflight` checks the server first (version, device,
idle queue, nodes, the three files); each problem is a KleinBenchError with the fix.
`comfyui_backend` runs one image at a time; this module is the scenario around it: it
finds ComfyUI's process and GPU (`comfyui_process`), runs the protocol's warm-ups and
timed runs under the memory sampler and energy meter, reads what ComfyUI really ran from
its log (`comfyui_logs`) and builds the payload.

Per image, `seconds` is ComfyUI's own account (`execution_start` to `execution_success`
in `/history/<id>`), `wall_seconds` the agent's clock; a large gap between them is
reported. Every timed run uses a prompt and seed that differ from the run before it, so
ComfyUI's cache never serves an image; the runner checks `execution_cached` to be sure.

With `--model klein-tiny-random` the agent writes tiny random-weight files into the
model folders of a ComfyUI on this machine (`comfyui_tiny`) and runs the same graph on
them at 64x64: on a GPU, or on a CPU ComfyUI (allowed for this test model only).
"""

from __future__ import annotations

import io
import re
from typing import Any

from klein_bench.contract.catalog import KLEIN_4B, MODELS, ModelSpec, preset_for
from klein_bench.contract.protocol import CURRENT, Protocol
from klein_bench.errors import KleinBenchError
from klein_bench.gpu import MIB, GpuInfo, driver_versions, gpu_info, nvml
from klein_bench.measure import EnergyMeter, MemorySampler, energy_section, system_ram_mb
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
from klein_bench.runners import comfyui_logs as logs
from klein_bench.runners import comfyui_tiny
from klein_bench.runners import comfyui_workflow as workflow
from klein_bench.runners.comfyui_backend import (
    RUN_TIMEOUT_S,
    ComfyUIBackend,
    Generation,
    RunFailed,
)
from klein_bench.runners.comfyui_client import ComfyUIClient, ComfyUIError
from klein_bench.runners.comfyui_preflight import Server, device_name, preflight
from klein_bench.runners.comfyui_process import check_gpu, comfyui_pid, is_local

RUNTIME = "comfyui"
# The agent's clock and ComfyUI's may differ by the HTTP round trips and the history
# poll; beyond this the two accounts of a run disagree.
CLOCK_TOLERANCE_S = 0.5
CLOCK_TOLERANCE_FRACTION = 0.25


def run_protocol(
    *,
    url: str,
    runs: int,
    gpu_index: int,
    progress: Progress,
    model: str = KLEIN_4B.slug,
    weights: str = "auto",
    protocol: Protocol = CURRENT,
    run_timeout: float = RUN_TIMEOUT_S,
) -> dict[str, Any]:
    """Run the protocol through the ComfyUI at `url`; the result payload.

    `weights` picks the Klein 4B file: "fp8", "bf16" or "auto" (FP8 when listed).
    Raises KleinBenchError (one sentence with the fix) for anything that stops the
    benchmark before it measures, and for a setup that fails while it runs (a damaged or
    mismatched model file): those are not results.
    """
    spec = MODELS[model]
    try:
        client = ComfyUIClient(url)
    except ValueError as exc:
        raise KleinBenchError(
            f"{exc}: pass ComfyUI's address with --comfyui-url, e.g. http://127.0.0.1:8188."
        ) from exc
    try:
        progress.stage("Checking ComfyUI")
        server = preflight(client, tiny=spec.built_in, choice=weights)
        if spec.built_in:
            if not is_local(server.url):
                raise KleinBenchError(
                    "The tiny test model is written into ComfyUI's model folders, so it needs "
                    "a ComfyUI on this machine: start one here, or use the diffusers runtime "
                    "for the tiny model."
                )
            progress.stage("Writing the tiny test model for ComfyUI")
            server.files = comfyui_tiny.install(client, progress.note)
        return _Scenario(client, server, spec, protocol, gpu_index, progress, run_timeout).run(runs)
    finally:
        client.close()


class _Scenario:
    def __init__(
        self,
        client: ComfyUIClient,
        server: Server,
        spec: ModelSpec,
        protocol: Protocol,
        gpu_index: int,
        progress: Progress,
        run_timeout: float,
    ):
        self.client = client
        self.server = server
        self.spec = spec
        self.protocol = protocol
        self.gpu_index = gpu_index
        self.progress = progress
        self.run_timeout = run_timeout
        self.local = is_local(server.url)
        self.pid: int | None = None
        self.nvml_gpu: GpuInfo | None = None
        self.disagreements: list[tuple[str, float, float]] = []
        self.backend: ComfyUIBackend | None = None

    def note(self, message: str) -> None:
        self.progress.note(message)

    # The process and the GPU to watch ------------------------------------------------

    def _locate(self) -> None:
        if not self.local:
            self.note(
                "ComfyUI runs on another machine, so the agent cannot watch its GPU: the "
                "VRAM, energy and telemetry figures are left empty."
            )
            return
        self.pid = comfyui_pid(self.server.url, self.server.stats)
        if self.server.on_cpu:
            return
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
        check_gpu(pynvml, self.pid, self.gpu_index)

    # The benchmark ---------------------------------------------------------------------

    def run(self, runs: int) -> dict[str, Any]:
        self._locate()
        files = self.server.files
        assert files is not None
        self.note(
            f"ComfyUI {self.server.version or '(version unknown)'} runs "
            f"{files.diffusion_model_basename}."
        )
        watch_gpu = self.nvml_gpu is not None
        sampler = MemorySampler(
            self.gpu_index if watch_gpu else None, pids=[self.pid] if self.pid else None
        )
        energy = EnergyMeter(self.gpu_index if watch_gpu else None)
        backend = ComfyUIBackend(
            self.client,
            self.server,
            self.protocol,
            self.progress,
            width=self.spec.width,
            height=self.spec.height,
            pid=self.pid,
            run_timeout=self.run_timeout,
        )
        self.backend = backend
        backend.load()
        log_before = self._log()

        sampler.start()
        timed: list[dict[str, Any]] = []
        warmups: list[Generation] = []
        failure: RunFailed | None = None
        first: Generation | None = None
        try:
            for index in range(self.protocol.warmup_runs):
                prompt, seed = self._warmup_prompt_and_seed(index)
                self.progress.stage(
                    "Warm-up (ComfyUI loads the model files)"
                    if index == 0
                    else f"Warm-up {index + 1} of {self.protocol.warmup_runs}",
                    self.protocol.steps,
                )
                warmups.append(backend.generate(prompt, seed, "the warm-up"))
            for index in range(runs):
                prompt, seed = self.protocol.prompt_and_seed(index)
                self.progress.stage(f"Timed run {index + 1} of {runs}", self.protocol.steps)
                before = energy.read_joules()
                generation = backend.generate(prompt, seed, f"timed run {index + 1}")
                after = energy.read_joules()
                self._check_not_cached(generation, index)
                self._check_clocks(generation)
                first = first or generation
                timed.append(
                    run_record(
                        seconds=generation.seconds,
                        prompt_index=index % len(self.protocol.prompts),
                        seed=seed,
                        text_encoding_seconds=generation.stage_seconds.get("text_encoding"),
                        denoising_seconds=generation.stage_seconds.get("denoising"),
                        vae_decode_seconds=generation.stage_seconds.get("vae_decode"),
                        wall_seconds=generation.wall_seconds,
                        energy_joules=EnergyMeter.delta(before, after),
                    )
                )
        except RunFailed as exc:
            failure = exc
        except KeyboardInterrupt:
            # Leave the user's ComfyUI idle, not busy with an abandoned benchmark image.
            backend.interrupt()
            raise
        finally:
            sampler.stop()
            backend.close()

        if failure is not None:
            self.progress.abandon()
            outcome = outcome_section(failure.status, failure.stage, failure.message)
        else:
            outcome = outcome_section("success", None, self._clock_report(len(timed)))
        kernel = self._kernel_path(log_before)
        offload = "model" if self.server.launch_offload or kernel.partially_loaded else "none"
        precision = kernel.precision
        memory = memory_section(
            baseline_device_mb=sampler.baseline_device_mb,
            # torch's own peaks exist only inside ComfyUI's process.
            peak_allocated_mb=None,
            peak_reserved_mb=None,
            peak_process_mb=sampler.peak_process_mb,
            peak_device_mb=sampler.peak_device_mb,
            peak_rss_mb=sampler.peak_rss_mb if self.pid else None,
            system_ram_mb=system_ram_mb() if self.local else _ram_mb(self.server),
            sample_interval_ms=sampler.interval_s * 1000 if sampler.threaded else None,
        )
        driver, cuda_driver = driver_versions() if watch_gpu else (None, None)
        warmup = warmups[0] if warmups else None
        return build_payload(
            model=self.spec.slug,
            synthetic=False,
            configuration=configuration_section(
                runtime=RUNTIME,
                precision=precision,
                offload=offload,
                width=self.spec.width,
                height=self.spec.height,
                steps=self.protocol.steps,
                preset=_preset(precision, offload),
                fp8_method=_fp8_method(files, precision),
            ),
            gpu=self._gpu_section(sampler if watch_gpu else None),
            outcome=outcome,
            runs=timed,
            memory=memory,
            environment=self._environment(driver, cuda_driver, kernel),
            load_seconds=warmup.load_seconds if warmup else None,
            warmup_seconds=warmup.seconds if warmup else None,
            energy=energy_section(timed),
            telemetry=sampler.telemetry() if watch_gpu else None,
            evidence=self._evidence(first) if first else None,
            protocol=self.protocol,
        )

    def _warmup_prompt_and_seed(self, index: int) -> tuple[str, int]:
        # Not the protocol's first prompt and seed: timed run 1 would then find its text
        # encoding in ComfyUI's cache. A warm-up is untimed, so its content is free.
        prompt, _ = self.protocol.warmup_prompt_and_seed
        suffix = "warm-up" if index == 0 else f"warm-up {index + 1}"
        return f"{prompt}, {suffix}", max(self.protocol.seeds) + 1 + index

    # What ran -------------------------------------------------------------------------

    def _log(self) -> list[dict[str, str]] | None:
        try:
            return self.client.log_entries()
        except ComfyUIError:
            return None

    def _kernel_path(self, before: list[dict[str, str]] | None) -> logs.KernelPath:
        files = self.server.files
        assert files is not None
        after = self._log()
        kernel = logs.read_log(logs.new_entries(before, after)) if after is not None else None
        if kernel is None:
            kernel = logs.assumed(files.weights)
            self.note(
                "ComfyUI's log (GET /internal/logs/raw) did not show the diffusion model "
                "loading, so the weight and compute dtypes are taken from the file and the "
                "launch flags."
            )
        kernel.model_file = files.diffusion_model_basename
        logs.apply_fast_fp8(
            kernel, requested=self.server.fp8_matmul_requested, capable=self._fp8_capable()
        )
        if kernel.fp8_matmul is None:
            self.note(
                "ComfyUI was started with --fast, but the agent cannot see whether this GPU "
                "has FP8 tensor cores, so the result says FP8 weights with BF16 compute."
            )
        return kernel

    def _fp8_capable(self) -> bool | None:
        """ComfyUI's `supports_fp8_compute`: compute capability 8.9 or newer."""
        if "--supports-fp8-compute" in self.server.flags:
            return True
        if self.server.on_cpu:
            return False
        capability = self.nvml_gpu.compute_capability if self.nvml_gpu else None
        if not capability:
            return None
        major, _, minor = capability.partition(".")
        return (int(major), int(minor or 0)) >= (8, 9)

    # Checks on a finished run --------------------------------------------------------

    def _check_not_cached(self, generation: Generation, index: int) -> None:
        served = sorted(t for t in generation.cached if t in workflow.PER_IMAGE_NODE_TYPES)
        if served:
            raise KleinBenchError(
                f"ComfyUI served part of timed run {index + 1} ({', '.join(served)}) from its "
                "cache, so it cannot be timed: restart ComfyUI without --cache-lru or "
                f"--cache-ram, or run at most {len(self.protocol.prompts)} timed runs."
            )

    def _check_clocks(self, generation: Generation) -> None:
        if not generation.timestamped:
            return
        comfy, wall = generation.seconds, generation.wall_seconds
        tolerance = max(CLOCK_TOLERANCE_S, CLOCK_TOLERANCE_FRACTION * comfy)
        # ComfyUI's span sits inside the agent's (which adds queueing and HTTP); it can
        # be shorter by the overheads, never longer.
        if comfy > wall + 0.05 or wall - comfy > tolerance:
            self.disagreements.append((generation.label, comfy, wall))

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

    # Payload sections ------------------------------------------------------------------

    def _gpu_section(self, sampler: MemorySampler | None) -> dict[str, Any]:
        if self.nvml_gpu is not None:
            from klein_bench.state import Home

            return gpu_section(
                self.nvml_gpu,
                salt=Home.from_env().gpu_salt(),
                pcie_generation=sampler.max_pcie_generation if sampler else None,
                pcie_width=sampler.max_pcie_width if sampler else None,
            )
        if self.server.on_cpu:
            return gpu_section(None, salt=b"")
        # Without NVML: what ComfyUI says about its device.
        name = device_name(str(self.server.device.get("name") or ""))
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

    def _environment(
        self, driver: str | None, cuda_driver: str | None, kernel: logs.KernelPath
    ) -> dict[str, Any]:
        system = self.server.system
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
            "kernel_path": kernel.section(),
        }
        if not self.local:
            overrides["os"] = str(system.get("os") or "")[:64] or None
        return environment_section(
            runtime_version=self.server.version,
            runtime_flags=self.server.flags,
            attention=self.server.attention,
            driver=driver,
            cuda_driver=cuda_driver,
            **overrides,
        )

    def _evidence(self, generation: Generation) -> dict[str, Any] | None:
        assert self.backend is not None
        png = self.backend.image(generation)
        if png is None:
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


def _preset(precision: str, offload: str) -> str | None:
    preset = preset_for(precision, offload)
    return preset.name if preset else None


def _fp8_method(files: workflow.ModelFiles, precision: str) -> str | None:
    if not precision.startswith("fp8"):
        return None
    # The BF16 file stored as FP8 comes from a launch flag such as --fp8_e4m3fn-unet.
    return "bfl-fp8-file" if files.weights == "fp8" else "comfyui-fp8-weight-dtype"


def _ram_mb(server: Server) -> float | None:
    total = server.system.get("ram_total")
    return total / MIB if isinstance(total, (int, float)) and total else None
