"""`klein-bench reproduce ID`: run a published result's configuration again on this machine
and send it marked as a reproduction of that result.

The configuration comes from the platform (GET /api/v1/results/ID): the model, the preset
(precision and offload), the runtime, the protocol and whether it ran random weights. The
machine's own choices stay the contributor's: which GPU, where the weights are, which
ComfyUI. The payload's `reproduction_of` names the result; the platform checks that it ran
exactly that, and the result's page shows whether the reproduction agrees.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from klein_bench.backends.comfyui.client import DEFAULT_URL as DEFAULT_COMFYUI_URL
from klein_bench.commands.benchmark import run_and_report
from klein_bench.commands.common import (
    agent_home,
    err_console,
    is_explicit,
    out_console,
    platform_client,
    print_accepted,
    server_option,
    warn_if_image_strays,
)
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.errors import KleinBenchError

# Every protocol times at least as many runs as the default model's (they are made from it).
_DEFAULT_PROTOCOL = MODELS[DEFAULT_MODEL].protocol
# The model's ComfyUI file (by how it stores weights) for a result's precision
# (--comfyui-model of `run`).
COMFYUI_FILES = {"fp8-storage": "fp8", "bf16": "bf16"}


def _refuse(result_id: int, why: str) -> KleinBenchError:
    return KleinBenchError(f"Result {result_id} cannot be reproduced by this agent: {why}")


def options_for(result_id: int, original: dict[str, Any]) -> dict[str, Any]:
    """The benchmark options that run what result `result_id` ran; one sentence with the
    reason when this agent cannot."""
    model = MODELS.get(str(original.get("model")))
    if model is None:
        raise _refuse(
            result_id,
            f"it ran the model {original.get('model')!r}, which this agent "
            "does not measure; update the agent (pip install -U klein-bench).",
        )
    protocol = model.protocol
    if original.get("protocol_version") != protocol.id:
        raise _refuse(
            result_id,
            f"it ran protocol {original.get('protocol_version')}, this agent "
            f"runs {protocol.id} for {model.slug}; update the agent.",
        )
    if (original.get("width"), original.get("height"), original.get("steps")) != (
        model.width,
        model.height,
        protocol.steps,
    ):
        raise _refuse(
            result_id,
            f"it ran {original.get('width')}x{original.get('height')} at "
            f"{original.get('steps')} steps, and the agent runs only the protocol's "
            f"{model.width}x{model.height} at {protocol.steps}.",
        )
    preset = original.get("preset")
    runtime = original.get("runtime")
    options: dict[str, Any] = {
        "model": model.slug,
        "runtime": runtime,
        "synthetic": bool(original.get("synthetic")),
        "preset": preset,
        "comfyui_model": "auto",
    }
    if runtime == "comfyui":
        wanted = COMFYUI_FILES.get(str(original.get("precision")))
        if wanted is None or options["synthetic"]:
            raise _refuse(
                result_id,
                "it ran a ComfyUI setup the agent cannot pick a file for "
                f"({original.get('precision')}).",
            )
        # The tiny model is written into ComfyUI by the agent; there is no file to pick.
        options["comfyui_model"] = "auto" if model.built_in else wanted
    elif runtime == "diffusers":
        if preset not in PRESETS:
            raise _refuse(
                result_id,
                f"it ran {original.get('precision')} with "
                f"{original.get('offload')} offload, which is no preset of the agent.",
            )
    else:
        raise _refuse(result_id, f"it ran on {runtime!r}, a runtime this agent does not know.")
    return options


def fetch_original(client: Any, result_id: int) -> dict[str, Any]:
    answer = client.read(f"/api/v1/results/{result_id}")
    if answer is None or answer.get("id") != result_id:
        raise KleinBenchError(
            f"{client.server} has no result {result_id} (or could not be reached): check the "
            "number in the result's permalink (/r/ID) and --server."
        )
    return answer


@click.command()
@click.argument("result_id", type=click.IntRange(min=1), metavar="ID")
@server_option
@click.option(
    "--runs",
    type=click.IntRange(min=_DEFAULT_PROTOCOL.min_timed_runs, max=100),
    default=_DEFAULT_PROTOCOL.default_timed_runs,
    show_default=True,
    help=f"Timed generations after the warm-up (at least {_DEFAULT_PROTOCOL.min_timed_runs}).",
)
@click.option(
    "--gpu",
    "gpu_index",
    type=click.IntRange(min=0),
    default=None,
    metavar="INDEX",
    help="Which GPU, as `klein-bench doctor` numbers them [default: the first].",
)
@click.option(
    "--weights",
    type=click.Path(file_okay=False),
    default=None,
    metavar="PATH",
    help="A local diffusers folder or Hugging Face cache [default: the HF cache].",
)
@click.option("--download", is_flag=True, help="Download the weights if they are missing.")
@click.option(
    "--comfyui-url",
    default=DEFAULT_COMFYUI_URL,
    show_default=True,
    metavar="URL",
    help="The ComfyUI server, when the result ran on ComfyUI.",
)
@click.option("--dry-run", is_flag=True, help="Run and show what would be sent; send nothing.")
@click.pass_context
def reproduce(
    ctx: click.Context, result_id: int, server: str, dry_run: bool, **machine: Any
) -> None:
    """Run result ID's configuration again on this machine and send it as a reproduction.

    The model, preset, runtime and protocol come from the platform; the result's page
    then lists this run under its reproductions and says whether it agrees.

    \b
    Examples:
      klein-bench reproduce 1234
      klein-bench reproduce 1234 --gpu 1 --weights ~/models/FLUX.2-klein-4B
      klein-bench reproduce 1234 --server http://127.0.0.1:8000 --dry-run
    """
    from pathlib import Path

    from klein_bench import submit as submission
    from klein_bench.upload import normalize_server

    err = err_console()
    server = normalize_server(server)
    client = platform_client(server, err)
    original = fetch_original(client, result_id)
    options = options_for(result_id, original)
    if options["runtime"] != "comfyui" and is_explicit(ctx, "comfyui_url"):
        raise KleinBenchError(f"Result {result_id} ran on diffusers: leave out --comfyui-url.")
    if options["runtime"] == "comfyui" and (machine["weights"] or machine["download"]):
        raise KleinBenchError(
            f"Result {result_id} ran on ComfyUI, which runs the models in its own folders: "
            "leave out --weights and --download."
        )
    options.update(
        runs=machine["runs"],
        gpu_index=machine["gpu_index"],
        weights=Path(machine["weights"]).expanduser() if machine["weights"] else None,
        download=machine["download"],
        comfyui_url=machine["comfyui_url"],
    )
    err.print(
        f"Reproducing result {result_id}: {options['model']}, "
        f"{options['preset'] or original.get('precision')} on {options['runtime']}"
        f"{' with random weights' if options['synthetic'] else ''}.",
        soft_wrap=True,
    )
    home = agent_home()
    payload, local_id = run_and_report(ctx, options, home, extra={"reproduction_of": result_id})
    print_comparison(original, payload)
    sealed = submission.seal(home, payload, local_id)
    if dry_run:
        err.print(
            f"Dry run: nothing was sent. It would go to {escape(server)}/contribute as a "
            f"reproduction of result {result_id}; it is kept as local result {local_id}.",
            soft_wrap=True,
        )
        return
    warn_if_image_strays(client, payload)
    err.print(f"Sending to {escape(server)} ...")
    print_accepted(out_console(), submission.send(home, client, sealed))


def print_comparison(original: dict[str, Any], payload: dict[str, Any]) -> None:
    """The original's median beside this run's, in one line."""
    from klein_bench.result import stats

    mine = (stats(payload) or {}).get("median")
    theirs = original.get("seconds_median")
    if not isinstance(mine, (int, float)) or not isinstance(theirs, (int, float)) or not theirs:
        return
    apart = abs(mine - theirs) / theirs
    out_console().print(
        f"Original: {theirs:.2f} s per image on the {original.get('gpu')}; this run: "
        f"{mine:.2f} s ({apart:.0%} apart).",
        soft_wrap=True,
    )
