"""`klein-bench run|submit --runtime comfyui` against the stand-in ComfyUI."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from comfyui_server import Behaviour, ComfyUIServer

from klein_bench import gpu
from klein_bench.backends.comfyui import runner as comfyui
from klein_bench.cli import main
from klein_bench.contract import wire
from klein_bench.errors import KleinBenchError
from klein_bench.result import schema_errors


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("KLEIN_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KLEIN_BENCH_SERVER", raising=False)
    monkeypatch.setattr(gpu, "_nvml_module", None)
    # The stand-in applies /free at once.
    monkeypatch.setattr(comfyui, "FREE_SETTLE_S", 0.0)

    def no_nvml():
        raise KleinBenchError("NVIDIA's NVML library was not found.")

    monkeypatch.setattr(comfyui, "nvml", no_nvml)


class Platform:
    """Accepts POST /contribute like the klein-bench server and keeps what it got."""

    def __init__(self):
        self.bodies: list[bytes] = []
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                platform.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps(
                    {
                        "result_id": len(platform.bodies),
                        "permalink": f"{platform.url}/r/{len(platform.bodies)}",
                        "check_page": f"{platform.url}/check/flux-2-klein-4b/rtx-4090/",
                        "status": "accepted",
                    }
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._http.shutdown()
        self._http.server_close()

    def payloads(self) -> list[dict]:
        return [wire.parse_document(body).payload for body in self.bodies]


def test_run_writes_a_comfyui_fp8_result(tmp_path):
    output = tmp_path / "result.json"
    with ComfyUIServer() as server:
        result = CliRunner().invoke(
            main,
            ["run", "--runtime", "comfyui", "--comfyui-url", server.url, "-o", str(output)],
        )

    assert result.exit_code == 0, result.output
    payload = json.loads(output.read_text())
    assert schema_errors(payload) == []
    assert payload["configuration"]["runtime"] == "comfyui"
    assert payload["configuration"]["precision"] == "fp8-storage"
    assert len(payload["timings"]["runs"]) == 5


def test_submit_dry_run_prints_a_signed_comfyui_result_and_sends_nothing():
    with ComfyUIServer() as server:
        result = CliRunner().invoke(
            main,
            [
                "submit",
                "--dry-run",
                "--print-payload",
                "--runtime",
                "comfyui",
                "--comfyui-url",
                server.url,
                "--server",
                "http://127.0.0.1:9",
            ],
        )

    assert result.exit_code == 0, result.output
    document = wire.parse_document(result.stdout.strip().splitlines()[-1])
    document.verify(document.public_key)
    payload = document.payload
    assert schema_errors(payload) == []
    assert payload["configuration"] == {
        "runtime": "comfyui",
        "precision": "fp8-storage",
        "offload": "none",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        "preset": "fp8-storage",
        "fp8_method": "bfl-fp8-file",
    }
    assert "Dry run: nothing was sent." in result.stderr


def test_submit_uploads_an_out_of_memory_result_with_only_the_measured_runs():
    with ComfyUIServer(Behaviour(oom_at=("VAEDecode", 3))) as server, Platform() as platform:
        result = CliRunner().invoke(
            main,
            [
                "submit",
                "--runtime",
                "comfyui",
                "--comfyui-url",
                server.url,
                "--server",
                platform.url,
            ],
        )
        finished = [
            entry for entry in server.history.values() if entry["status"]["status_str"] == "success"
        ]

    assert result.exit_code == 0, result.output
    [payload] = platform.payloads()
    assert (payload["outcome"]["status"], payload["outcome"]["stage"]) == (
        "out_of_memory",
        "vae_decode",
    )
    measured = []
    for entry in finished[1:]:
        messages = dict(entry["status"]["messages"])
        start, end = messages["execution_start"], messages["execution_success"]
        measured.append((end["timestamp"] - start["timestamp"]) / 1000)
    assert [run["seconds"] for run in payload["timings"]["runs"]] == measured
    assert len(measured) == 2


def test_a_comfyui_that_is_not_running_is_one_sentence_and_nothing_is_sent():
    with Platform() as platform:
        result = CliRunner().invoke(
            main,
            [
                "submit",
                "--runtime",
                "comfyui",
                "--comfyui-url",
                "http://127.0.0.1:9",
                "--server",
                platform.url,
            ],
        )

    assert result.exit_code == 1
    assert "ComfyUI is not answering at http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert platform.bodies == []


def test_a_refused_comfyui_leaves_no_finished_bar_before_the_error():
    with ComfyUIServer(Behaviour(busy=True)) as server:
        result = CliRunner().invoke(
            main, ["run", "--runtime", "comfyui", "--comfyui-url", server.url]
        )

    assert result.exit_code == 1
    assert "✓" not in result.output
    assert "ComfyUI is busy with 1 queued prompt" in result.output


def test_the_bf16_file_is_chosen_with_comfyui_model(tmp_path):
    output = tmp_path / "result.json"
    files = {
        "diffusion_models": ["flux-2-klein-4b.safetensors", "flux-2-klein-4b-fp8.safetensors"],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": ["flux2-vae.safetensors"],
    }
    with ComfyUIServer(Behaviour(files=files)) as server:
        result = CliRunner().invoke(
            main,
            [
                "run",
                "--runtime",
                "comfyui",
                "--comfyui-url",
                server.url,
                "--comfyui-model",
                "bf16",
                "-o",
                str(output),
            ],
        )

    assert result.exit_code == 0, result.output
    payload = json.loads(output.read_text())
    assert payload["configuration"]["precision"] == "bf16"
    assert payload["kernels"]["model_file"] == "flux-2-klein-4b.safetensors"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--comfyui-model", "bf16"],
            "--comfyui-model applies with --runtime comfyui: add that, or leave it out.",
        ),
        (
            ["--runtime", "comfyui", "--model", "klein-tiny-random", "--comfyui-model", "fp8"],
            "--comfyui-model picks a real model's file; klein-tiny-random writes its own tiny "
            "files: leave it out.",
        ),
    ],
)
def test_comfyui_model_is_refused_where_it_means_nothing(args, message):
    result = CliRunner().invoke(main, ["run", *args])

    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
