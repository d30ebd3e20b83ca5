"""What the ComfyUI runtime checks before it measures anything.

Each check is a function that returns one sentence with the fix, or None: `preflight`
stops at the first problem (nothing has been queued on the server yet), `klein-bench
doctor` lists them all. The checks: the server answers as ComfyUI does, its version
knows FLUX.2 [klein] (0.9.2 or newer), it runs on an NVIDIA GPU (a CPU only for the tiny
test model), it is idle, it has the nodes the graph uses, and it lists the three files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from klein_bench.backends.comfyui import workflow
from klein_bench.backends.comfyui.client import (
    ComfyUIClient,
    ComfyUIHTTPError,
    ComfyUIUnreachable,
)
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError

UPDATE_COMFYUI = "`git pull && pip install -r requirements.txt` in your ComfyUI folder"
# ComfyUI learned FLUX.2 [klein] in 0.9.2 ("Flux2 Klein support"): older FLUX.2 builds
# load qwen_3_4b as another model's text encoder and fail in the sampler.
MIN_VERSION = Version("0.9.2")
# Names torch gives AMD GPUs, under ROCm and under ZLUDA's CUDA imitation alike.
_AMD_NAME = re.compile(r"\b(AMD|Radeon|Instinct)\b|ZLUDA", re.IGNORECASE)

# Launch flags that change speed or memory. Anything else on ComfyUI's command line
# (addresses, ports, folders) stays private.
FLAGS = frozenset(
    [
        "--gpu-only",
        "--highvram",
        "--normalvram",
        "--lowvram",
        "--novram",
        "--cpu",
        "--disable-smart-memory",
        "--disable-dynamic-vram",
        "--enable-dynamic-vram",
        "--force-fp32",
        "--force-fp16",
        "--fp32-unet",
        "--fp64-unet",
        "--bf16-unet",
        "--fp16-unet",
        "--fp8_e4m3fn-unet",
        "--fp8_e5m2-unet",
        "--fp8_e8m0fnu-unet",
        "--fp16-vae",
        "--fp32-vae",
        "--bf16-vae",
        "--cpu-vae",
        "--fp8_e4m3fn-text-enc",
        "--fp8_e5m2-text-enc",
        "--fp16-text-enc",
        "--fp32-text-enc",
        "--bf16-text-enc",
        "--force-channels-last",
        "--supports-fp8-compute",
        "--use-split-cross-attention",
        "--use-quad-cross-attention",
        "--use-pytorch-cross-attention",
        "--use-sage-attention",
        "--use-flash-attention",
        "--disable-xformers",
        "--force-upcast-attention",
        "--dont-upcast-attention",
        "--cuda-malloc",
        "--disable-cuda-malloc",
        "--cache-classic",
        "--cache-none",
        "--deterministic",
        "--force-non-blocking",
        "--disable-pinned-memory",
        "--disable-mmap",
        "--mmap-torch-files",
        "--disable-async-offload",
        "--fast-disk",
    ]
)
# Flags followed by a value worth keeping (a number or a mode, never a path).
VALUE_FLAGS = frozenset(
    [
        "--reserve-vram",
        "--vram-headroom",
        "--cache-lru",
        "--cache-ram",
        "--fast",
        "--async-offload",
        "--cuda-device",
        "--preview-method",
    ]
)
ATTENTION_FLAGS = {
    "--use-sage-attention": "sage",
    "--use-flash-attention": "flash",
    "--use-pytorch-cross-attention": "sdpa",
    "--use-split-cross-attention": "split",
    "--use-quad-cross-attention": "quad",
}
OFFLOAD_FLAGS = ("--lowvram", "--novram")


@dataclass
class Server:
    """What preflight learned about the ComfyUI server."""

    url: str
    stats: dict[str, Any]
    object_info: dict[str, Any]
    flags: list[str]
    device: dict[str, Any]
    files: workflow.ModelFiles | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def system(self) -> dict[str, Any]:
        system = self.stats.get("system")
        return system if isinstance(system, dict) else {}

    @property
    def version(self) -> str | None:
        version = self.system.get("comfyui_version")
        return str(version)[:64] if version else None

    @property
    def on_cpu(self) -> bool:
        return "--cpu" in self.flags or self.device.get("type") == "cpu"

    @property
    def launch_offload(self) -> bool:
        # --lowvram/--novram keep only parts of a model on the GPU at a time.
        return any(flag in self.flags for flag in OFFLOAD_FLAGS)

    @property
    def attention(self) -> str | None:
        for flag in self.flags:
            if flag in ATTENTION_FLAGS:
                return ATTENTION_FLAGS[flag]
        return None

    @property
    def fp8_matmul_requested(self) -> bool:
        """Whether ComfyUI was told to run FP8 weights through FP8 matmuls (`--fast` bare
        or with fp8_matrix_mult); it does so only on GPUs that support FP8 compute."""
        for flag in self.flags:
            if flag == "--fast" or (
                flag.startswith("--fast=") and "fp8_matrix_mult" in flag.split("=", 1)[1]
            ):
                return True
        return False


def unreachable(url: str) -> KleinBenchError:
    return KleinBenchError(
        f"ComfyUI is not answering at {url}: start it (`python main.py` in your ComfyUI "
        "folder) or pass its address with --comfyui-url."
    )


def connect(client: ComfyUIClient) -> Server:
    """Read `/system_stats` and `/object_info`; KleinBenchError unless ComfyUI answers."""
    url = client.url
    try:
        stats = client.system_stats()
        object_info = client.object_info()
    except ComfyUIUnreachable as exc:
        raise unreachable(url) from exc
    except ComfyUIHTTPError as exc:
        raise KleinBenchError(
            f"{url} answered, but not as ComfyUI does ({exc.path} gave HTTP {exc.status}): "
            "check that --comfyui-url points at ComfyUI."
        ) from exc
    if not isinstance(stats, dict) or not isinstance(object_info, dict):
        raise KleinBenchError(
            f"{url} answered, but not as ComfyUI does: check that --comfyui-url points at ComfyUI."
        )
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    devices = stats.get("devices") or []
    device = devices[0] if isinstance(devices, list) and devices else {}
    return Server(
        url=url,
        stats=stats,
        object_info=object_info,
        flags=launch_flags(system.get("argv") or []),
        device=device if isinstance(device, dict) else {},
    )


def launch_flags(argv: list[Any]) -> list[str]:
    """The speed- and memory-relevant flags from ComfyUI's command line, values inline."""
    flags: list[str] = []
    tokens = [str(token) for token in argv[1:]]
    index = 0
    while index < len(tokens):
        name, has_value, value = tokens[index].partition("=")
        index += 1
        if name in FLAGS:
            flags.append(name)
        elif name in VALUE_FLAGS:
            values = [value] if has_value else []
            while not has_value and index < len(tokens) and not tokens[index].startswith("--"):
                values.append(tokens[index])
                index += 1
            flags.append(f"{name}={','.join(values)}"[:64] if values else name)
    return flags[:32]


