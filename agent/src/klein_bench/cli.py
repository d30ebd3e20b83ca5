"""The `klein-bench` command: a thin Click layer over the agent's modules.

Every problem the user can fix is a KleinBenchError, printed as one sentence with the
fix and a non-zero exit code; nothing else reaches the terminal as a traceback unless
KLEIN_BENCH_DEBUG is set. The benchmark options and runtimes are in
klein_bench.commands.benchmark, `submit` and `withdraw` in klein_bench.commands.submit,
`reproduce` in klein_bench.commands.reproduce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from klein_bench import __version__
from klein_bench.backends.comfyui.client import DEFAULT_URL as DEFAULT_COMFYUI_URL
from klein_bench.catalog import RUNTIMES
from klein_bench.commands.benchmark import benchmark_options, run_and_report
from klein_bench.commands.common import (
    EXIT_PROBLEM,
    KleinBenchGroup,
    agent_home,
    err_console,
    out_console,
)
from klein_bench.commands.reproduce import reproduce
from klein_bench.commands.submit import submit, withdraw
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.errors import KleinBenchError


@click.group(
    cls=KleinBenchGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="klein-bench")
def main() -> None:
    """Benchmark FLUX.2 [klein] on your GPU and contribute signed results to klein-bench.

    \b
    Start here:
      klein-bench doctor                               what this machine can run, and fixes
      klein-bench run --model klein-tiny-random        try the agent (CPU, seconds)
      klein-bench run --preset bf16-resident           the real benchmark on your GPU
      klein-bench submit                               run it and upload a signed result
      klein-bench reproduce ID                         run result ID's configuration again

    State (signing key, queue, history) lives in a user directory; KLEIN_BENCH_HOME
    overrides it. Set KLEIN_BENCH_DEBUG=1 to see tracebacks.
    """


@main.command()
@click.option(
    "--weights",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="PATH",
    help="Check this weights folder instead of the Hugging Face cache.",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=None,
    help="Check for this runtime only [default: diffusers, and ComfyUI too when one answers "
    "at --comfyui-url].",
)
@click.option(
    "--comfyui-url",
    default=None,
    metavar="URL",
    help=f"The ComfyUI server to check [default: {DEFAULT_COMFYUI_URL}].",
)
@click.option(
    "--model",
    type=click.Choice(list(MODELS)),
    default=DEFAULT_MODEL,
    show_default=True,
    help="The model whose weights and fit on each GPU to check.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(
    weights: Path | None, runtime: str | None, comfyui_url: str | None, model: str, as_json: bool
) -> None:
    """Check the GPU, driver, torch, diffusers, RAM, disk, weights and ComfyUI; say what to fix.

    Exits with status 1 when it finds a problem to fix (with --json too), 0 otherwise;
    warnings alone do not fail it.

    \b
    Examples:
      klein-bench doctor
      klein-bench doctor --weights ~/models/FLUX.2-klein-4B
      klein-bench doctor --model flux-2-klein-9b
      klein-bench doctor --runtime comfyui --comfyui-url http://127.0.0.1:8190
      klein-bench doctor --json > doctor.json
    """
    from dataclasses import asdict

    from klein_bench import report
    from klein_bench.doctor import diagnose

    if comfyui_url is not None and runtime == "diffusers":
        raise KleinBenchError(
            "--comfyui-url names a ComfyUI to check: leave out --runtime diffusers, or the URL."
        )
    result = diagnose(weights, runtime=runtime, comfyui_url=comfyui_url, model=model)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2, default=str))
    else:
        report.print_doctor(out_console(), result)
    if result.problems:
        click.get_current_context().exit(EXIT_PROBLEM)


@main.command()
@benchmark_options
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the result to this JSON file.",
)
@click.pass_context
def run(ctx: click.Context, output: Path | None, **options: Any) -> None:
    """Run the standardized benchmark and print the result; nothing is sent.

    One untimed warm-up, then the timed generations of the model's own protocol (Klein 4B:
    klein4b-t2i-v1, 1024x1024, 4 steps, guidance 1.0; the base models 50 steps with
    classifier-free guidance 4.0). Out-of-memory and other failures are results too.

    \b
    Examples:
      klein-bench run --model klein-tiny-random
      klein-bench run --model flux-2-klein-9b --synthetic --preset fp8-storage
      klein-bench run --preset bf16-model-offload --runs 10 -o result.json
      klein-bench run --synthetic --preset fp8-storage  # before a 15 GiB download
      klein-bench run --weights ~/models/FLUX.2-klein-4B --gpu 1
      klein-bench run --runtime comfyui --comfyui-url http://127.0.0.1:8188
    """
    home = agent_home()
    payload, local_id = run_and_report(ctx, options, home)
    if output is not None:
        try:
            output.write_text(json.dumps(payload, indent=2) + "\n")
        except OSError as exc:
            raise KleinBenchError(
                f"Cannot write {output} ({exc.strerror}): pick another --output; the result "
                f"is also kept as local result {local_id}."
            ) from exc
    err = err_console()
    where = f"{escape(str(output))} and " if output else ""
    err.print(
        f"Saved to {where}local result [bold]{local_id}[/]. Send it with "
        f"`klein-bench submit {escape(str(output or local_id))}`.",
        soft_wrap=True,
    )


@main.group(invoke_without_command=True)
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Show your signing key (the default), or rotate it.

    Results are signed with an Ed25519 key kept in the agent's directory (mode 0600).
    The platform knows you by its key id; nothing else identifies you.

    \b
    Examples:
      klein-bench keys
      klein-bench keys rotate
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(show)


@keys.command()
def show() -> None:
    """Show the key id, the public key and where the key file is.

    \b
    Example:
      klein-bench keys show
    """
    home = agent_home()
    created = not home.has_key()
    key = home.signing_key()
    out = out_console()
    if created:
        out.print("Made a new signing key.")
    out.print(f"Key id:      {key.key_id}")
    out.print(f"Public key:  {key.public_bytes.hex()}")
    out.print(f"Key file:    {escape(str(home.key_path))}", soft_wrap=True)
    retired = home.retired_keys()
    if retired:
        out.print(
            f"Older keys:  {', '.join(k.key_id for k in retired)} (kept to withdraw the results "
            "they signed)",
            soft_wrap=True,
        )


@keys.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rotate(yes: bool) -> None:
    """Replace the signing key with a new one; the old key is kept.

    New results are signed with the new key and appear under a new contributor id. The
    old key stays in the agent's directory so `klein-bench withdraw` still works for the
    results it signed.

    \b
    Example:
      klein-bench keys rotate --yes
    """
    if not yes:
        click.confirm(
            "New results will appear under a new key id. Rotate the signing key?", abort=True
        )
    old, new = agent_home().rotate_key()
    out = out_console()
    if old is not None:
        out.print(f"Retired key: {old.key_id} (kept to withdraw the results it signed)")
    out.print(f"New key id:  {new.key_id}")
    out.print(f"Public key:  {new.public_bytes.hex()}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
def results(as_json: bool) -> None:
    """List the results this machine produced, and where each was sent.

    \b
    Examples:
      klein-bench results
      klein-bench results --json
    """
    from klein_bench import report

    home = agent_home()
    entries = home.history()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        err_console().print(
            "No results yet: run `klein-bench run --model klein-tiny-random` to try."
        )
        return
    out_console().print(report.history_table(entries))
    err_console().print(
        "Permalinks: `klein-bench results --json`. Send one: `klein-bench submit ID`."
    )
    queued = len(home.pending())
    if queued:
        err_console().print(
            f"{queued} result{'s' if queued > 1 else ''} waiting: `klein-bench submit --pending`."
        )


main.add_command(submit)
main.add_command(withdraw)
main.add_command(reproduce)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
