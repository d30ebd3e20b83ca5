"""Agent overhead: the agent's seconds per image against a bare loop of the same calls.

The agent side is `klein_bench.runners.diffusers.run_protocol`, exactly as `klein-bench
run --model klein-tiny-random` calls it: memory sampler thread, stage clocks wrapped around
the pipeline, progress bars drawn (to a terminal-like buffer), energy meter. The bare side
builds the same tiny pipeline once and calls it with the same arguments, prompts and seeds,
timed the same way (synchronize, perf_counter, call, synchronize). The two alternate round
by round, each going first in every other round, so drift in the machine's speed falls on
both alike. Target: the agent's median within 1% of the bare loop's.

On this CPU-only machine the tiny model runs on the CPU; on a GPU the same code times the
CUDA path (`--device cuda` is not offered because the agent picks the device itself).
"""

from __future__ import annotations

import io
import statistics
import time

ROUNDS = 40
RUNS_PER_ROUND = 5
TARGET = 0.01


def _bare_round(pipe, call_options: dict, protocol, runs: int, device: str) -> list[float]:
    import torch
    from klein_bench import measure

    def generate(prompt: str, seed: int) -> float:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        measure.synchronize(device)
        start = time.perf_counter()
        pipe(prompt=prompt, generator=generator, **call_options)
        measure.synchronize(device)
        return time.perf_counter() - start

    generate(*protocol.warmup_prompt_and_seed)
    return [generate(*protocol.prompt_and_seed(index)) for index in range(runs)]


def _agent_round(runs: int) -> list[float]:
    from klein_bench.progress import RichProgress
    from klein_bench.runners.diffusers import run_protocol
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    payload = run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-resident",
        runs=runs,
        gpu_index=None,
        progress=RichProgress(console),
        salt=b"perf" * 8,
    )
    if payload["outcome"]["status"] != "success":
        raise RuntimeError(f"the agent's run failed: {payload['outcome']}")
    return [run["seconds"] for run in payload["timings"]["runs"]]


def run(rounds: int = ROUNDS, runs: int = RUNS_PER_ROUND) -> dict:
    import torch
    from klein_bench import tiny
    from klein_bench.catalog import KLEIN_TINY
    from klein_bench.protocol import CURRENT

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    pipe = tiny.build_tiny_pipeline(seed=0, dtype=torch.bfloat16)
    pipe.to(device)
    call_options = {
        "height": KLEIN_TINY.height,
        "width": KLEIN_TINY.width,
        "num_inference_steps": CURRENT.steps,
        "guidance_scale": CURRENT.guidance_scale,
        "max_sequence_length": CURRENT.max_sequence_length,
        "text_encoder_out_layers": tiny.TINY_TEXT_ENCODER_OUT_LAYERS,
    }
    # One round each, untimed: imports, allocator, first-call work.
    _agent_round(runs)
    _bare_round(pipe, call_options, CURRENT, runs, device)

    agent: list[float] = []
    bare: list[float] = []
    ratios: list[float] = []
    started = time.perf_counter()
    for index in range(rounds):
        if index % 2 == 0:
            a = _agent_round(runs)
            b = _bare_round(pipe, call_options, CURRENT, runs, device)
        else:
            b = _bare_round(pipe, call_options, CURRENT, runs, device)
            a = _agent_round(runs)
        agent += a
        bare += b
        ratios.append(statistics.median(a) / statistics.median(b))
    took = time.perf_counter() - started

    agent_median = statistics.median(agent)
    bare_median = statistics.median(bare)
    overhead = agent_median / bare_median - 1
    paired = statistics.median(ratios) - 1
    met = abs(overhead) <= TARGET
    threads = torch.get_num_threads()
    print(
        f"\n  {KLEIN_TINY.slug} on {device} ({threads} torch threads), {rounds} alternating "
        f"rounds of {runs} timed images each side ({took:.0f} s):"
    )
    print(
        f"    agent {agent_median * 1000:.2f} ms per image (median of {len(agent)}; "
        f"p10 {statistics.quantiles(agent, n=10)[0] * 1000:.2f}, "
        f"p90 {statistics.quantiles(agent, n=10)[-1] * 1000:.2f})"
    )
    print(
        f"    bare  {bare_median * 1000:.2f} ms per image (median of {len(bare)}; "
        f"p10 {statistics.quantiles(bare, n=10)[0] * 1000:.2f}, "
        f"p90 {statistics.quantiles(bare, n=10)[-1] * 1000:.2f})"
    )
    print(
        f"    overhead {overhead:+.2%} on the medians, {paired:+.2%} as the median of the "
        f"per-round ratios (target within +/-{TARGET:.0%}: {'met' if met else 'NOT met'})"
    )
    return {
        "device": device,
        "agent_median_s": agent_median,
        "bare_median_s": bare_median,
        "overhead": overhead,
        "paired_overhead": paired,
        "images_each": len(agent),
        "met": met,
        "headline": (
            f"agent {agent_median * 1000:.1f} ms vs bare {bare_median * 1000:.1f} ms per image "
            f"on {device}: {overhead:+.2%}"
        ),
    }
