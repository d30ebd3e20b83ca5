"""Agent overhead: the agent's seconds per image against a bare loop of the same calls.

The agent side is `klein_bench.backends.diffusers.backend.run_protocol`, exactly as `klein-bench
run --model klein-tiny-random` calls it: memory sampler thread, stage clocks wrapped around
the pipeline, step callbacks, progress bars drawn (to a terminal that writes to memory),
energy meter. The bare side does what the agent does without any of that: builds the same
tiny pipeline, one untimed warm-up, then the same calls with the same arguments, prompts and
seeds, timed the same way (synchronize, perf_counter, call, synchronize). Two more variants
say where a difference comes from: the agent without progress bars, and the bare loop with
the agent's memory sampler running. The variants alternate round by round, in reverse order
every other round, so drift in the machine's speed falls on all alike. Target: the agent's
median within 1% of the bare loop's.

The agent picks the device itself: CUDA when torch sees a GPU, else the CPU.
"""

from __future__ import annotations

import io
import statistics
import time

ROUNDS = 40
RUNS_PER_ROUND = 5
TARGET = 0.01


def _bare_round(call_options: dict, protocol, runs: int, device: str) -> list[float]:
    """The agent's calls without the agent: build the pipeline as the agent loads it, one
    untimed warm-up, then the timed generations."""
    import torch
    from klein_bench import measure
    from klein_bench.backends.diffusers import tiny
    from klein_bench.contract.models import KLEIN_TINY

    pipe = tiny.build_pipeline(KLEIN_TINY.architecture, seed=0, dtype=torch.bfloat16)
    pipe.to(device)

    def generate(prompt: str, seed: int) -> float:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        measure.synchronize(device)
        start = time.perf_counter()
        pipe(prompt=prompt, generator=generator, **call_options)
        measure.synchronize(device)
        return time.perf_counter() - start

    generate(*protocol.warmup_prompt_and_seed)
    return [generate(*protocol.prompt_and_seed(index)) for index in range(runs)]


def _sampled_round(call_options: dict, protocol, runs: int, device: str) -> list[float]:
    """The bare loop with the agent's memory sampler thread running beside it."""
    from klein_bench import measure

    gpu_index = 0 if device.startswith("cuda") else None
    sampler = measure.MemorySampler(gpu_index)
    sampler.start()
    try:
        return _bare_round(call_options, protocol, runs, device)
    finally:
        sampler.stop()


def _agent_round(runs: int, bars: bool = True) -> list[float]:
    """run_protocol as the CLI calls it: with rich's bars drawn on a terminal (here one
    that writes to memory), or with no progress display at all."""
    from klein_bench.backends.diffusers.backend import run_protocol
    from klein_bench.progress import RichProgress, SilentProgress
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    payload = run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-resident",
        runs=runs,
        gpu_index=None,
        progress=RichProgress(console) if bars else SilentProgress(),
        salt=b"perf" * 8,
    )
    if payload["outcome"]["status"] != "success":
        raise RuntimeError(f"the agent's run failed: {payload['outcome']}")
    return [run["seconds"] for run in payload["timings"]["runs"]]


def run(rounds: int = ROUNDS, runs: int = RUNS_PER_ROUND) -> dict:
    import torch
    from klein_bench.contract.models import KLEIN_TINY

    protocol = KLEIN_TINY.protocol

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    call_options = {
        "height": KLEIN_TINY.height,
        "width": KLEIN_TINY.width,
        "num_inference_steps": protocol.steps,
        "guidance_scale": protocol.guidance_scale,
        "max_sequence_length": protocol.max_sequence_length,
        "text_encoder_out_layers": KLEIN_TINY.architecture.text_encoder.out_layers,
    }
    variants = {
        "agent": lambda: _agent_round(runs),
        "bare": lambda: _bare_round(call_options, protocol, runs, device),
        # Attribution: the agent without its progress bars, and the bare loop with only
        # the agent's memory sampler added.
        "agent, no bars": lambda: _agent_round(runs, bars=False),
        "bare + sampler": lambda: _sampled_round(call_options, protocol, runs, device),
    }
    for variant in variants.values():  # untimed: imports, allocator, first-call work
        variant()

    seconds: dict[str, list[float]] = {name: [] for name in variants}
    started = time.perf_counter()
    for index in range(rounds):
        # Every other round runs them in reverse order, so drift falls on all alike.
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            seconds[name] += variants[name]()
    took = time.perf_counter() - started

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    bare = medians["bare"]
    overhead = medians["agent"] / bare - 1
    met = abs(overhead) <= TARGET
    print(
        f"\n  {KLEIN_TINY.slug} on {device} ({torch.get_num_threads()} torch threads), "
        f"{rounds} alternating rounds of {runs} timed images per variant ({took:.0f} s):"
    )
    for name, values in seconds.items():
        deciles = statistics.quantiles(values, n=10)
        print(
            f"    {name:<15} {medians[name] * 1000:7.2f} ms per image  "
            f"{medians[name] / bare - 1:+7.2%}   (median of {len(values)}; "
            f"p10 {deciles[0] * 1000:.2f}, p90 {deciles[-1] * 1000:.2f})"
        )
    print(
        f"    agent overhead {overhead:+.2%} on the medians "
        f"(target within +/-{TARGET:.0%}: {'met' if met else 'NOT met'})"
    )
    return {
        "device": device,
        "medians_s": medians,
        "overhead": overhead,
        "images_each": len(seconds["agent"]),
        "met": met,
        "headline": (
            f"agent {medians['agent'] * 1000:.1f} ms vs bare {bare * 1000:.1f} ms per image "
            f"on {device}: {overhead:+.2%}"
        ),
    }
