"""Fixtures for the agent's tests: a temporary user directory, the CLI, a tiny run."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from klein_bench import upload
from klein_bench.cli import main
from klein_bench.state import ENV_HOME, Home


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    """A fresh agent directory (KLEIN_BENCH_HOME) for each test."""
    root = tmp_path / "klein-bench-home"
    monkeypatch.setenv(ENV_HOME, str(root))
    monkeypatch.delenv(upload.SERVER_ENV, raising=False)
    # Retries without waiting: the tests check which tries happen, not how long apart.
    monkeypatch.setattr(upload, "BACKOFF_S", 0.0)
    return Home(root)


@pytest.fixture
def cli(home) -> Callable[..., Result]:
    """Invoke `klein-bench ARGS...`; stdout and stderr are kept apart."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input)

    return invoke


@pytest.fixture(scope="session")
def _tiny_run() -> dict[str, Any]:
    pytest.importorskip("diffusers", reason="the tiny pipeline needs klein-bench[diffusers]")
    from klein_bench.backends.diffusers.backend import run_protocol
    from klein_bench.progress import SilentProgress

    progress = SilentProgress()
    payload = run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-resident",
        runs=5,
        gpu_index=None,
        progress=progress,
        salt=b"0" * 32,
    )
    return {"payload": payload, "progress": progress}


@pytest.fixture
def tiny_payload(_tiny_run) -> dict[str, Any]:
    """A successful klein-tiny-random result made on this machine (one run per session)."""
    return copy.deepcopy(_tiny_run["payload"])


@pytest.fixture
def tiny_progress(_tiny_run):
    return _tiny_run["progress"]
