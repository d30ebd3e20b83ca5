"""The diffusers runtime: Flux2KleinPipeline in this process, as a scenario backend.

`DiffusersBackend` loads the pipeline as the preset says (`diffusers_pipeline`: the
device, the refusals, the loading) and generates one image per call, synchronized with
the device before and after; stage times come from CUDA events recorded around
`encode_prompt` and `vae.decode`. The shared loop (klein_bench.scenario)
runs the protocol on it: warm-ups, timed images, trackers, failures and the payload.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from klein_bench import gpu, measure, result, scenario
from klein_bench.backends.diffusers import kernels, weights
from klein_bench.backends.diffusers.pipeline import (
    FP8_METHODS,
    Target,
    choose_target,
    load_pipeline,
    runtime_flags,
)
from klein_bench.catalog import model_spec, preset_of, protocol_of
from klein_bench.contract.catalog import Preset
from klein_bench.contract.protocol import Protocol
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress

# The component each pipeline stage runs.
STAGE_COMPONENTS = {
    "text_encoding": "text_encoder",
    "denoising": "transformer",
    "vae_decode": "vae",
}


class Stopwatch:
    """Seconds between marks: CUDA events on the current stream, read after the run has
    synchronized (so stage boundaries cost no synchronization); perf_counter on a CPU."""

    def __init__(self, device: Any):
        import torch

        self._cuda = torch.device(device).type == "cuda"
        self._device = device
        self._marks: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        import torch

        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self._device))
            self._marks[name] = event
        else:
            self._marks[name] = time.perf_counter()

    def marked(self, name: str) -> bool:
        return name in self._marks

    def seconds(self, start: str, end: str) -> float | None:
        if start not in self._marks or end not in self._marks:
            return None
        if self._cuda:
            self._marks[end].synchronize()
            return self._marks[start].elapsed_time(self._marks[end]) / 1000
        return self._marks[end] - self._marks[start]


def synchronize(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class StageClock:
    """Times the pipeline's stages and says when each begins.

    Wraps `pipe.encode_prompt` and `pipe.vae.decode`: text encoding runs from the start of
    the first encode_prompt call to the end of the last (with guidance the pipeline encodes
    the prompt, then the negative prompt), denoising from there to the start of VAE decode
    (the transformer steps, and under offload moving the transformer onto the GPU), VAE
    decode is the decode call.
    """

    def __init__(self, pipe: Any, device: str, progress: Progress, on_stage: Callable):
        self.device = device
        self.progress = progress
        self.on_stage = on_stage
        self.watch = Stopwatch(device)
        encode_prompt = pipe.encode_prompt
        decode = pipe.vae.decode

        def timed_encode_prompt(*args: Any, **kwargs: Any) -> Any:
            self.on_stage("text_encoding")
            if not self.watch.marked("text_start"):
                self.watch.mark("text_start")
            output = encode_prompt(*args, **kwargs)
            self.watch.mark("text_end")
            self.on_stage("denoising")
            return output

        def timed_decode(*args: Any, **kwargs: Any) -> Any:
            self.on_stage("vae_decode")
            self.watch.mark("vae_start")
            output = decode(*args, **kwargs)
            self.watch.mark("vae_end")
            self.on_stage("other")
            return output

        pipe.encode_prompt = timed_encode_prompt
        pipe.vae.decode = timed_decode

    def begin(self) -> None:
        self.watch = Stopwatch(self.device)

    def on_step_end(self, pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        self.progress.advance()
        return kwargs

    def seconds(self) -> dict[str, float | None]:
        return {
            "text_encoding": self.watch.seconds("text_start", "text_end"),
            "denoising": self.watch.seconds("text_end", "vae_start"),
            "vae_decode": self.watch.seconds("vae_start", "vae_end"),
        }


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    kinds = tuple(
        k
        for k in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError)
        if k is not None
    )
    if isinstance(exc, (*kinds, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "CUBLAS_STATUS_ALLOC_FAILED" in text
    )


def _failure_message(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class DiffusersBackend:
    """Flux2KleinPipeline in this process (see klein_bench.scenario for the interface)."""

    def __init__(
        self,
        *,
        spec: ModelSpec,
        chosen: Preset,
        target: Target,
        synthetic: bool,
        location: weights.WeightsLocation | None,
        progress: Progress,
        salt: bytes,
        diffusers_version: str,
        protocol: Protocol,
    ):
        self.spec = spec
        self.chosen = chosen
        self.target = target
        self.synthetic = synthetic
        self.location = location
        self.progress = progress
        self.salt = salt
        self.diffusers_version = diffusers_version
        self.protocol = protocol
        self.pipe: Any = None
        self.clock: StageClock | None = None
        self.on_stage: Callable[[str], None] = lambda stage: None
        self.environment: dict[str, Any] = {}
        self.call_options: dict[str, Any] = {
            "height": spec.height,
            "width": spec.width,
            "num_inference_steps": protocol.steps,
            "guidance_scale": protocol.guidance_scale,
            "max_sequence_length": protocol.max_sequence_length,
            # The hidden states the architecture stacks (the real models' are the
            # pipeline's default, the tiny variants' their own).
            "text_encoder_out_layers": spec.architecture.text_encoder.out_layers,
        }

    @property
    def cuda(self) -> bool:
        return self.target.device.startswith("cuda")

    def describe(self) -> scenario.Description:
        spec, chosen, info = self.spec, self.chosen, self.target.info
        self.environment = result.environment_section(
            runtime_version=self.diffusers_version,
            runtime_flags=runtime_flags(chosen),
            # Filled in by what the kernel observer sees.
            attention=None,
            driver=self.target.driver,
            cuda_driver=self.target.cuda_driver,
        )
        return scenario.Description(
            model=spec.slug,
            synthetic=self.synthetic,
            configuration=result.configuration_section(
                runtime="diffusers",
                precision=chosen.precision,
                offload=chosen.offload,
                width=spec.width,
                height=spec.height,
                steps=self.protocol.steps,
                preset=chosen.name,
                fp8_method=FP8_METHODS.get(chosen.precision),
            ),
            gpu=result.gpu_section(info, salt=self.salt),
            environment=self.environment,
            watch=scenario.Watch(
                device=self.target.nvml,
                memory_total_mb=info.memory_total_mb if info else None,
                power_limit_w=info.power_limit_w if info else None,
                default_power_limit_w=info.default_power_limit_w if info else None,
                max_sm_clock_mhz=info.max_sm_clock_mhz if info else None,
            ),
            work=result.work_section(
                spec.slug,
                width=spec.width,
                height=spec.height,
                steps=self.protocol.steps,
                protocol=self.protocol,
            ),
            system_ram_mb=measure.system_ram_mb(),
            label=f"{spec.name}{' (synthetic)' if self.synthetic else ''}",
        )

    def prepare(self) -> float | None:
        """Start CUDA, and measure its context: the card's use after minus before."""
        if not self.cuda:
            return None
        import torch

        device = torch.device(self.target.device)
        torch.cuda.set_device(device)
        before = self._card_used_mb()
        torch.zeros(1, device=device)
        synchronize(device)
        after = self._card_used_mb()
        if before is None or after is None:
            return None
        return max(after - before - torch.cuda.memory_reserved(device) / gpu.MIB, 0.0)

    def _card_used_mb(self) -> float | None:
        if self.target.nvml is None:
            return None
        info = gpu.safe(gpu.nvml().nvmlDeviceGetMemoryInfo, self.target.nvml.memory)
        return info.used / gpu.MIB if info else None

    def load(self) -> None:
        self.pipe = load_pipeline(
            self.spec,
            self.chosen,
            self.target.device,
            synthetic=self.synthetic,
            location=self.location,
            cfg=self.protocol.cfg,
        )
        synchronize(self.target.device)
        self.clock = StageClock(self.pipe, self.target.device, self.progress, self.on_stage)

    def generate(self, prompt: str, seed: int, label: str = "the image") -> scenario.Generation:
        import torch

        assert self.pipe is not None and self.clock is not None
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.clock.begin()
        synchronize(self.target.device)
        start = time.perf_counter()
        output = self.pipe(
            prompt=prompt,
            generator=generator,
            callback_on_step_end=self.clock.on_step_end,
            **self.call_options,
        )
        synchronize(self.target.device)
        seconds = time.perf_counter() - start
        return scenario.Generation(seconds, self.clock.seconds(), output.images[0])

    @contextlib.contextmanager
    def kernels(self) -> Iterator[Callable[[], Any]]:
        assert self.clock is not None
        observer = kernels.KernelObserver()
        section = None
        forward = self.clock.on_stage

        def on_stage(stage: str) -> None:
            # Each stage runs one component: its matmuls are filed under it.
            observer.component = STAGE_COMPONENTS.get(stage)
            forward(stage)

        self.clock.on_stage = on_stage
        try:
            with observer:
                yield lambda: section
        finally:
            self.clock.on_stage = forward
        components = {name: getattr(self.pipe, name) for name in kernels.COMPONENTS}
        section = observer.section(kernels.storage_dtypes(components))
        self.environment["attention"] = observer.attention

    def allocator(self) -> measure.AllocatorPeaks | None:
        return measure.AllocatorPeaks(self.target.device) if self.cuda else None

    def failure(self, exc: BaseException) -> scenario.Failure:
        status = "out_of_memory" if is_out_of_memory(exc) else "error"
        return scenario.Failure(status, _failure_message(exc))

    def release(self) -> None:
        self.pipe = self.clock = None
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.empty_cache()


