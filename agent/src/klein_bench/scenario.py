"""The one measurement loop every runtime shares (optimum-benchmark's shape).

A runtime is a *backend*; this module is the *scenario* that runs the protocol on it:
the warm-ups the protocol asks for (`protocol.warmup_runs`), the timed images, the
trackers (memory sampler, torch allocator peaks, energy), failures and the stage they
happened in, the spill check, evidence and the payload. It imports no torch: a backend
that needs torch imports it, and the loop is tested on the CPU with a fake backend.

The backend interface (`Backend`):

- `describe()`: what is measured: model, configuration, GPU, environment and the NVML
  device and processes to watch (`Watch`). Called once, before anything is measured.
- `prepare()`: anything before the baseline (start CUDA and measure its context);
  returns the CUDA context's MiB, or None.
- `load()`: make the pipeline ready; timed as model load. A runtime that loads the model
  inside its first generation (ComfyUI: `Description.loads_in_warmup`) only readies
  itself here, and reports the loading part of that generation as its `load_seconds`.
- `generate(prompt, seed, label) -> Generation`: one image, synchronized with the device:
  its seconds, per-stage seconds, and the image for evidence (or a callable fetching it
  from a server). `label` names the image in messages ("the warm-up", "timed run 2"). A
  runtime that reports a failure itself raises `GenerationFailed`.
- `kernels()`: a context manager observing the kernel path over the first warm-up and
  returning the payload's kernels section (klein_bench.kernels.section), or None where
  it cannot be observed; it may return one for a warm-up that failed.
- `allocator()`: torch's `AllocatorPeaks` for this process, or None (another process).
- `failure(exc)`: the `Failure` an exception means (out of memory or an error).
- `release()`: drop the pipeline and free its memory (a server runtime: stop its prompt);
  called after a failure or Ctrl-C (so a failed run leaves nothing behind) and by
  whoever owns the backend.

While generating, the backend calls `on_stage(stage)` at each pipeline stage boundary
("load", "text_encoding", "denoising", "vae_decode", "other"): the scenario files peaks
under the stage, and a failure names it.

The same rules hold for every runtime: a failure that says something about the card
(out of memory, an error while computing) is a result with its phase and stage; a
KleinBenchError (the user's setup must be fixed first: a damaged model file, files that
do not belong together) is no result and propagates; each timed image's seconds, the
runtime's own account, are checked against the agent's clock around it, and a
disagreement is said in the result's message.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from klein_bench import measure, result
from klein_bench.contract.figures import RUNTIMES
from klein_bench.contract.protocol import Protocol as GenerationProtocol
from klein_bench.errors import KleinBenchError
from klein_bench.gpu import NvmlDevice
from klein_bench.progress import Progress

# A runtime's own time for an image sits inside the agent's clock around it (which adds
# queueing and HTTP for a server): it may be shorter by the overheads, never longer;
# beyond these the two accounts of a run disagree.
CLOCK_TOLERANCE_S = 0.5
CLOCK_TOLERANCE_FRACTION = 0.25
CLOCK_AHEAD_S = 0.05


@dataclass
class Generation:
    seconds: float
    stage_seconds: dict[str, float | None] = field(default_factory=dict)
    # The image (PIL), or a callable that fetches it (a server runtime); None if none.
    image: Any = None
    # The agent's clock for the image, when the backend takes it closer than the loop can.
    wall_seconds: float | None = None
    # The part of `seconds` spent loading the model, for a runtime that loads it in its
    # first generation (ComfyUI's loader nodes); None: none, or it cannot tell.
    load_seconds: float | None = None


@dataclass
class Failure:
    status: str  # "out_of_memory" or "error"
    message: str
    stage: str | None = None


class GenerationFailed(Exception):
    """A failure the runtime reported itself (ComfyUI's execution_error, say)."""

    def __init__(self, failure: Failure):
        self.failure = failure
        super().__init__(failure.message)


@dataclass
class Watch:
    """What the trackers watch: the NVML device (None: none) and processes (None: this
    one; []: none, as for a server on another machine)."""

    device: NvmlDevice | None
    pids: list[int] | None = None
    memory_total_mb: float | None = None
    power_limit_w: float | None = None
    default_power_limit_w: float | None = None
    max_sm_clock_mhz: float | None = None


@dataclass
class Description:
    model: str
    synthetic: bool
    configuration: dict[str, Any]
    gpu: dict[str, Any]
    environment: dict[str, Any]
    watch: Watch
    work: dict[str, Any] | None = None
    system_ram_mb: float | None = None
    # What is loaded, for the progress line: "Klein tiny random (test model)".
    label: str = "the model"
    # The model loads inside the first warm-up (ComfyUI loads lazily): see Backend.load.
    loads_in_warmup: bool = False


class Backend(Protocol):
    on_stage: Callable[[str], None]

    def describe(self) -> Description: ...
    def prepare(self) -> float | None: ...
    def load(self) -> None: ...
    def generate(self, prompt: str, seed: int, label: str) -> Generation: ...
    def kernels(self) -> contextlib.AbstractContextManager[Callable[[], Any]]: ...
    def allocator(self) -> measure.AllocatorPeaks | None: ...
    def failure(self, exc: BaseException) -> Failure: ...
    def release(self) -> None: ...


def warmup_inputs(protocol: GenerationProtocol) -> list[tuple[str, int]]:
    """The warm-ups' prompts and seeds: `protocol.warmup_runs` of them, each unlike any
    timed run's (so a runtime with a cache, such as ComfyUI, never serves a timed image
    from a warm-up). Untimed, so their content does not matter otherwise."""
    first_free_seed = max(protocol.seeds) + 1
    return [
        (f"{protocol.prompts[i % len(protocol.prompts)]}, warm-up", first_free_seed + i)
        for i in range(protocol.warmup_runs)
    ]


class _Labels:
    """What is running now, told to every tracker that files figures by phase and stage."""

    def __init__(self, sampler: measure.MemorySampler, allocator: measure.AllocatorPeaks | None):
        self.sampler = sampler
        self.allocator = allocator
        self.phase = "load"
        self.stage = "load"

    def set(self, phase: str, stage: str) -> None:
        self.phase, self.stage = phase, stage
        self.sampler.set_label(phase, stage)
        if self.allocator is not None:
            self.allocator.mark(phase, stage)

    def on_stage(self, stage: str) -> None:
        self.set(self.phase, stage)


@dataclass
class _Run:
    load_seconds: float | None = None
    warmup_seconds: float | None = None
    timed: list[dict[str, Any]] = field(default_factory=list)
    image: Any = None
    kernels: Any = None
    failure: Failure | None = None
    phase: str | None = None
    # (label, the runtime's seconds, the agent's) of timed images whose clocks disagree.
    disagreements: list[tuple[str, float, float]] = field(default_factory=list)


def run(
    backend: Backend,
    protocol: GenerationProtocol,
    runs: int,
    progress: Progress,
    *,
    in_process_sampler: bool = False,
) -> dict[str, Any]:
    """Run the protocol on the backend; the result payload (a failed run is one too).

    Progress: a failed run's unfinished bar is abandoned; the caller ends the last bar of
    a finished one, and abandons it when this raises."""
    description = backend.describe()
    watch = description.watch
    sampler = measure.MemorySampler(watch.device, watch.pids, in_process=in_process_sampler)
    energy = measure.EnergyMeter(watch.device)
    record = _Run()
    shared: list[float] = []
    # The baseline is the card before this process touched it; starting CUDA (its
    # context) belongs to the load phase.
    sampler.start()
    labels = _Labels(sampler, None)
    context_mb = None
    try:
        context_mb = backend.prepare()
        labels.allocator = backend.allocator()
        backend.on_stage = labels.on_stage
        _measure(backend, protocol, runs, progress, labels, energy, record, shared, description)
    finally:
        labels.set("timed", "other")
        sampler.stop()
    if record.failure is not None:
        progress.abandon()
    message = _clock_report(record, runs, description)
    if message:
        progress.note(message)
    return _payload(
        description,
        protocol,
        record,
        sampler,
        labels.allocator,
        context_mb,
        max(shared, default=None),
        message,
    )


@contextlib.contextmanager
def _phase(
    labels: _Labels, record: _Run, phase: str, shared: list[float], pids: list[int] | None
) -> Iterator[None]:
    labels.set(phase, "load" if phase == "load" else "other")
    record.phase = phase
    try:
        yield
    finally:
        # On the CPU nothing samples in the background: read the high-water mark now.
        labels.sampler.checkpoint()
        # Windows' counter of the watched process (this one, or the server's).
        for pid in [os.getpid()] if pids is None else pids[:1]:
            shared_mb = measure.windows_shared_usage_mb(pid)
            if shared_mb is not None:
                shared.append(shared_mb)


def _warmup_label(index: int, count: int) -> str:
    return "the warm-up" if count == 1 else f"warm-up {index + 1}"


def _measure(
    backend: Backend,
    protocol: GenerationProtocol,
    runs: int,
    progress: Progress,
    labels: _Labels,
    energy: measure.EnergyMeter,
    record: _Run,
    shared: list[float],
    description: Description,
) -> None:
    pids = description.watch.pids
    lazy = description.loads_in_warmup
    try:
        with _phase(labels, record, "load", shared, pids):
            if not lazy:
                progress.stage(f"Loading {description.label}")
            start = time.perf_counter()
            backend.load()
            record.load_seconds = None if lazy else time.perf_counter() - start

        warmups = warmup_inputs(protocol)
        with _phase(labels, record, "warmup", shared, pids):
            total = 0.0
            for index, (prompt, seed) in enumerate(warmups):
                suffix = f" {index + 1}/{len(warmups)}" if len(warmups) > 1 else ""
                loads = f"loads {description.label}, " if lazy and index == 0 else ""
                progress.stage(f"Warm-up{suffix} ({loads}not timed)", total=protocol.steps)
                labels.on_stage("other")
                label = _warmup_label(index, len(warmups))
                if index == 0:
                    generation = _observed(backend, record, prompt, seed, label)
                    if lazy:
                        record.load_seconds = generation.load_seconds
                else:
                    generation = backend.generate(prompt, seed, label)
                total += generation.seconds
            record.warmup_seconds = total if warmups else None

        with _phase(labels, record, "timed", shared, pids):
            for index in range(runs):
                progress.stage(f"Timed run {index + 1}/{runs}", total=protocol.steps)
                prompt, seed = protocol.prompt_and_seed(index)
                labels.on_stage("other")
                label = f"timed run {index + 1}"
                wall_start = time.perf_counter()
                joules_before = energy.read_joules()
                generation = backend.generate(prompt, seed, label)
                joules_after = energy.read_joules()
                wall = generation.wall_seconds
                if wall is None:
                    wall = time.perf_counter() - wall_start
                if _clocks_disagree(generation.seconds, wall):
                    record.disagreements.append((label, generation.seconds, wall))
                record.timed.append(
                    result.run_record(
                        seconds=generation.seconds,
                        prompt_index=index % len(protocol.prompts),
                        seed=seed,
                        wall_seconds=wall,
                        energy_joules=measure.EnergyMeter.delta(joules_before, joules_after),
                        **{f"{k}_seconds": v for k, v in generation.stage_seconds.items()},
                    )
                )
                if record.image is None:
                    record.image = generation.image
    except (KeyboardInterrupt, KleinBenchError):
        # Ctrl-C, or a setup the user must fix: no result. Leave nothing running.
        backend.release()
        raise
    except Exception as exc:
        failure = exc.failure if isinstance(exc, GenerationFailed) else backend.failure(exc)
        if failure.stage is None:
            failure.stage = labels.stage if labels.stage != "other" else None
        record.failure = failure
        # The traceback's frames hold the pipeline and its tensors: drop them, then the
        # pipeline, or the memory stays taken for whatever runs next in this process.
        traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
        del exc
        backend.release()
        gc.collect()


def _observed(backend: Backend, record: _Run, prompt: str, seed: int, label: str) -> Generation:
    """The first warm-up, with the kernel path observed over it (kept even when the
    warm-up fails, where the backend can still tell)."""
    observed: Callable[[], Any] | None = None
    try:
        with backend.kernels() as observed:
            return backend.generate(prompt, seed, label)
    finally:
        if observed is not None:
            record.kernels = observed()


def _clocks_disagree(seconds: float, wall: float) -> bool:
    tolerance = max(CLOCK_TOLERANCE_S, CLOCK_TOLERANCE_FRACTION * seconds)
    return seconds > wall + CLOCK_AHEAD_S or wall - seconds > tolerance


def _clock_report(record: _Run, runs: int, description: Description) -> str:
    """One sentence on the timed runs whose two timings disagree ("" when none do)."""
    if not record.disagreements or record.failure is not None:
        return ""
    name = RUNTIMES.get(description.configuration.get("runtime", ""), "The runtime")
    owner = f"{name}'" if name.endswith("s") else f"{name}'s"
    label, seconds, wall = record.disagreements[0]
    return (
        f"{owner} clock and the agent's disagree on {len(record.disagreements)} of "
        f"{len(record.timed) or runs} timed runs ({label}: {name} timed {seconds:.3f} s, "
        f"the agent {wall:.3f} s)."
    )


def _phase_section(
    sampler: measure.MemorySampler,
    allocator: measure.AllocatorPeaks | None,
    context_mb: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-phase peaks (with the headline and its stage), and the whole run's."""
    phases: dict[str, Any] = {}
    overall: dict[str, Any] = {"peak_vram_mb": None}
    for phase in ("load", "warmup", "timed"):
        nvml = sampler.phases.get(phase, measure.PhasePeaks())
        torch_peaks = (allocator.phases if allocator else {}).get(phase, measure.PhasePeaks())
        if not any(
            getattr(p, n) is not None
            for p in (nvml, torch_peaks)
            for n in ("peak_process_mb", "peak_device_mb", "peak_rss_mb", "peak_reserved_mb")
        ):
            continue
        value, source = measure.headline(
            process_mb=nvml.peak_process_mb,
            reserved_mb=torch_peaks.peak_reserved_mb,
            context_mb=context_mb,
            device_mb=nvml.peak_device_mb,
            baseline_mb=sampler.baseline_device_mb,
        )
        stage_from = {
            "nvml-process": nvml.stages.get("peak_process_mb"),
            "nvml-device-delta": nvml.stages.get("peak_device_mb"),
        }.get(source or "", torch_peaks.stages.get("peak_reserved_mb"))
        phases[phase] = {
            "peak_vram_mb": value,
            "peak_allocated_mb": torch_peaks.peak_allocated_mb,
            "peak_reserved_mb": torch_peaks.peak_reserved_mb,
            "peak_process_mb": nvml.peak_process_mb,
            "peak_device_mb": nvml.peak_device_mb,
            "peak_rss_mb": nvml.peak_rss_mb,
            "stage": stage_from,
        }
        if value is not None and (
            overall["peak_vram_mb"] is None or value > overall["peak_vram_mb"]
        ):
            overall = {
                "peak_vram_mb": value,
                "vram_source": source,
                "peak_phase": phase,
                "peak_stage": stage_from,
            }
    return phases, overall


def _payload(
    description: Description,
    protocol: GenerationProtocol,
    record: _Run,
    sampler: measure.MemorySampler,
    allocator: measure.AllocatorPeaks | None,
    context_mb: float | None,
    shared_peak_mb: float | None,
    clock_report: str,
) -> dict[str, Any]:
    watch = description.watch
    phases, overall = _phase_section(sampler, allocator, context_mb)

    def peak(name: str) -> float | None:
        values = [p[name] for p in phases.values() if p[name] is not None]
        return max(values, default=None)

    memory = result.memory_section(
        baseline_device_mb=sampler.baseline_device_mb,
        peak_allocated_mb=peak("peak_allocated_mb"),
        peak_reserved_mb=peak("peak_reserved_mb"),
        peak_process_mb=peak("peak_process_mb"),
        peak_device_mb=peak("peak_device_mb"),
        peak_rss_mb=peak("peak_rss_mb"),
        system_ram_mb=description.system_ram_mb,
        sample_interval_ms=sampler.interval_s * 1000 if sampler.threaded else None,
        peak_vram_mb=overall["peak_vram_mb"],
        vram_source=overall.get("vram_source"),
        context_mb=context_mb,
        shared_peak_mb=shared_peak_mb,
        peak_phase=overall.get("peak_phase"),
        peak_stage=overall.get("peak_stage"),
        phases=phases or None,
    )
    failure = record.failure
    if failure is not None:
        outcome = result.outcome_section(
            failure.status, failure.stage, failure.message, phase=record.phase
        )
    else:
        spill = measure.spill_reason(
            memory_total_mb=watch.memory_total_mb,
            peak_reserved_mb=memory["peak_reserved_mb"],
            context_mb=context_mb,
            shared_peak_mb=shared_peak_mb,
        )
        if spill:
            outcome = result.outcome_section(
                "spilled",
                memory["peak_stage"],
                f"{spill} {clock_report}".strip(),
                phase=memory["peak_phase"],
            )
        else:
            outcome = result.outcome_section("success", None, clock_report)
    gpu = dict(description.gpu)
    if gpu.get("device") == "cuda" and sampler.collector.max_pcie_generation:
        gpu["pcie_generation"] = sampler.collector.max_pcie_generation
        gpu["pcie_width"] = sampler.collector.max_pcie_width
    telemetry = None
    if watch.device is not None:
        telemetry = measure.telemetry_section(
            sampler.collector.timed,
            power_limit_w=watch.power_limit_w,
            default_power_limit_w=watch.default_power_limit_w,
            max_sm_clock_mhz=watch.max_sm_clock_mhz,
        )
    image = record.image() if callable(record.image) else record.image
    from klein_bench.evidence import evidence_section

    return result.build_payload(
        model=description.model,
        synthetic=description.synthetic,
        configuration=description.configuration,
        gpu=gpu,
        outcome=outcome,
        runs=record.timed,
        memory=memory,
        environment=description.environment,
        load_seconds=record.load_seconds,
        warmup_seconds=record.warmup_seconds,
        energy=measure.energy_section(record.timed),
        telemetry=telemetry,
        evidence=evidence_section(image) if image is not None else None,
        kernels=record.kernels,
        work=description.work,
        protocol=protocol,
    )
