"""What every `klein-bench` command shares: the consoles, the error handling that turns
a KleinBenchError into one sentence, the agent's home, the platform client."""

from __future__ import annotations

import os
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from klein_bench.errors import KleinBenchError
from klein_bench.state import Home
from klein_bench.upload import DEFAULT_SERVER, SERVER_ENV, Client, ServerRejected

DEBUG_ENV = "KLEIN_BENCH_DEBUG"
EXIT_PROBLEM = 1
EXIT_BUG = 70


def out_console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


class KleinBenchGroup(click.Group):
    """Turns the agent's errors into one red sentence and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KleinBenchError as exc:
            console = err_console()
            console.print(f"[red]Error:[/] {escape(exc.message)}", soft_wrap=True)
            if isinstance(exc, ServerRejected):
                for field, why in exc.fields.items():
                    console.print(f"  [bold]{escape(field)}[/]: {escape(why)}", soft_wrap=True)
            ctx.exit(EXIT_PROBLEM)
        except KeyboardInterrupt:
            err_console().print("[red]Interrupted.[/] Nothing was sent.")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            err_console().print(
                f"[red]Unexpected error:[/] {type(exc).__name__}: {escape(str(exc))}. This is "
                "a bug in klein-bench: please report it with the output of `klein-bench doctor` "
                f"(set {DEBUG_ENV}=1 to see the traceback).",
                soft_wrap=True,
            )
            ctx.exit(EXIT_BUG)


def is_explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


def agent_home() -> Home:
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


def print_accepted(console: Console, accepted: Any) -> None:
    console.print(f"[green]Result {accepted.result_id} stored ({accepted.status}).[/]")
    console.print(f"  Permalink:  {escape(accepted.permalink)}", soft_wrap=True)
    if accepted.check_page:
        console.print(f"  Check page: {escape(accepted.check_page)}", soft_wrap=True)


def platform_client(server: str, console: Console) -> Client:
    def on_retry(problem: str, wait: float) -> None:
        console.print(f"[yellow]{escape(problem)}; trying again in {wait:.0f} s[/]", soft_wrap=True)

    return Client(server, on_retry=on_retry)


def warn_if_image_strays(client: Client, payload: dict[str, Any]) -> None:
    """One yellow sentence when the run's image strays from what other contributors got."""
    from klein_bench.image_check import stray_warning

    warning = stray_warning(payload, client.consensus(str(payload.get("model", ""))))
    if warning:
        err_console().print(f"[yellow]Warning:[/] {escape(warning)}", soft_wrap=True)
