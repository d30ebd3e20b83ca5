"""The `klein-bench` command: a thin Click layer over the agent's modules.

Every problem the user can fix is a KleinBenchError, printed as one sentence with the
fix and a non-zero exit code; nothing else reaches the terminal as a traceback unless
KLEIN_BENCH_DEBUG is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from klein_bench import __version__
from klein_bench.catalog import RUNTIMES
from klein_bench.contract.catalog import DEFAULT_PRESET, KLEIN_4B, KLEIN_TINY, MODELS, PRESETS
from klein_bench.contract.protocol import CURRENT
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress, RichProgress
from klein_bench.runners.comfyui_client import DEFAULT_URL as DEFAULT_COMFYUI_URL
from klein_bench.state import Home
from klein_bench.upload import DEFAULT_SERVER, SERVER_ENV, Client, ServerRejected

DEBUG_ENV = "KLEIN_BENCH_DEBUG"
EXIT_PROBLEM = 1
EXIT_BUG = 70


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


class KleinBenchGroup(click.Group):
    """Turns the agent's errors into one red sentence and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KleinBenchError as exc:
            console = _err()
            console.print(f"[red]Error:[/] {escape(exc.message)}", soft_wrap=True)
            if isinstance(exc, ServerRejected):
                for field, why in exc.fields.items():
                    console.print(f"  [bold]{escape(field)}[/]: {escape(why)}", soft_wrap=True)
            ctx.exit(EXIT_PROBLEM)
        except KeyboardInterrupt:
            _err().print("[red]Interrupted.[/] Nothing was sent.")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            _err().print(
                f"[red]Unexpected error:[/] {type(exc).__name__}: {escape(str(exc))}. This is "
                "a bug in klein-bench: please report it with the output of `klein-bench doctor` "
                f"(set {DEBUG_ENV}=1 to see the traceback).",
                soft_wrap=True,
            )
            ctx.exit(EXIT_BUG)


def _explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


def _home() -> Home:
    return Home.from_env()


server_option = click.option(
    "--server",
    default=DEFAULT_SERVER,
    envvar=SERVER_ENV,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="The klein-bench platform to talk to.",
)


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
            help="What runs: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()),
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
            help="Download the weights (~16 GB) into the HF cache if they are missing.",
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


