"""The agent against a real ComfyUI, when one is given; skipped with the reason otherwise.

- `KLEIN_BENCH_COMFYUI_URL=http://127.0.0.1:8188`: a running ComfyUI (on the CPU is fine).
  The tiny model's files are written into its first model folders.
- `KLEIN_BENCH_COMFYUI_DIR=/path/to/ComfyUI`: a ComfyUI checkout the tests start on the
  CPU, on a free port, with every folder (models included) in a temporary directory;
  `KLEIN_BENCH_COMFYUI_PYTHON` is the Python that has its requirements (default: this one).

A ComfyUI 0.9.2 or newer runs the tiny model end to end: every run has its stage times,
and each image's seconds match ComfyUI's own "Prompt executed in" log line. An older one
is told to update, with the tiny model and with Klein 4B. docs/comfyui.md has the runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packaging.version import Version

from klein_bench.backends.comfyui import logs as comfyui_logs
from klein_bench.backends.comfyui import runner as comfyui
from klein_bench.backends.comfyui.client import ComfyUIClient
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress
from klein_bench.result import schema_errors

URL_ENV = "KLEIN_BENCH_COMFYUI_URL"
DIR_ENV = "KLEIN_BENCH_COMFYUI_DIR"
PYTHON_ENV = "KLEIN_BENCH_COMFYUI_PYTHON"
START_TIMEOUT_S = 180

pytestmark = pytest.mark.skipif(
    not (os.environ.get(URL_ENV) or os.environ.get(DIR_ENV)),
    reason=f"no real ComfyUI: set {URL_ENV} (a running one) or {DIR_ENV} (a checkout to start)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def comfyui_url(tmp_path_factory) -> Iterator[str]:
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV].rstrip("/")
        return
    folder = Path(os.environ[DIR_ENV])
    base = tmp_path_factory.mktemp("comfyui-base")
    port = _free_port()
    for name in ("custom_nodes", "input", "output", "temp", "user"):
        (base / name).mkdir()
    command = [
        os.environ.get(PYTHON_ENV, sys.executable),
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--base-directory",
        str(base),
        # Its default database lives inside the checkout.
        "--database-url",
        f"sqlite:///{base / 'comfyui.db'}",
    ]
    # One thread: the tests share the machine; nothing is written into the checkout.
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    log = (base / "comfyui.log").open("w")
    process = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"ComfyUI exited at start; see {base / 'comfyui.log'}")
            try:
                httpx.get(f"{url}/system_stats", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"ComfyUI did not answer within {START_TIMEOUT_S} s")
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def version(comfyui_url) -> Version:
    with ComfyUIClient(comfyui_url) as client:
        return Version(client.system_stats()["system"]["comfyui_version"])


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("KLEIN_BENCH_HOME", str(tmp_path / "home"))


def run(url: str, model: str) -> dict:
    return comfyui.run_protocol(
        url=url, runs=5, gpu_index=0, progress=SilentProgress(), model=model
    )


def test_a_klein_aware_comfyui_runs_the_tiny_model_end_to_end(comfyui_url, version):
    if version < Version("0.9.2"):
        pytest.skip(f"ComfyUI {version} predates Klein support (see the update test)")

    payload = run(comfyui_url, "klein-tiny-random")
    with ComfyUIClient(comfyui_url) as client:
        lines = [entry["m"] for entry in client.log_entries() or []]

    assert schema_errors(payload) == []
    assert payload["outcome"]["status"] == "success", payload["outcome"]
    runs = payload["timings"]["runs"]
    assert len(runs) == 5
    for record in runs:
        for stage in ("text_encoding", "denoising", "vae_decode"):
            assert record[f"{stage}_seconds"] > 0, record
    # ComfyUI logs each prompt's time, rounded to 0.01 s, when it finishes.
    logged = comfyui_logs.executed_seconds(lines)[-6:]
    measured = [payload["timings"]["warmup_seconds"]] + [r["seconds"] for r in runs]
    assert logged == pytest.approx(measured, abs=0.011)
    path = payload["kernels"]
    assert path["source"] == "comfyui-log"
    assert path["model_file"] == "klein-tiny-random-flux2.safetensors"


def test_a_comfyui_before_klein_is_told_to_update(comfyui_url, version):
    if version >= Version("0.9.2"):
        pytest.skip(f"ComfyUI {version} knows Klein")

    for model in ("klein-tiny-random", "flux-2-klein-4b"):
        with pytest.raises(KleinBenchError) as caught:
            run(comfyui_url, model)
        assert caught.value.message.startswith(f"This ComfyUI is version {version}, but FLUX.2")
        assert "update it with `git pull && pip install -r requirements.txt`" in (
            caught.value.message
        )


def test_klein_4b_is_not_benchmarked_on_a_cpu_comfyui(comfyui_url, version):
    with ComfyUIClient(comfyui_url) as client:
        device = client.system_stats()["devices"][0]["type"]
    if device != "cpu" or version < Version("0.9.2"):
        pytest.skip("this ComfyUI runs on a GPU or is refused for its version first")

    with pytest.raises(KleinBenchError) as caught:
        run(comfyui_url, "flux-2-klein-4b")

    assert caught.value.message.startswith("ComfyUI runs on the CPU")