# --- the checks: each a sentence with the fix, or None -----------------------------------


def version_problem(server: Server) -> str | None:
    """ComfyUI before 0.9.2 cannot run Klein, though 0.9.0 and 0.9.1 have FLUX.2's nodes."""
    version = server.version
    if version is None:
        return None  # Old builds do not say; the node check below catches them.
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    if parsed < MIN_VERSION:
        return (
            f"This ComfyUI is version {version}, but FLUX.2 [klein] needs {MIN_VERSION} or "
            f"newer: update it with {UPDATE_COMFYUI}, then restart it."
        )
    return None


def device_problem(server: Server, *, allow_cpu: bool) -> str | None:
    """Only NVIDIA GPUs are benchmarked; the tiny test model may run on a CPU ComfyUI."""
    device_type = server.device.get("type")
    name = str(server.device.get("name") or "")
    torch_version = str(server.system.get("pytorch_version") or "")
    if server.on_cpu:
        if allow_cpu:
            return None
        return (
            "ComfyUI runs on the CPU (started with --cpu, or it found no CUDA GPU): restart "
            "it on your NVIDIA GPU without --cpu (only the tiny test models, such as --model "
            f"{MODELS[DEFAULT_MODEL].tiny}, run on a CPU ComfyUI)."
        )
    # ROCm builds of torch report AMD GPUs as device type "cuda".
    if "rocm" in torch_version.lower() or _AMD_NAME.search(name):
        described = ", ".join(p for p in (device_name(name), f"PyTorch {torch_version}") if p)
        return (
            f"ComfyUI runs on an AMD GPU ({described}), but klein-bench benchmarks NVIDIA GPUs "
            "only: run ComfyUI on an NVIDIA GPU with a CUDA build of PyTorch."
        )
    if device_type != "cuda":
        return (
            f"ComfyUI runs on a device that is not an NVIDIA GPU ({device_type or 'unknown'}), "
            "but klein-bench benchmarks NVIDIA GPUs: run ComfyUI with a CUDA build of PyTorch "
            "on an NVIDIA GPU."
        )
    return None


