"""The command line itself: help with examples, clean errors, light imports, and the
dispatch to the ComfyUI runtime."""

from __future__ import annotations

import subprocess
import sys

import pytest

from klein_bench.cli import main

COMMANDS = [
    ("doctor",),
    ("run",),
    ("submit",),
    ("keys",),
    ("keys", "show"),
    ("keys", "rotate"),
    ("results",),
    ("withdraw",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself_with_examples(cli, command):
    result = cli(*command, "--help")

    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "klein-bench " + command[0] in result.stdout


def test_the_top_level_help_lists_the_commands_and_where_to_start(cli):
    result = cli("--help")

    assert result.exit_code == 0
    for command in ("doctor", "run", "submit", "keys", "results", "withdraw"):
        assert command in result.stdout
    assert "klein-bench run --model klein-tiny-random" in result.stdout


def test_the_cli_imports_without_django_or_torch():
    code = (
        "import sys, klein_bench.cli; "
        "print(sorted(m for m in ('django', 'torch', 'diffusers') if m in sys.modules))"
    )

    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert output.strip() == "[]"


def test_an_unexpected_failure_is_one_sentence_without_a_traceback(cli, monkeypatch):
    from klein_bench import doctor

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(doctor, "diagnose", broken)

    result = cli("doctor")

    assert result.exit_code == 70
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Unexpected error: ZeroDivisionError: division by zero.")
    assert "KLEIN_BENCH_DEBUG=1" in result.stderr


def test_debug_mode_lets_the_traceback_through(cli, monkeypatch):
    from klein_bench import doctor

    monkeypatch.setenv("KLEIN_BENCH_DEBUG", "1")
    monkeypatch.setattr(doctor, "diagnose", lambda *a, **k: 1 / 0)

    result = cli("doctor")

    assert isinstance(result.exception, ZeroDivisionError)


def test_comfyui_runs_through_the_comfyui_runtime(cli, home, monkeypatch, tiny_payload):
    from klein_bench.backends.comfyui import runner as comfyui

    calls = []

    def fake_run_protocol(**kwargs):
        calls.append(kwargs)
        return tiny_payload

    monkeypatch.setattr(comfyui, "run_protocol", fake_run_protocol)

    result = cli(
        "run", "--runtime", "comfyui", "--comfyui-url", "http://127.0.0.1:9999", "--runs", "6"
    )

    assert result.exit_code == 0, result.output
    [call] = calls
    assert {k: call[k] for k in ("url", "runs", "gpu_index")} == {
        "url": "http://127.0.0.1:9999",
        "runs": 6,
        "gpu_index": 0,
    }
    assert hasattr(call["progress"], "stage")
    assert len(home.history()) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--preset", "fp8-storage"), "--preset apply to the diffusers runtime"),
        (("--synthetic",), "--synthetic apply to the diffusers runtime"),
        (("--download",), "--download apply to the diffusers runtime"),
    ],
)
def test_options_that_do_not_apply_to_comfyui_are_refused(cli, arguments, message):
    result = cli("run", "--runtime", "comfyui", *arguments)

    assert result.exit_code == 1
    assert message in result.stderr


def test_a_comfyui_url_without_the_comfyui_runtime_is_refused(cli):
    result = cli("run", "--model", "klein-tiny-random", "--comfyui-url", "http://x:8188")

    assert result.exit_code == 1
    assert "--comfyui-url applies with --runtime comfyui" in result.stderr


def test_the_console_script_points_at_the_click_group():
    from importlib.metadata import entry_points

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "klein-bench"]
    assert script.load() is main
