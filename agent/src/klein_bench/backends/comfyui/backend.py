"""The ComfyUI runtime as a backend of the shared measurement loop (klein_bench.scenario).

The scenario runs the protocol (warm-ups, timed images, trackers, failures, payload) on
`ComfyUIBackend` as on the diffusers one. What differs is where things happen:

- `describe()`: the GPU is the one ComfyUI's process uses, watched by PID on this machine
  (`Located`); a ComfyUI elsewhere gets no local GPU or host memory figures. torch's
  allocator lives inside ComfyUI, so `allocator()` is None and `prepare()` measures no
  CUDA context.
- `load()` only opens ComfyUI's progress WebSocket: ComfyUI loads the model files inside
  the first prompt (`loads_in_warmup`), so the loaders' seconds of the first warm-up are
  the model load (backends/comfyui/runner.py has emptied ComfyUI before the baseline).
- `generate()` queues the Klein graph (`execution`).
- `kernels()` reads what ComfyUI really ran from its log lines over the first warm-up
  (`logs`), and sets the configuration's precision, offload and preset from it.
- `release()` stops the benchmark's prompt, and only it, if one is running (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from klein_bench import measure, result, scenario
from klein_bench.backends.comfyui import logs
from klein_bench.backends.comfyui.client import ComfyUIClient, ComfyUIError
from klein_bench.backends.comfyui.execution import RUN_TIMEOUT_S, Execution
from klein_bench.backends.comfyui.preflight import Server, device_name
from klein_bench.contract.catalog import preset_for
from klein_bench.contract.protocol import Protocol
from klein_bench.contract.registry import ModelSpec
from klein_bench.gpu import MIB, GpuInfo, NvmlDevice, driver_versions
from klein_bench.progress import Progress

RUNTIME = "comfyui"


@dataclass
class Located:
    """Where ComfyUI runs, as far as the agent can watch it."""

    local: bool
    pid: int | None = None
    nvml: NvmlDevice | None = None
    info: GpuInfo | None = None


class ComfyUIBackend:
    """ComfyUI over its HTTP API (see klein_bench.scenario for the interface)."""

    def __init__(
        self,
        client: ComfyUIClient,
        server: Server,
        spec: ModelSpec,
        protocol: Protocol,
        progress: Progress,
        located: Located,
        *,
        run_timeout: float = RUN_TIMEOUT_S,
    ):
        assert server.files is not None
        self.client = client
        self.server = server
        self.files = server.files
        self.spec = spec
        self.protocol = protocol
        self.progress = progress
        self.located = located
        self.on_stage: Callable[[str], None] = lambda stage: None
        self.execution = Execution(
            client,
            server,
            protocol,
            progress,
            width=spec.width,
            height=spec.height,
            pid=located.pid,
            run_timeout=run_timeout,
            model_name=spec.name,
        )
        self.configuration: dict[str, Any] = {}
        self._log_before: list[dict[str, str]] | None = None

    # What is measured ------------------------------------------------------------------

    def describe(self) -> scenario.Description:
        # Until ComfyUI's log says what ran: the file and the launch flags.
        self.configuration = self._configuration(self._assumed())
        info = self.located.info
        return scenario.Description(
            model=self.spec.slug,
            synthetic=False,
            configuration=self.configuration,
            gpu=self._gpu_section(),
            environment=self._environment(),
            watch=scenario.Watch(
                device=self.located.nvml,
                pids=[self.located.pid] if self.located.pid else [],
                memory_total_mb=info.memory_total_mb if info else None,
                power_limit_w=info.power_limit_w if info else None,
                default_power_limit_w=info.default_power_limit_w if info else None,
                max_sm_clock_mhz=info.max_sm_clock_mhz if info else None,
            ),
            # The tiny model's ComfyUI files are not the tiny diffusers architecture the
            # contract describes, so its work is not stated.
            work=None
            if self.spec.built_in
            else result.work_section(
                self.spec.slug,
                width=self.spec.width,
                height=self.spec.height,
                steps=self.protocol.steps,
                protocol=self.protocol,
            ),
            system_ram_mb=measure.system_ram_mb() if self.located.local else self._server_ram(),
            label=self.spec.name,
            loads_in_warmup=True,
        )

    def _gpu_section(self) -> dict[str, Any]:
        if self.located.info is not None:
            from klein_bench.state import Home

            return result.gpu_section(self.located.info, salt=Home.from_env().gpu_salt())
        if self.server.on_cpu:
            return result.gpu_section(None, salt=b"")
        # Without NVML: what ComfyUI says about its device.
        total = self.server.device.get("vram_total")
        return {
            "device": "cuda",
            "name": device_name(str(self.server.device.get("name") or ""))[:128],
            "memory_total_mb": total / MIB if isinstance(total, (int, float)) and total else None,
            "compute_capability": None,
            "uuid_hash": None,
            "drives_display": None,
            "power_limit_w": None,
            "pcie_generation": None,
            "pcie_width": None,
        }

    def _environment(self) -> dict[str, Any]:
        system = self.server.system
        torch_version = system.get("pytorch_version")
        cuda = None
        match = re.search(r"\+cu(\d+)(\d)$", str(torch_version or ""))
        if match:
            cuda = f"{match.group(1)}.{match.group(2)}"
        # torch, CUDA and Python are ComfyUI's, not the agent's.
        overrides: dict[str, Any] = {
            "python": str(system.get("python_version") or "").split(" ")[0] or None,
            "torch": str(torch_version)[:64] if torch_version else None,
            "cuda": cuda,
            "diffusers": None,
            "transformers": None,
        }
        if not self.located.local:
            overrides["os"] = str(system.get("os") or "")[:64] or None
        driver, cuda_driver = driver_versions() if self.located.nvml else (None, None)
        return result.environment_section(
            runtime_version=self.server.version,
            runtime_flags=self.server.flags,
            attention=self.server.attention,
            driver=driver,
            cuda_driver=cuda_driver,
            **overrides,
        )

    def _server_ram(self) -> float | None:
        total = self.server.system.get("ram_total")
        return total / MIB if isinstance(total, (int, float)) and total else None

    # The configuration, from what ran --------------------------------------------------

    def _assumed(self) -> logs.KernelPath:
        path = logs.assumed(self.files.weights)
        path.model_file = self.files.diffusion_model_basename
        logs.apply_fast_fp8(
            path, requested=self.server.fp8_matmul_requested, capable=self._fp8_capable()
        )
        return path

    def _configuration(self, path: logs.KernelPath) -> dict[str, Any]:
        precision = path.precision
        offload = "model" if self.server.launch_offload or path.partially_loaded else "none"
        preset = preset_for(precision, offload)
        fp8_method = None
        if precision.startswith("fp8"):
            # The BF16 file stored as FP8 comes from a launch flag such as --fp8_e4m3fn-unet.
            fp8_method = (
                "bfl-fp8-file" if self.files.weights == "fp8" else "comfyui-fp8-weight-dtype"
            )
        return result.configuration_section(
            runtime=RUNTIME,
            precision=precision,
            offload=offload,
            width=self.spec.width,
            height=self.spec.height,
            steps=self.protocol.steps,
            preset=preset.name if preset else None,
            fp8_method=fp8_method,
        )

    def _fp8_capable(self) -> bool | None:
        """ComfyUI's `supports_fp8_compute`: compute capability 8.9 or newer."""
        if "--supports-fp8-compute" in self.server.flags:
            return True
        if self.server.on_cpu:
            return False
        capability = self.located.info.compute_capability if self.located.info else None
        if not capability:
            return None
        major, _, minor = capability.partition(".")
        return (int(major), int(minor or 0)) >= (8, 9)

    def _log(self) -> list[dict[str, str]] | None:
        try:
            return self.client.log_entries()
        except ComfyUIError:
            return None

    def _read_kernel_path(self) -> logs.KernelPath:
        after = self._log()
        path = None
        if after is not None:
            path = logs.read_log(logs.new_entries(self._log_before, after))
        if path is None:
            self.execution.note(
                "ComfyUI's log (GET /internal/logs/raw) did not show the diffusion model "
                "loading, so the weight and compute dtypes are taken from the file and the "
                "launch flags."
            )
            return self._assumed()
        path.model_file = self.files.diffusion_model_basename
        logs.apply_fast_fp8(
            path, requested=self.server.fp8_matmul_requested, capable=self._fp8_capable()
        )
        return path

    # The backend interface -------------------------------------------------------------

    def prepare(self) -> float | None:
        return None

    def load(self) -> None:
        self.execution.open()
        # Only what ComfyUI logs from here on is about the benchmark's prompts.
        self._log_before = self._log()

    def generate(self, prompt: str, seed: int, label: str) -> scenario.Generation:
        self.execution.on_stage = self.on_stage
        return self.execution.run(prompt, seed, label)

    @contextlib.contextmanager
    def kernels(self) -> Iterator[Callable[[], Any]]:
        """What ComfyUI ran, from its log over the first warm-up (which loads the models);
        read even when the warm-up failed, since the configuration depends on it."""
        observed: dict[str, Any] = {}
        try:
            yield lambda: observed.get("section")
        except Exception:
            # Not on Ctrl-C: the prompt is to be stopped at once, not after a log read.
            observed["section"] = self._observe()
            raise
        observed["section"] = self._observe()

    def _observe(self) -> dict[str, Any]:
        path = self._read_kernel_path()
        if path.fp8_matmul is None:
            self.execution.note(
                "ComfyUI was started with --fast, but the agent cannot see whether this GPU "
                "has FP8 tensor cores, so the result says FP8 weights with BF16 compute."
            )
        self.configuration.update(self._configuration(path))
        return path.section(attention=self.server.attention)

    def allocator(self) -> measure.AllocatorPeaks | None:
        return None

    def failure(self, exc: BaseException) -> scenario.Failure:
        text = str(exc).strip()
        return scenario.Failure(
            "error", f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        )

    def release(self) -> None:
        self.execution.interrupt()
        self.execution.close()
