"""The benchmark options `run` and `submit` share, and running the protocol as they say
on the runtime they name (diffusers in this process, or a ComfyUI server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from klein_bench.backends.comfyui.client import DEFAULT_URL as DEFAULT_COMFYUI_URL
from klein_bench.catalog import RUNTIMES
from klein_bench.commands.common import err_console, is_explicit, out_console
from klein_bench.contract.catalog import DEFAULT_PRESET, PRESETS
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress, RichProgress
from klein_bench.state import Home

# Every protocol times at least as many runs as the default model's (they are made from it).
_DEFAULT_PROTOCOL = MODELS[DEFAULT_MODEL].protocol
_TINY = ", ".join(slug for slug, m in MODELS.items() if m.built_in)


def benchmark_options(command: Callable) -> Callable:
    options = [
        click.option(
            "--model",
            type=click.Choice(list(MODELS)),
            default=DEFAULT_MODEL,
            show_default=True,
            help="What to run, with its own protocol. The tiny test models "
            f"({_TINY}) are built in code and run on a CPU in seconds.",
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
            type=click.IntRange(min=_DEFAULT_PROTOCOL.min_timed_runs, max=100),
            default=_DEFAULT_PROTOCOL.default_timed_runs,
            show_default=True,
            help="Timed generations after the warm-up "
            f"(at least {_DEFAULT_PROTOCOL.min_timed_runs}).",
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
            help="Download the model's weights into the HF cache if they are missing "
            "(about 15 GiB for a 4B model, 33 GiB for a 9B).",
        ),
        click.option(
            "--synthetic",
            is_flag=True,
            help="The model's full-size architecture with random weights: real speed and "
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
            help="Which of the model's diffusion model files ComfyUI runs: fp8 (e.g. "
            "flux-2-klein-4b-fp8.safetensors), bf16 (flux-2-klein-4b.safetensors), or auto: "
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
        if is_explicit(ctx, "comfyui_model") and MODELS[options["model"]].built_in:
            raise KleinBenchError(
                f"--comfyui-model picks a real model's file; {options['model']} writes its "
                "own tiny files: leave it out."
            )
        from klein_bench.backends.comfyui.runner import run_protocol as run_comfyui

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
    from klein_bench.backends.diffusers.backend import run_protocol

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


def run_and_report(
    ctx: click.Context, options: dict[str, Any], home: Home, extra: dict[str, Any] | None = None
) -> tuple[dict, str]:
    """Run the benchmark, keep the payload (with `extra` top-level fields, such as the
    result it reproduces) as a local result and print it."""
    from klein_bench import report

    progress = RichProgress(err_console())
    try:
        payload = benchmark(ctx, options, progress, home)
    except BaseException:
        progress.abandon()
        raise
    progress.done()
    payload.update(extra or {})
    local_id = home.save_result(payload)
    report.print_result(out_console(), payload)
    return payload, local_id