def run_protocol(
    *,
    model: str,
    preset_name: str,
    runs: int,
    gpu_index: int | None,
    progress: Progress,
    salt: bytes,
    weights_path: Path | None = None,
    synthetic: bool = False,
    download: bool = False,
    protocol: Protocol | None = None,
    keep: Callable[[DiffusersBackend], None] | None = None,
) -> dict[str, Any]:
    """Run the model's protocol (its current one unless given) and return the result
    payload (a failed run is a result too).

    Raises KleinBenchError only for what stops a run from starting: missing packages, no
    suitable device, no weights. `keep` is handed the backend before it is released (the
    GPU self-check times the same pipeline with its own loop).
    """
    spec = model_spec(model)
    chosen = preset_of(spec, preset_name)
    protocol = protocol_of(spec, protocol)
    if runs < protocol.min_timed_runs:
        raise KleinBenchError(
            f"--runs {runs} is too few: the protocol times at least "
            f"{protocol.min_timed_runs} generations."
        )
    if synthetic and spec.built_in:
        raise KleinBenchError(
            f"--synthetic builds a model's full-size architecture; {spec.slug} is a tiny "
            f"variant built in code already: leave out one of them (--model {spec.tiny_of} "
            "--synthetic for the full size, on a GPU)."
        )
    diffusers_version = gpu.require_diffusers()
    progress.stage("Importing torch and diffusers")
    target = choose_target(spec, chosen, gpu_index, synthetic)

    # Imported before the load is timed: a cold import takes seconds and is no part of
    # loading the model.
    from diffusers import Flux2KleinPipeline  # noqa: F401
    from transformers import Qwen3ForCausalLM  # noqa: F401

    location = None
    if not spec.built_in and not synthetic:
        found = weights.locate(spec, weights_path)
        if download and (found is None or not found.complete):
            # huggingface_hub draws its own download bars.
            progress.done()
        location = weights.require(spec, weights_path, download=download)
    if target.note:
        progress.note(target.note)
    backend = DiffusersBackend(
        spec=spec,
        chosen=chosen,
        target=target,
        synthetic=synthetic,
        location=location,
        progress=progress,
        salt=salt,
        diffusers_version=diffusers_version,
        protocol=protocol,
    )
    try:
        payload = scenario.run(backend, protocol, runs, progress)
        if keep is not None and backend.pipe is not None:
            keep(backend)
    finally:
        backend.release()
    return payload