_BENCHMARK_PARAMS = (
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


def _benchmark(ctx: click.Context, options: dict[str, Any], progress: Progress, home: Home) -> dict:
    """Run the protocol as the options say; the result payload."""
    if options["runtime"] == "comfyui":
        not_for_comfyui = [
            f"--{name.replace('_', '-')}"
            for name in ("preset", "weights", "download", "synthetic")
            if _explicit(ctx, name)
        ]
        if not_for_comfyui:
            raise KleinBenchError(
                f"{', '.join(not_for_comfyui)} apply to the diffusers runtime: ComfyUI runs "
                "the models in its own folders, so leave them out with --runtime comfyui."
            )
        if _explicit(ctx, "comfyui_model") and options["model"] != KLEIN_4B.slug:
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
        if _explicit(ctx, name):
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


def _run_and_report(ctx: click.Context, options: dict[str, Any], home: Home) -> tuple[dict, str]:
    from klein_bench import report

    progress = RichProgress(_err())
    try:
        payload = _benchmark(ctx, options, progress, home)
    except BaseException:
        progress.abandon()
        raise
    progress.done()
    local_id = home.save_result(payload)
    report.print_result(_out(), payload)
    return payload, local_id


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
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(
    weights: Path | None, runtime: str | None, comfyui_url: str | None, as_json: bool
) -> None:
    """Check the GPU, driver, torch, diffusers, RAM, disk, weights and ComfyUI; say what to fix.

    \b
    Examples:
      klein-bench doctor
      klein-bench doctor --weights ~/models/FLUX.2-klein-4B
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
    result = diagnose(weights, runtime=runtime, comfyui_url=comfyui_url)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2, default=str))
        return
    report.print_doctor(_out(), result)


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

    One untimed warm-up, then the timed generations (protocol klein4b-t2i-v1: 1024x1024,
    4 steps, guidance 1.0). Out-of-memory and other failures are results too.

    \b
    Examples:
      klein-bench run --model klein-tiny-random
      klein-bench run --preset bf16-model-offload --runs 10 -o result.json
      klein-bench run --synthetic --preset fp8-storage  # before a 16 GB download
      klein-bench run --weights ~/models/FLUX.2-klein-4B --gpu 1
      klein-bench run --runtime comfyui --comfyui-url http://127.0.0.1:8188
    """
    home = _home()
    payload, local_id = _run_and_report(ctx, options, home)
    if output is not None:
        try:
            output.write_text(json.dumps(payload, indent=2) + "\n")
        except OSError as exc:
            raise KleinBenchError(
                f"Cannot write {output} ({exc.strerror}): pick another --output; the result "
                f"is also kept as local result {local_id}."
            ) from exc
    err = _err()
    where = f"{escape(str(output))} and " if output else ""
    err.print(
        f"Saved to {where}local result [bold]{local_id}[/]. Send it with "
        f"`klein-bench submit {escape(str(output or local_id))}`.",
        soft_wrap=True,
    )


def _print_accepted(console: Console, accepted: Any) -> None:
    console.print(f"[green]Result {accepted.result_id} stored ({accepted.status}).[/]")
    console.print(f"  Permalink:  {escape(accepted.permalink)}", soft_wrap=True)
    if accepted.check_page:
        console.print(f"  Check page: {escape(accepted.check_page)}", soft_wrap=True)


def _client(server: str, console: Console) -> Client:
    def on_retry(problem: str, wait: float) -> None:
        console.print(f"[yellow]{escape(problem)}; trying again in {wait:.0f} s[/]", soft_wrap=True)

    return Client(server, on_retry=on_retry)


@main.command()
@click.argument("result_file", required=False, metavar="[RESULT]")
@benchmark_options
@server_option
@click.option("--pending", is_flag=True, help="Send the results waiting in the queue.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option(
    "--print-payload",
    is_flag=True,
    help="Print the exact request body (the signed document) to stdout; send nothing.",
)
@click.pass_context
def submit(
    ctx: click.Context,
    result_file: str | None,
    server: str,
    pending: bool,
    dry_run: bool,
    print_payload: bool,
    **options: Any,
) -> None:
    """Sign a result and upload it; runs the benchmark first if no RESULT is given.

    RESULT is a file from `klein-bench run --output` or a local id from `klein-bench
    results`. If the server cannot be reached the signed result waits in a local queue;
    `--pending` sends it later (the same bytes, so nothing is stored twice).

    \b
    Examples:
      klein-bench submit --model klein-tiny-random --server http://127.0.0.1:8000
      klein-bench submit result.json
      klein-bench submit --dry-run --print-payload result.json
      klein-bench submit --pending
    """
    from klein_bench import submit as submission
    from klein_bench.upload import normalize_server

    err = _err()
    server = normalize_server(server)
    explicit_benchmark = [p for p in _BENCHMARK_PARAMS if _explicit(ctx, p)]
    if pending:
        if result_file or dry_run or print_payload or explicit_benchmark:
            raise KleinBenchError(
                "--pending sends the queue as it is: leave out RESULT, --dry-run, "
                "--print-payload and the benchmark options."
            )
        home = _home()
        if not home.pending():
            err.print("The queue is empty: there is nothing to send.")
            return
        override = server if _explicit(ctx, "server") else None
        outcomes = submission.send_pending(home, lambda url: _client(url, err), override)
        failed = 0
        for outcome in outcomes:
            if outcome.accepted is not None:
                _print_accepted(_out(), outcome.accepted)
            else:
                failed += 1
                kept = (
                    "kept in the queue"
                    if isinstance(outcome.problem, submission.ServerUnreachable)
                    else "removed from the queue"
                )
                err.print(
                    f"[red]{outcome.document.submission_id}[/]: {escape(outcome.problem.message)} "
                    f"({kept})",
                    soft_wrap=True,
                )
        if failed:
            raise KleinBenchError(
                f"{failed} of {len(outcomes)} queued result{'s' if len(outcomes) > 1 else ''} "
                "could not be sent: see above, and run `klein-bench submit --pending` again "
                "for those kept in the queue."
            )
        return

    home = _home()
    if result_file:
        if explicit_benchmark:
            names = ", ".join(
                f"--{p.replace('_index', '').replace('_', '-')}" for p in explicit_benchmark
            )
            raise KleinBenchError(
                f"{names} only apply when submit runs the benchmark: leave them out when "
                "you pass RESULT."
            )
        payload, local_id = submission.load_result(home, result_file)
        entry = home.find_payload(payload)
        if entry is not None:
            local_id = entry["local_id"]
            if entry.get("status") == "sent" and not (dry_run or print_payload):
                raise KleinBenchError(
                    f"This result was already sent as result {entry['result_id']} "
                    f"({entry['permalink']}): there is nothing to do."
                )
            if entry.get("status") == "queued" and not (dry_run or print_payload):
                raise KleinBenchError(
                    "This result already waits in the queue: send it with "
                    "`klein-bench submit --pending`."
                )
        elif local_id is None:
            local_id = home.save_result(payload)
    else:
        payload, local_id = _run_and_report(ctx, options, home)

    sealed = submission.seal(home, payload, local_id)
    if dry_run or print_payload:
        if print_payload:
            click.echo(sealed.body.decode())
        err.print(
            f"Dry run: nothing was sent. POST {escape(server)}/contribute, "
            f"{len(sealed.body):,} bytes, signed by {sealed.key_id}, "
            f"submission {sealed.submission_id}.",
            soft_wrap=True,
        )
        return
    err.print(f"Sending to {escape(server)} ...")
    accepted = submission.send(home, _client(server, err), sealed)
    _print_accepted(_out(), accepted)


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
    home = _home()
    created = not home.has_key()
    key = home.signing_key()
    out = _out()
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
    old, new = _home().rotate_key()
    out = _out()
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

    home = _home()
    entries = home.history()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        _err().print("No results yet: run `klein-bench run --model klein-tiny-random` to try.")
        return
    _out().print(report.history_table(entries))
    _err().print("Permalinks: `klein-bench results --json`. Send one: `klein-bench submit ID`.")
    queued = len(home.pending())
    if queued:
        _err().print(
            f"{queued} result{'s' if queued > 1 else ''} waiting: `klein-bench submit --pending`."
        )


@main.command()
@click.argument("result_id", type=click.IntRange(min=1), metavar="ID")
@server_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def withdraw(ctx: click.Context, result_id: int, server: str, yes: bool) -> None:
    """Withdraw one of your results from the platform (signed with the key that sent it).

    ID is the server's result id: the number in the permalink /r/ID, also shown by
    `klein-bench results`. Without --server the withdrawal goes where this machine's
    history says the result was sent.

    \b
    Examples:
      klein-bench withdraw 1234
      klein-bench withdraw 1234 --server http://127.0.0.1:8000 --yes
    """
    from klein_bench import submit as submission
    from klein_bench.upload import normalize_server

    home = _home()
    if _explicit(ctx, "server"):
        server = normalize_server(server)
    else:
        sent = home.find_result(result_id)
        server = normalize_server((sent or {}).get("server") or server)
    if not yes:
        click.confirm(f"Withdraw result {result_id} from {server}?", abort=True)
    body, key_id, known = submission.withdrawal(home, result_id, server)
    err = _err()
    if not known:
        err.print(
            f"Result {result_id} is not in this machine's history for {escape(server)}; "
            f"signing with the current key {key_id}.",
            soft_wrap=True,
        )
    _client(server, err).withdraw(result_id, body)
    entry = home.find_result(result_id, server)
    if entry is not None:
        home.update_history(entry["local_id"], status="withdrawn")
    _out().print(f"[green]Result {result_id} withdrawn.[/] It no longer counts on the check pages.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
