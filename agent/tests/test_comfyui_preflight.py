"""Before measuring, the ComfyUI runtime checks the server, its nodes and its model files.

Each problem stops the run with one sentence that says how to fix it, and nothing is
queued on the server.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from comfyui_server import BF16_FILE, KLEIN_NODE_TYPES, Behaviour, ComfyUIServer

from klein_bench.backends.comfyui.client import ComfyUIClient
from klein_bench.backends.comfyui.preflight import launch_flags, preflight
from klein_bench.backends.comfyui.runner import run_protocol
from klein_bench.contract.models import KLEIN_4B
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress

UPDATE = "`git pull && pip install -r requirements.txt` in your ComfyUI folder"


def refusal(behaviour: Behaviour, **kwargs) -> str:
    """The sentence run_protocol stops with; checks nothing reached ComfyUI's queue and
    that no bar was closed as if the check had passed."""
    progress = SilentProgress()
    with ComfyUIServer(behaviour) as server:
        with pytest.raises(KleinBenchError) as caught:
            run_protocol(url=server.url, runs=5, gpu_index=0, progress=progress, **kwargs)
        assert server.prompts == []
        assert server.free_calls == []
    assert progress.events == [("stage", "Checking ComfyUI")]
    return caught.value.message


def test_a_server_that_does_not_answer_is_named_with_the_fix():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    with pytest.raises(KleinBenchError) as caught:
        run_protocol(url=url, runs=5, gpu_index=0, progress=SilentProgress())

    assert caught.value.message == (
        f"ComfyUI is not answering at {url}: start it (`python main.py` in your ComfyUI "
        "folder) or pass its address with --comfyui-url."
    )


def test_something_else_on_the_port_is_not_taken_for_comfyui():
    class NotComfy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), NotComfy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{other.server_address[1]}"
    try:
        with pytest.raises(KleinBenchError) as caught:
            run_protocol(url=url, runs=5, gpu_index=0, progress=SilentProgress())
    finally:
        other.shutdown()
        other.server_close()

    assert caught.value.message == (
        f"{url} answered, but not as ComfyUI does (/system_stats gave HTTP 404): check that "
        "--comfyui-url points at ComfyUI."
    )


def test_an_address_without_a_scheme_is_refused_with_an_example():
    with pytest.raises(KleinBenchError) as caught:
        run_protocol(url="localhost:8188", runs=5, gpu_index=0, progress=SilentProgress())

    assert caught.value.message == (
        "'localhost:8188' is not an http:// or https:// address: pass ComfyUI's address with "
        "--comfyui-url, e.g. http://127.0.0.1:8188."
    )


def test_comfyui_on_the_cpu_is_refused():
    expected = (
        "ComfyUI runs on the CPU (started with --cpu, or it found no CUDA GPU): restart it on "
        "your NVIDIA GPU without --cpu (only the tiny test models, such as --model "
        "klein-tiny-random, run on a CPU ComfyUI)."
    )
    assert refusal(Behaviour(device_type="cpu")) == expected
    assert refusal(Behaviour(argv=["main.py", "--cpu"])) == expected


def test_comfyui_on_a_non_nvidia_device_is_refused():
    assert refusal(Behaviour(device_type="mps")) == (
        "ComfyUI runs on a device that is not an NVIDIA GPU (mps), but klein-bench benchmarks "
        "NVIDIA GPUs: run ComfyUI with a CUDA build of PyTorch on an NVIDIA GPU."
    )


def test_a_busy_comfyui_is_not_benchmarked():
    assert refusal(Behaviour(busy=True)) == (
        "ComfyUI is busy with 1 queued prompt: wait for it to finish (or clear its queue), "
        "then run klein-bench again."
    )


def test_a_build_without_the_flux2_nodes_is_told_to_update():
    assert refusal(Behaviour(missing_nodes=KLEIN_NODE_TYPES)) == (
        "This ComfyUI build has no EmptyFlux2LatentImage, Flux2Scheduler nodes (FLUX.2 "
        f"[klein] needs ComfyUI 0.9.2 or newer): update it with {UPDATE}, then restart it."
    )


@pytest.mark.parametrize("version", ["0.3.64", "0.9.0", "0.9.1"])
def test_a_build_before_klein_support_is_told_to_update_even_with_the_flux2_nodes(version):
    # 0.9.0 and 0.9.1 have FLUX.2's nodes but load qwen_3_4b as another model's encoder.
    assert refusal(Behaviour(version=version)) == (
        f"This ComfyUI is version {version}, but FLUX.2 [klein] needs 0.9.2 or newer: update "
        f"it with {UPDATE}, then restart it."
    )


def test_an_old_build_is_told_to_update_before_it_is_told_to_download_files():
    files = {"diffusion_models": [], "text_encoders": [], "vae": []}

    assert refusal(Behaviour(version="0.9.1", files=files)).startswith(
        "This ComfyUI is version 0.9.1, but FLUX.2 [klein] needs 0.9.2 or newer"
    )


@pytest.mark.parametrize(
    ("torch_version", "name", "described"),
    [
        (
            "2.5.1+rocm6.2",
            "cuda:0 AMD Radeon RX 7900 XTX : native",
            "AMD Radeon RX 7900 XTX, PyTorch 2.5.1+rocm6.2",
        ),
        (
            "2.6.0+cu118",
            "cuda:0 AMD Radeon RX 6800 [ZLUDA] : native",
            "AMD Radeon RX 6800 [ZLUDA], PyTorch 2.6.0+cu118",
        ),
    ],
    ids=["rocm", "zluda"],
)
def test_an_amd_gpu_that_torch_calls_cuda_is_refused(torch_version, name, described):
    behaviour = Behaviour(pytorch_version=torch_version, device_name=name)

    assert refusal(behaviour) == (
        f"ComfyUI runs on an AMD GPU ({described}), but klein-bench benchmarks NVIDIA GPUs "
        "only: run ComfyUI on an NVIDIA GPU with a CUDA build of PyTorch."
    )


def test_a_build_whose_clip_loader_predates_flux2_is_told_to_update():
    assert refusal(Behaviour(clip_type_flux2=False)) == (
        "This ComfyUI build cannot run FLUX.2 [klein] (CLIPLoader does not offer type "
        f"'flux2'): update it with {UPDATE}, then restart it."
    )


def test_a_missing_model_file_is_named_with_its_folder():
    files = {
        "diffusion_models": [],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": ["flux2-vae.safetensors"],
    }

    assert refusal(Behaviour(files=files)) == (
        "ComfyUI cannot find the FLUX.2 [klein] 4B file it needs: put "
        "flux-2-klein-4b-fp8.safetensors in ComfyUI/models/diffusion_models/ (from "
        "https://huggingface.co/Comfy-Org/flux2-klein), then run klein-bench again."
    )


def test_every_missing_model_file_is_named():
    files = {"diffusion_models": ["sdxl.safetensors"], "text_encoders": [], "vae": []}

    assert refusal(Behaviour(files=files)) == (
        "ComfyUI cannot find the FLUX.2 [klein] 4B files it needs: put "
        "flux-2-klein-4b-fp8.safetensors in ComfyUI/models/diffusion_models/, "
        "qwen_3_4b.safetensors in ComfyUI/models/text_encoders/ and flux2-vae.safetensors in "
        "ComfyUI/models/vae/ (from https://huggingface.co/Comfy-Org/flux2-klein), then run "
        "klein-bench again."
    )


def test_a_ready_server_passes_with_its_files_and_flags():
    behaviour = Behaviour(
        files={
            "diffusion_models": [BF16_FILE],
            "text_encoders": ["qwen_3_4b.safetensors"],
            "vae": ["flux2-vae.safetensors"],
        },
        argv=["main.py", "--lowvram", "--use-sage-attention"],
    )
    with ComfyUIServer(behaviour) as server, ComfyUIClient(server.url) as client:
        ready = preflight(client, KLEIN_4B)

    assert (ready.files.diffusion_model, ready.files.weights) == (BF16_FILE, "bf16")
    assert (ready.version, ready.flags) == ("0.27.0", ["--lowvram", "--use-sage-attention"])
    assert (ready.launch_offload, ready.attention) == (True, "sage")


def test_the_bf16_file_is_asked_for_by_name_when_chosen():
    files = {
        "diffusion_models": ["flux-2-klein-4b-fp8.safetensors"],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": ["flux2-vae.safetensors"],
    }

    assert refusal(Behaviour(files=files), weights="bf16") == (
        "ComfyUI cannot find the FLUX.2 [klein] 4B file it needs: put "
        "flux-2-klein-4b.safetensors in ComfyUI/models/diffusion_models/ (from "
        "https://huggingface.co/Comfy-Org/flux2-klein), then run klein-bench again."
    )


def test_only_flags_that_change_speed_or_memory_are_kept_and_no_paths():
    argv = [
        "/home/someone/ComfyUI/main.py",
        "--listen",
        "0.0.0.0",
        "--port",
        "8189",
        "--lowvram",
        "--reserve-vram",
        "1.5",
        "--fast",
        "fp16_accumulation",
        "cublas_ops",
        "--output-directory",
        "/data/someone/out",
        "--use-sage-attention",
        "--cache-lru=16",
    ]

    assert launch_flags(argv) == [
        "--lowvram",
        "--reserve-vram=1.5",
        "--fast=fp16_accumulation,cublas_ops",
        "--use-sage-attention",
        "--cache-lru=16",
    ]
