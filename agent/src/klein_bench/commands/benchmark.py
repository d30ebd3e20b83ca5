"""The benchmark options `run` and `submit` share, and running the protocol as they say
on the runtime they name (diffusers in this process, or a ComfyUI server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from klein_bench.catalog import RUNTIMES
from klein_bench.commands.common import err_console, is_explicit, out_console
from klein_bench.contract.catalog import DEFAULT_PRESET, KLEIN_4B, KLEIN_TINY, MODELS, PRESETS
from klein_bench.contract.protocol import CURRENT
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress, RichProgress
from klein_bench.runners.comfyui_client import DEFAULT_URL as DEFAULT_COMFYUI_URL
from klein_bench.state import Home


def benchmark_options(command: Callable) -> Callable:
    options = [
        click.option(
            "--model",
            type=click.Choice(list(MODELS)),
            default=KLEIN_4B.slug,
            show_default=True,
            help=f"What to run; {KLEIN_TINY.slug} is built in code and runs on a CPU in seconds.",
        ),
        click.option(
            "--preset",
            type=click.Choice(list(PRESETS)),
            default=DEFAULT_PRESET,
            show_default=True,
            help="What runs: "
            + "; ".join(f"{p.name}: {p.description.rstrip('.')}" for p in PRESETS.values())
            + ". `klein-bench doctor` says which fit this GPU.",
        ),
        click.option(
            "--runs",
            type=click.IntRange(min=CURRENT.min_timed_runs, max=100),
            default=CURRENT.default_timed_runs,
            show_default=True,
            help=f"Timed generations after the warm-up (at least {CURRENT.min_timed_runs}).",
        ),
        click.option(
            "--gpu",
            "gpu_index",
            type=click.IntRange(min=0),
            default=None,
            metavar="INDEX",
            help="Which GPU, as `klein-bench doctor` and nvidia-smi number them "
            "[default: the first one torch sees].",
        ),
        click.option(
            "--weights",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            metavar="PATH",
            help="A local diffusers folder or Hugging Face cache [default: the HF cache].",
        ),
        click.option(
            "--download",
            is_flag=True,
            help="Download the weights (~15 GiB) into the HF cache if they are missing.",
        ),
        click.option(
            "--synthetic",
            is_flag=True,
            help="The full-size Klein 4B architecture with random weights: real speed and "
            "memory, no download, a noise image. Needs a GPU.",
        ),
        click.option(
            "--runtime",
            type=click.Choice(RUNTIMES),
            default="diffusers",
            show_default=True,
            help="diffusers in this process, or a running ComfyUI server.",
        ),
        click.option(
            "--comfyui-url",
            default=DEFAULT_COMFYUI_URL,
            show_default=True,
            metavar="URL",
            help="The ComfyUI server for --runtime comfyui.",
        ),
        click.option(
            "--comfyui-model",
            type=click.Choice(["auto", "fp8", "bf16"]),
            default="auto",
            show_default=True,
            help="Which Klein 4B file ComfyUI runs: fp8 (flux-2-klein-4b-fp8.safetensors), "
            "bf16 (flux-2-klein-4b.safetensors, the file ComfyUI's template names), or auto: "
            "fp8 when ComfyUI has it.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


BENCHMARK_PARAMS = (
    "model",
    "preset",
    "runs",
    "gpu_index",
    "weights",
    "download",
    "synthetic",
    "runtime",
    "comfyui_url",
    "comfyui_model",
)


def benchmark(ctx: click.Context, options: dict[str, Any], progress: Progress, home: Home) -> dict:
    """Run the protocol as the options say; the result payload."""
    if options["runtime"] == "comfyui":
        not_for_comfyui = [
            f"--{name.replace('_', '-')}"
            for name in ("preset", "weights", "download", "synthetic")
            if is_explicit(ctx, name)
        ]
        if not_for_comfyui:
            raise KleinBenchError(
                f"{', '.join(not_for_comfyui)} apply to the diffusers runtime: ComfyUI runs "
                "the models in its own folders, so leave them out with --runtime comfyui."
            )
        if is_explicit(ctx, "comfyui_model") and options["model"] != KLEIN_4B.slug:
            raise KleinBenchError(
                f"--comfyui-model picks a {KLEIN_4B.name} file: leave it out with --model "
                f"{options['model']}."
            )
        from klein_bench.runners.comfyui import run_protocol as run_comfyui

        return run_comfyui(
            url=options["comfyui_url"],
            runs=options["runs"],
            gpu_index=options["gpu_index"] or 0,
            progress=progress,
            model=options["model"],
            weights=options["comfyui_model"],
        )
    for name in ("comfyui_url", "comfyui_model"):
        if is_explicit(ctx, name):
            raise KleinBenchError(
                f"--{name.replace('_', '-')} applies with --runtime comfyui: add that, or "
                "leave it out."
            )
    from klein_bench.runners.diffusers import run_protocol

    return run_protocol(
        model=options["model"],
        preset_name=options["preset"],
        runs=options["runs"],
        gpu_index=options["gpu_index"],
        weights_path=options["weights"],
        synthetic=options["synthetic"],
        download=options["download"],
        progress=progress,
        salt=home.gpu_salt(),
    )


def run_and_report(ctx: click.Context, options: dict[str, Any], home: Home) -> tuple[dict, str]:
    from klein_bench import report

    progress = RichProgress(err_console())
    try:
        payload = benchmark(ctx, options, progress, home)
    except BaseException:
        progress.abandon()
        raise
    progress.done()
    local_id = home.save_result(payload)
    report.print_result(out_console(), payload)
    return payload, local_id
