"""`klein-bench submit` and `withdraw`: signed uploads to the platform, and taking one
back."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from klein_bench.commands.benchmark import BENCHMARK_PARAMS, benchmark_options, run_and_report
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
from klein_bench.errors import KleinBenchError


@click.command()
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

    err = err_console()
    server = normalize_server(server)
    explicit_benchmark = [p for p in BENCHMARK_PARAMS if is_explicit(ctx, p)]
    if pending:
        if result_file or dry_run or print_payload or explicit_benchmark:
            raise KleinBenchError(
                "--pending sends the queue as it is: leave out RESULT, --dry-run, "
                "--print-payload and the benchmark options."
            )
        home = agent_home()
        if not home.pending():
            err.print("The queue is empty: there is nothing to send.")
            return
        override = server if is_explicit(ctx, "server") else None
        outcomes = submission.send_pending(home, lambda url: platform_client(url, err), override)
        failed = 0
        for outcome in outcomes:
            # Named as `klein-bench results` names it: by its local id.
            name = outcome.document.local_id or outcome.document.submission_id
            if outcome.accepted is not None:
                out_console().print(f"Local result {name}:")
                print_accepted(out_console(), outcome.accepted)
            else:
                failed += 1
                kept = (
                    "kept in the queue"
                    if isinstance(outcome.problem, submission.ServerUnreachable)
                    else "removed from the queue"
                )
                err.print(
                    f"[red]Local result {escape(name)}[/]: {escape(outcome.problem.message)} "
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

    home = agent_home()
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
        payload, local_id = run_and_report(ctx, options, home)

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
    client = platform_client(server, err)
    warn_if_image_strays(client, payload)
    err.print(f"Sending to {escape(server)} ...")
    accepted = submission.send(home, client, sealed)
    print_accepted(out_console(), accepted)


class ResultId(click.ParamType):
    """The server's result id: a whole number from 1, as in the permalink /r/ID."""

    name = "ID"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value).strip()
        if text.isascii() and text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(
            f"{value!r} is not a result id: give the server's result id, the number at the end "
            "of the permalink …/r/ID (`klein-bench results` shows it as “sent as ID”).",
            param,
            ctx,
        )


@click.command()
@click.argument("result_id", type=ResultId(), metavar="ID")
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

    home = agent_home()
    recorded = not is_explicit(ctx, "server")
    if recorded:
        sent = home.find_result(result_id)
        recorded = bool(sent and sent.get("server"))
        server = normalize_server((sent or {}).get("server") or server)
    else:
        server = normalize_server(server)
    if not yes:
        click.confirm(f"Withdraw result {result_id} from {server}?", abort=True)
    body, key_id, known = submission.withdrawal(home, result_id, server)
    err = err_console()
    if not known:
        err.print(
            f"Result {result_id} is not in this machine's history for {escape(server)}; "
            f"signing with the current key {key_id}.",
            soft_wrap=True,
        )
    try:
        platform_client(server, err).withdraw(result_id, body)
    except submission.ServerUnreachable as exc:
        if not recorded:
            raise
        raise KleinBenchError(
            f"{exc.message} That is where this machine's history says result {result_id} was "
            "sent; if the site now runs elsewhere, pass --server URL."
        ) from exc
    entry = home.sent_entry(result_id, server, key_id)
    if entry is not None:
        home.update_history(entry["local_id"], status="withdrawn")
    out_console().print(
        f"[green]Result {result_id} withdrawn.[/] It no longer counts on the check pages."
    )
