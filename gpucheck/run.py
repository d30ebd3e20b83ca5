"""`make gpu-check`: proves the agent's figures against independent readings.

On a CUDA machine, for each preset: the agent runs the synthetic full-size Klein 4B
(klein_bench.backends.diffusers.backend, the shared scenario loop) while an independent NVML
sampler, written here and running in its own process, watches the card; then, on the
same pipeline (the agent's stage hooks removed), a bare loop times the protocol's images
with CUDA events and reads the energy counter around them. It prints the ratios (seconds
per image, the memory figures and baseline, energy) against the targets (time within 1%,
memory within 2%), the measured activation figure `klein-bench doctor` estimates with,
and then an out-of-memory test under a memory-fraction limit: the recorded phase and
stage, the memory released afterwards, CUDA still working. Exit status 1 when a target
or the OOM test fails.

Without CUDA it is a dry run of the same harness on the tiny model on the CPU (no NVML:
those columns are empty, the OOM is injected) and exits 0 when the harness works.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import weakref
from typing import Any

TIME_TARGET = 0.01
MEMORY_TARGET = 0.02
MIB = 1024 * 1024


def _independent_loop(conn: Any, stop: Any, pid: int, interval: float) -> None:
    """Sample NVML in this separate process: the card's used memory and the process's."""
    import pynvml

    pynvml.nvmlInit()
    card = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("GPU_CHECK_NVML_INDEX", "0")))
    first = pynvml.nvmlDeviceGetMemoryInfo(card).used / MIB
    device_peak, process_peak = first, None
    conn.send("ready")
    while not stop.wait(interval):
        device_peak = max(device_peak, pynvml.nvmlDeviceGetMemoryInfo(card).used / MIB)
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(card):
            if process.pid == pid and process.usedGpuMemory is not None:
                used = process.usedGpuMemory / MIB
                process_peak = used if process_peak is None else max(process_peak, used)
    conn.send({"baseline": first, "device": device_peak, "process": process_peak})


class IndependentSampler:
    def __init__(self, interval: float = 0.005):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.stop_event = context.Event()
        self.process = context.Process(
            target=_independent_loop,
            args=(child, self.stop_event, os.getpid(), interval),
            daemon=True,
        )

    def start(self) -> IndependentSampler:
        self.process.start()
        self.conn.recv()
        return self

    def stop(self) -> dict[str, float | None]:
        self.stop_event.set()
        readings = self.conn.recv()
        self.process.join()
        return readings


def _energy_joules() -> float | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        card = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("GPU_CHECK_NVML_INDEX", "0")))
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(card) / 1000
    except Exception:
        return None


def bare_loop(backend: Any, runs: int, cuda: bool) -> dict[str, Any]:
    """The protocol's timed images on the agent's pipeline, without the agent: CUDA events
    (perf_counter on a CPU) around each call, the energy counter around all of them."""
    import torch

    pipe = backend.pipe
    # The agent's stage hooks are instance attributes: deleting them restores the class's.
    del pipe.encode_prompt
    del pipe.vae.decode
    protocol = backend.protocol
    seconds = []
    joules_before = _energy_joules() if cuda else None
    for index in range(runs):
        prompt, seed = protocol.prompt_and_seed(index)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            pipe(prompt=prompt, generator=generator, **backend.call_options)
            end.record()
            torch.cuda.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        else:
            began = time.perf_counter()
            pipe(prompt=prompt, generator=generator, **backend.call_options)
            seconds.append(time.perf_counter() - began)
    joules_after = _energy_joules() if cuda else None
    energy = None
    if joules_before is not None and joules_after is not None:
        energy = (joules_after - joules_before) / runs
    return {"median": statistics.median(seconds), "joules_per_image": energy}


def _ratio(agent: float | None, reference: float | None) -> float | None:
    if agent is None or not reference:
        return None
    return agent / reference


def _cell(ratio: float | None, target: float | None) -> str:
    if ratio is None:
        return "—"
    verdict = ""
    if target is not None:
        verdict = " ok" if abs(ratio - 1) <= target else " MISS"
    return f"{ratio:.4f}{verdict}"


def check_preset(preset: str, model: str, synthetic: bool, runs: int, cuda: bool) -> dict:
    from klein_bench.backends.diffusers.backend import run_protocol
    from klein_bench.progress import SilentProgress

    sampler = IndependentSampler().start() if cuda else None
    found: dict[str, Any] = {}

    def keep(backend: Any) -> None:
        found["independent"] = sampler.stop() if sampler else {}
        found["bare"] = bare_loop(backend, runs, cuda)

    started = time.perf_counter()
    payload = run_protocol(
        model=model,
        preset_name=preset,
        runs=runs,
        gpu_index=None,
        progress=SilentProgress(),
        salt=b"gpu-check" * 4,
        synthetic=synthetic,
        keep=keep,
    )
    if "independent" not in found and sampler is not None:
        found["independent"] = sampler.stop()
    memory, outcome = payload["memory"], payload["outcome"]
    agent_median = statistics.median([r["seconds"] for r in payload["timings"]["runs"]] or [0])
    independent = found.get("independent") or {}
    bare = found.get("bare") or {}
    energy = payload.get("energy") or {}
    return {
        "preset": preset,
        "outcome": outcome["status"],
        "wall": time.perf_counter() - started,
        "agent_s": agent_median,
        "bare_s": bare.get("median"),
        "time": _ratio(agent_median, bare.get("median")),
        "vram": _ratio(memory.get("peak_vram_mb"), independent.get("process")),
        "process": _ratio(memory.get("peak_process_mb"), independent.get("process")),
        "device": _ratio(memory.get("peak_device_mb"), independent.get("device")),
        "baseline": _ratio(memory.get("baseline_device_mb"), independent.get("baseline")),
        "energy": _ratio(energy.get("joules_per_image"), bare.get("joules_per_image")),
        "peak_vram_mb": memory.get("peak_vram_mb"),
        "vram_source": memory.get("vram_source"),
        "peak_allocated_mb": memory.get("peak_allocated_mb"),
        "kernels": payload.get("kernels") or {},
    }


def oom_test(cuda: bool) -> tuple[bool, str]:
    """An out-of-memory run: the recorded phase and stage, memory released, torch alive."""
    import torch
    from klein_bench.backends.diffusers import tiny
    from klein_bench.backends.diffusers.backend import run_protocol
    from klein_bench.progress import SilentProgress

    pipes: list[Any] = []
    build = tiny.build_pipeline

    def remembered(*args: Any, **kwargs: Any) -> Any:
        pipe = build(*args, **kwargs)
        pipes.append(weakref.ref(pipe))
        return pipe

    setattr(tiny, build.__name__, remembered)
    restore: list[Any] = []
    try:
        if cuda:
            # The weights (14.9 GiB) fit; the activations of the warm-up do not.
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(15.6 * 1024**3 / total)
        else:
            from diffusers import AutoencoderKLFlux2

            decode = AutoencoderKLFlux2.decode
            restore.append(lambda: setattr(AutoencoderKLFlux2, "decode", decode))

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise torch.OutOfMemoryError("injected by gpu-check: out of memory")

            AutoencoderKLFlux2.decode = fail
        payload = run_protocol(
            model="flux-2-klein-4b" if cuda else "klein-tiny-random",
            preset_name="bf16-resident",
            runs=5,
            gpu_index=None,
            progress=SilentProgress(),
            salt=b"gpu-check" * 4,
            synthetic=cuda,
        )
    finally:
        setattr(tiny, build.__name__, build)
        for undo in restore:
            undo()
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)
    outcome = payload["outcome"]
    released = all(ref() is None for ref in pipes)
    left_mb = torch.cuda.memory_allocated() / MIB if cuda else 0.0
    a = torch.ones(256, 256, device="cuda" if cuda else "cpu")
    alive = bool((a @ a).sum().item() == 256**3)
    ok = (
        outcome["status"] == "out_of_memory"
        and outcome.get("phase") == "warmup"
        and outcome["stage"] in ("text_encoding", "denoising", "vae_decode")
        and released
        and left_mb < 64
        and alive
    )
    report = (
        f"OOM test: outcome {outcome['status']} in {outcome.get('phase')}/{outcome['stage']}; "
        f"pipeline released: {released}; memory still allocated: {left_mb:.0f} MiB; "
        f"{'CUDA' if cuda else 'torch'} still works: {alive} -> {'ok' if ok else 'FAILED'}"
    )
    return ok, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--presets", default="", help="comma-separated; default: all that run")
    args = parser.parse_args(argv)

    import torch
    from klein_bench.contract import fit
    from klein_bench.contract.catalog import PRESETS
    from klein_bench.contract.models import MODELS
    from klein_bench.doctor import GIB

    cuda = torch.cuda.is_available() and not args.dry_run
    if cuda:
        model, synthetic = "flux-2-klein-4b", True
        major, minor = torch.cuda.get_device_capability(0)
        presets = [
            p.name
            for p in PRESETS.values()
            if not p.needs_fp8_tensor_cores or (major, minor) >= (8, 9)
        ]
        print(f"gpu-check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        model, synthetic = "klein-tiny-random", False
        presets = ["bf16-resident", "fp8-storage"]
        print(f"gpu-check dry run: no CUDA, the tiny model on the CPU (torch {torch.__version__})")
    if args.presets:
        presets = args.presets.split(",")

    started = time.perf_counter()
    rows = [check_preset(p, model, synthetic, args.runs, cuda) for p in presets]
    header = (
        f"{'preset':<20} {'outcome':<14} {'agent s':>9} {'bare s':>9} {'time':>11} "
        f"{'peak_vram':>11} {'process':>11} {'device':>11} {'baseline':>11} {'energy':>8}"
    )
    print(header)
    missed = False
    for row in rows:
        time_target = TIME_TARGET if cuda else None
        memory_target = MEMORY_TARGET if cuda else None
        print(
            f"{row['preset']:<20} {row['outcome']:<14} {row['agent_s']:>9.4f} "
            f"{row['bare_s'] or 0:>9.4f} {_cell(row['time'], time_target):>11} "
            f"{_cell(row['vram'], memory_target):>11} {_cell(row['process'], memory_target):>11} "
            f"{_cell(row['device'], memory_target):>11} "
            f"{_cell(row['baseline'], memory_target):>11} {_cell(row['energy'], None):>8}"
        )
        cells = [
            (row["time"], time_target),
            *((row[k], memory_target) for k in ("vram", "process", "device", "baseline")),
        ]
        if cuda and any(r is not None and abs(r - 1) > t for r, t in cells):
            missed = True
        path = row["kernels"]
        print(
            f"{'':<20} kernels: {path.get('weight_dtypes')}, computed in "
            f"{path.get('compute_dtypes')}, matmuls {path.get('matmul_dtypes')}, fp8 kernels "
            f"{path.get('fp8_matmuls')}"
            f", attention {path.get('attention')}; headline from {row['vram_source']}"
        )
        preset = PRESETS[row["preset"]]
        if cuda and row["peak_allocated_mb"] and preset.offload == "none":
            architecture = MODELS[model].architecture
            weights_mib = fit.weights_mib(architecture, preset.precision, preset.offload)
            activation = (row["peak_allocated_mb"] - weights_mib) / 1024
            print(f"{'':<20} activation figure (peak allocated less weights): {activation:.2f} GiB")
    print(f"(ratios: agent over independent reading; {GIB // MIB} MiB per GiB)")
    ok, report = oom_test(cuda)
    print(report)
    print(f"gpu-check took {time.perf_counter() - started:.1f} s")
    if not ok:
        return 1
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