def busy_problem(queue_state: Any) -> str | None:
    if not isinstance(queue_state, dict):
        return None
    busy = len(queue_state.get("queue_running") or []) + len(queue_state.get("queue_pending") or [])
    if busy:
        return (
            f"ComfyUI is busy with {busy} queued prompt{'s' if busy != 1 else ''}: wait for "
            f"{'them' if busy != 1 else 'it'} to finish (or clear its queue), then run "
            "klein-bench again."
        )
    return None


def node_problem(server: Server, spec: ModelSpec) -> str | None:
    """The nodes and fixed choices the model's graph needs (its files are checked apart)."""
    probe_files = workflow.ModelFiles("probe", "probe", "probe", "fp8")
    probe = workflow.build_workflow(probe_files, spec.protocol, prompt="", seed=0)
    missing_nodes = workflow.missing_node_types(probe, server.object_info)
    if missing_nodes:
        return (
            f"This ComfyUI build has no {', '.join(missing_nodes)} node"
            f"{'s' if len(missing_nodes) > 1 else ''} (FLUX.2 [klein] needs ComfyUI "
            f"{MIN_VERSION} or newer): update it with {UPDATE_COMFYUI}, then restart it."
        )
    problems = workflow.incompatibilities(probe, server.object_info)
    if problems:
        return (
            f"This ComfyUI build cannot run FLUX.2 [klein] ({'; '.join(problems)}): update it "
            f"with {UPDATE_COMFYUI}, then restart it."
        )
    return None


def listings(object_info: dict[str, Any]) -> dict[str, list[str]]:
    """The files ComfyUI offers its three loaders: the lists `POST /prompt` checks."""
    return {folder: workflow.file_listing(object_info, folder) for folder in workflow.FILE_INPUTS}


def files_problem(
    server: Server, spec: ModelSpec, choice: str = "auto"
) -> tuple[workflow.ModelFiles | None, str | None]:
    assert spec.comfyui is not None, f"{spec.slug} has no ComfyUI files"
    files, missing = workflow.resolve_files(listings(server.object_info), spec.comfyui, choice)
    if files is not None:
        return files, None
    places = [
        f"{path.split('/', 1)[1]} in ComfyUI/models/{path.split('/', 1)[0]}/" for path in missing
    ]
    listing = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
    source = f" (from {spec.comfyui.downloads})" if spec.comfyui.downloads else ""
    return None, (
        f"ComfyUI cannot find the {spec.name} file{'s' if len(missing) > 1 else ''} "
        f"it needs: put {listing}{source}, then run klein-bench again."
    )


def preflight(client: ComfyUIClient, spec: ModelSpec, *, choice: str = "auto") -> Server:
    """Check everything the model's benchmark needs from the server; KleinBenchError if not.

    For a tiny test model the three files are written later, so they are not looked
    for here.
    """
    tiny = spec.built_in
    server = connect(client)
    problem = version_problem(server) or device_problem(server, allow_cpu=tiny)
    if problem is None:
        try:
            problem = busy_problem(client.queue())
        except ComfyUIUnreachable as exc:
            raise unreachable(client.url) from exc
        except ComfyUIHTTPError:
            problem = None
    problem = problem or node_problem(server, spec)
    if problem is None and not tiny:
        server.files, problem = files_problem(server, spec, choice)
    if problem is not None:
        raise KleinBenchError(problem)
    return server


def device_name(comfy_name: str) -> str:
    """'cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync' -> 'NVIDIA GeForce RTX 4090'."""
    name = re.sub(r"^cuda:\d+\s+", "", comfy_name)
    return name.rsplit(" : ", 1)[0].strip()
