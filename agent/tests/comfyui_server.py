"""A stand-in ComfyUI server for the tests: ComfyUI's HTTP API and `/ws`, no GPU.

It follows what ComfyUI's server.py and execution.py do, so the agent's ComfyUI runtime
meets the same answers in CI as against a real server:

- `GET /object_info` describes the nodes the Klein workflow uses exactly as ComfyUI
  defines them (nodes.py, comfy_extras/nodes_flux.py, comfy_extras/nodes_custom_sampler.py;
  docs/comfyui.md has the sources), in both combo forms ComfyUI sends.
- `POST /prompt` validates the graph the way execution.validate_prompt does (unknown
  node types, missing required inputs, bad links, type mismatches, values out of range
  or not in a list) and answers `{"error", "node_errors"}` with HTTP 400, or
  `{"prompt_id", "number", "node_errors"}`.
- A worker thread executes queued prompts one at a time: it skips nodes whose inputs
  are unchanged since the previous prompt (ComfyUI's classic cache), sleeps a little per
  node, streams `executing`/`progress`/`executed`/`execution_*` messages to the client's
  WebSocket, and records `/history/<id>` with the status messages and their ms
  timestamps.
- `Behaviour` makes it fail in each way the agent must handle: nodes or model files
  missing, an old CLIPLoader, a busy queue, a CPU-only launch, out of memory or another
  exception at a node, an interrupted prompt, skewed timestamps, and the server going
  away in the middle of a run.

Use it as a context manager: `with ComfyUIServer(Behaviour(...)) as server: server.url`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import queue
import select
import socket
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_RESOLUTION = 16384
FP8_FILE = "flux-2-klein-4b-fp8.safetensors"
BF16_FILE = "flux-2-klein-4b.safetensors"
TEXT_ENCODER_FILE = "qwen_3_4b.safetensors"
VAE_FILE = "flux2-vae.safetensors"

# CLIPLoader's `type` choices in current ComfyUI (nodes.py); builds from before FLUX.2
# support stop at "hunyuan_image".
CLIP_TYPES = [
    "stable_diffusion",
    "stable_cascade",
    "sd3",
    "stable_audio",
    "mochi",
    "ltxv",
    "pixart",
    "cosmos",
    "lumina2",
    "wan",
    "hidream",
    "chroma",
    "ace",
    "omnigen2",
    "qwen_image",
    "hunyuan_image",
    "flux2",
    "ovis",
    "longcat_image",
    "cogvideox",
    "lens",
    "pixeldit",
    "ideogram4",
]
OLD_CLIP_TYPES = CLIP_TYPES[: CLIP_TYPES.index("flux2")]
SAMPLER_NAMES = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "res_multistep",
    "gradient_estimation",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
]
KLEIN_NODE_TYPES = ("EmptyFlux2LatentImage", "Flux2Scheduler")


def _info(
    name: str,
    required: dict[str, Any],
    outputs: list[str],
    *,
    category: str,
    module: str = "nodes",
    optional: dict[str, Any] | None = None,
    hidden: dict[str, Any] | None = None,
    output_names: list[str] | None = None,
    output_node: bool = False,
    display_name: str | None = None,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    if optional:
        inputs["optional"] = optional
    if hidden:
        inputs["hidden"] = hidden
    return {
        "input": inputs,
        "input_order": {section: list(values) for section, values in inputs.items()},
        "output": outputs,
        "output_is_list": [False] * len(outputs),
        "output_name": output_names or outputs,
        "name": name,
        "display_name": display_name or name,
        "description": "",
        "python_module": module,
        "category": category,
        "output_node": output_node,
    }


def object_info(behaviour: Behaviour) -> dict[str, Any]:
    """ComfyUI's definitions of the nodes the Klein workflow uses (plus one it does not)."""
    files = behaviour.files
    clip_types = CLIP_TYPES if behaviour.clip_type_flux2 else OLD_CLIP_TYPES
    int_opts = {"default": 1024, "min": 16, "max": MAX_RESOLUTION}
    nodes = {
        # nodes.py: classic node definitions, combos as `[[choices], {...}]`.
        "UNETLoader": _info(
            "UNETLoader",
            {
                "unet_name": [list(files.get("diffusion_models", []))],
                "weight_dtype": [
                    ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],
                    {"advanced": True},
                ],
            },
            ["MODEL"],
            category="advanced/loaders",
            display_name="Load Diffusion Model",
        ),
        "CLIPLoader": _info(
            "CLIPLoader",
            {"clip_name": [list(files.get("text_encoders", []))], "type": [clip_types]},
            ["CLIP"],
            optional={"device": [["default", "cpu"], {"advanced": True}]},
            category="advanced/loaders",
            display_name="Load CLIP",
        ),
        "VAELoader": _info(
            "VAELoader",
            {"vae_name": [[*files.get("vae", []), "pixel_space"]]},
            ["VAE"],
            category="loaders",
            display_name="Load VAE",
        ),
        "CLIPTextEncode": _info(
            "CLIPTextEncode",
            {
                "text": ["STRING", {"multiline": True, "dynamicPrompts": True}],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            },
            ["CONDITIONING"],
            category="conditioning",
            display_name="CLIP Text Encode (Prompt)",
        ),
        "ConditioningZeroOut": _info(
            "ConditioningZeroOut",
            {"conditioning": ["CONDITIONING"]},
            ["CONDITIONING"],
            category="advanced/conditioning",
        ),
        "VAEDecode": _info(
            "VAEDecode",
            {"samples": ["LATENT"], "vae": ["VAE"]},
            ["IMAGE"],
            category="latent",
            display_name="VAE Decode",
        ),
        "PreviewImage": _info(
            "PreviewImage",
            {"images": ["IMAGE"]},
            [],
            hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            category="image",
            output_node=True,
            display_name="Preview Image",
        ),
        "KSampler": _info(
            "KSampler",
            {
                "model": ["MODEL"],
                "seed": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
                "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}],
                "sampler_name": [SAMPLER_NAMES],
                "scheduler": [["simple", "normal", "karras", "exponential", "beta"]],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
            },
            ["LATENT"],
            category="sampling",
        ),
        # comfy_extras/nodes_custom_sampler.py: newer node API, combos as
        # `["COMBO", {"options": [...]}]`.
        "CFGGuider": _info(
            "CFGGuider",
            {
                "model": ["MODEL", {}],
                "positive": ["CONDITIONING", {}],
                "negative": ["CONDITIONING", {}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1}],
            },
            ["GUIDER"],
            category="sampling/custom_sampling/guiders",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "RandomNoise": _info(
            "RandomNoise",
            {
                "noise_seed": [
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "control_after_generate": True,
                    },
                ]
            },
            ["NOISE"],
            category="sampling/custom_sampling/noise",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "KSamplerSelect": _info(
            "KSamplerSelect",
            {"sampler_name": ["COMBO", {"options": SAMPLER_NAMES}]},
            ["SAMPLER"],
            category="sampling/custom_sampling/samplers",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "SamplerCustomAdvanced": _info(
            "SamplerCustomAdvanced",
            {
                "noise": ["NOISE", {}],
                "guider": ["GUIDER", {}],
                "sampler": ["SAMPLER", {}],
                "sigmas": ["SIGMAS", {}],
                "latent_image": ["LATENT", {}],
            },
            ["LATENT", "LATENT"],
            output_names=["output", "denoised_output"],
            category="sampling/custom_sampling",
            module="comfy_extras.nodes_custom_sampler",
        ),
        # comfy_extras/nodes_flux.py: the FLUX.2 nodes.
        "EmptyFlux2LatentImage": _info(
            "EmptyFlux2LatentImage",
            {
                "width": ["INT", {**int_opts, "step": 16}],
                "height": ["INT", {**int_opts, "step": 16}],
                "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            },
            ["LATENT"],
            category="latent",
            module="comfy_extras.nodes_flux",
            display_name="Empty Flux 2 Latent",
        ),
        "Flux2Scheduler": _info(
            "Flux2Scheduler",
            {
                "steps": ["INT", {"default": 20, "min": 1, "max": 4096}],
                "width": ["INT", {**int_opts, "step": 1}],
                "height": ["INT", {**int_opts, "step": 1}],
            },
            ["SIGMAS"],
            category="sampling/custom_sampling/schedulers",
            module="comfy_extras.nodes_flux",
        ),
    }
    for name in behaviour.missing_nodes:
        nodes.pop(name, None)
    return nodes


@dataclass
class Behaviour:
    """How the stand-in server behaves; the defaults are a healthy ComfyUI with Klein."""

    files: dict[str, list[str]] = field(
        default_factory=lambda: {
            "diffusion_models": [FP8_FILE],
            "text_encoders": [TEXT_ENCODER_FILE],
            "vae": [VAE_FILE],
        }
    )
    missing_nodes: tuple[str, ...] = ()
    clip_type_flux2: bool = True
    version: str = "0.8.2"
    argv: list[str] = field(default_factory=lambda: ["main.py", "--listen", "127.0.0.1"])
    device_type: str = "cuda"
    device_name: str = "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync"
    vram_total: int = 25_757_220_864
    pytorch_version: str = "2.9.1+cu128"
    python_version: str = "3.12.3 (main, Apr 10 2024, 05:33:47) [GCC 13.2.0]"
    busy: bool = False
    # Seconds each node takes; the sampler's time is spread over its steps.
    node_seconds: dict[str, float] = field(
        default_factory=lambda: {
            "UNETLoader": 0.02,
            "CLIPLoader": 0.02,
            "VAELoader": 0.01,
            "CLIPTextEncode": 0.01,
            "SamplerCustomAdvanced": 0.04,
            "VAEDecode": 0.01,
        }
    )
    # Failures: (node type, execution number counting from 0 with the warm-up).
    oom_at: tuple[str, int] | None = None
    error_at: tuple[str, int] | None = None
    interrupt_at: tuple[str, int] | None = None
    disconnect_at: tuple[str, int] | None = None
    # Added to execution_success's timestamp, to make ComfyUI's clock disagree.
    success_skew_ms: int = 0
    # "classic" keeps only the previous prompt's outputs; "lru" keeps them all.
    cache: str = "classic"
    websocket: bool = True
    # Builds from before status messages carried a timestamp.
    timestamps: bool = True


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _png(width: int, height: int, seed: int) -> bytes:
    """A small RGB PNG whose pattern depends on the seed."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(
                [(x * 4 + seed * 37) % 256, (y * 4 + seed * 91) % 256, ((x ^ y) * 8 + seed) % 256]
            )
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body))

    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


class _Disconnect(Exception):
    pass


class ComfyUIServer:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.history: dict[str, dict[str, Any]] = {}
        self.prompts: list[dict[str, Any]] = []
        self.free_calls: list[dict[str, Any]] = []
        self.interrupts = 0
        self.executions = 0
        self._images: dict[str, bytes] = {}
        self._queue: queue.Queue[tuple[str, dict[str, Any], str | None] | None] = queue.Queue()
        self._sockets: dict[str, queue.Queue[dict[str, Any] | None]] = {}
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._number = 0
        self._gone = threading.Event()
        server = self

        class Handler(_Handler):
            comfy = server

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._http.serve_forever, daemon=True),
            threading.Thread(target=self._work, daemon=True),
        ]

    def __enter__(self) -> ComfyUIServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_away()
        self._queue.put(None)

    def go_away(self) -> None:
        """Stop answering, as a crashed ComfyUI does: close the port and every WebSocket."""
        if self._gone.is_set():
            return
        self._gone.set()
        threading.Thread(target=self._http.shutdown, daemon=True).start()
        self._http.server_close()
        for outbox in list(self._sockets.values()):
            outbox.put(None)

    # -- the API -------------------------------------------------------------------

    def system_stats(self) -> dict[str, Any]:
        b = self.behaviour
        device = {
            "name": b.device_name if b.device_type == "cuda" else "cpu",
            "type": b.device_type,
            "index": 0 if b.device_type == "cuda" else None,
            "vram_total": b.vram_total,
            "vram_free": b.vram_total - 1_200_000_000,
            "torch_vram_total": 900_000_000,
            "torch_vram_free": 100_000_000,
        }
        return {
            "system": {
                "os": "linux",
                "ram_total": 68_719_476_736,
                "ram_free": 50_000_000_000,
                "comfyui_version": b.version,
                "required_frontend_version": "1.30.6",
                "python_version": b.python_version,
                "pytorch_version": b.pytorch_version,
                "embedded_python": False,
                "argv": list(b.argv),
            },
            "devices": [device],
        }

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        graph = body.get("prompt")
        if not isinstance(graph, dict):
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return 400, {"error": error, "node_errors": {}}
        error, node_errors = validate_prompt(graph, object_info(self.behaviour))
        if error is not None:
            return 400, {"error": error, "node_errors": node_errors}
        prompt_id = str(uuid.uuid4())
        with self._lock:
            number = self._number
            self._number += 1
        self.prompts.append(copy.deepcopy(graph))
        self._queue.put((prompt_id, copy.deepcopy(graph), body.get("client_id")))
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    def queue_info(self) -> dict[str, Any]:
        running = (
            [[0, "c0ffee00-0000-4000-8000-000000000000", {}, {}, []]] if self.behaviour.busy else []
        )
        return {"queue_running": running, "queue_pending": []}

    def free(self, body: dict[str, Any]) -> None:
        self.free_calls.append(body)
        if body.get("free_memory"):
            self._cache = set()

    # -- execution -----------------------------------------------------------------

    def _send(self, client_id: str | None, kind: str, data: dict[str, Any]) -> None:
        outbox = self._sockets.get(client_id or "")
        if outbox is not None:
            outbox.put({"type": kind, "data": data})

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._gone.is_set():
                return
            try:
                self._execute(*item)
            except _Disconnect:
                self.go_away()
                return

    def _execute(self, prompt_id: str, graph: dict[str, Any], client_id: str | None) -> None:
        number = self.executions
        self.executions += 1
        messages: list[list[Any]] = []

        def add(event: str, data: dict[str, Any], timestamp: int | None = None) -> None:
            if self.behaviour.timestamps:
                data = {**data, "timestamp": timestamp or int(time.time() * 1000)}
            messages.append([event, data])
            self._send(client_id, event, data)

        add("execution_start", {"prompt_id": prompt_id})
        signatures = _signatures(graph)
        cached = sorted(n for n in graph if signatures[n] in self._cache)
        add("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        status = "success"
        for node_id in _topological(graph):
            if node_id in cached:
                continue
            node = graph[node_id]
            class_type = node["class_type"]
            self._send(
                client_id,
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
            )
            failure = self._failure(class_type, number)
            seconds = self.behaviour.node_seconds.get(class_type, 0.001)
            if class_type == "SamplerCustomAdvanced":
                steps = int(graph[node["inputs"]["sigmas"][0]]["inputs"].get("steps", 1))
                for step in range(1, steps + 1):
                    time.sleep(seconds / steps)
                    self._send(
                        client_id,
                        "progress",
                        {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                    )
            else:
                time.sleep(seconds)
            if failure == "disconnect":
                raise _Disconnect
            if failure in ("oom", "error"):
                if failure == "oom":
                    kind = "torch.OutOfMemoryError"
                    text = (
                        "Allocation on device \nThis error means you ran out of memory on "
                        "your GPU.\n\nTIPS: If the workflow worked before you might have "
                        "accidentally set the batch_size to a large number."
                    )
                else:
                    kind = "RuntimeError"
                    text = "mat1 and mat2 shapes cannot be multiplied (512x7680 and 2560x3072)\n"
                add(
                    "execution_error",
                    {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": class_type,
                        "executed": executed,
                        "exception_message": text,
                        "exception_type": kind,
                        "traceback": ['  File "execution.py", line 1, in execute\n'],
                        "current_inputs": {},
                        "current_outputs": executed,
                    },
                )
                status = "error"
                break
            if failure == "interrupt":
                add(
                    "execution_interrupted",
                    {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": class_type,
                        "executed": executed,
                    },
                )
                status = "error"
                break
            executed.append(node_id)
            if class_type == "PreviewImage":
                seed = _seed_of(graph)
                name = f"ComfyUI_temp_{uuid.uuid4().hex[:5]}_{number:05}_.png"
                self._images[name] = _png(64, 64, seed)
                ui = {"images": [{"filename": name, "subfolder": "", "type": "temp"}]}
                outputs[node_id] = ui
                self._send(
                    client_id,
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": ui,
                        "prompt_id": prompt_id,
                    },
                )
        if status == "success":
            add(
                "execution_success",
                {"prompt_id": prompt_id},
                int(time.time() * 1000) + self.behaviour.success_skew_ms,
            )
        if self.behaviour.cache == "lru":
            self._cache |= set(signatures.values())
        else:
            self._cache = {signatures[n] for n in executed + cached}
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, graph, {"client_id": client_id}, [_output_id(graph)]],
            "outputs": outputs,
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {},
        }
        # As ComfyUI's prompt worker does: history first, then "executing" with no node.
        self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    def _failure(self, class_type: str, number: int) -> str | None:
        b = self.behaviour
        for kind, where in (
            ("oom", b.oom_at),
            ("error", b.error_at),
            ("interrupt", b.interrupt_at),
            ("disconnect", b.disconnect_at),
        ):
            if where == (class_type, number):
                return kind
        return None


def _output_id(graph: dict[str, Any]) -> str:
    return next((n for n, node in graph.items() if node["class_type"] == "PreviewImage"), "")


def _seed_of(graph: dict[str, Any]) -> int:
    for node in graph.values():
        if node["class_type"] == "RandomNoise":
            return int(node["inputs"]["noise_seed"])
    return 0


def _topological(graph: dict[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list):
                visit(value[0])
        order.append(node_id)

    for node_id in graph:
        visit(node_id)
    return order


def _signatures(graph: dict[str, Any]) -> dict[str, str]:
    """An input signature per node, as ComfyUI's cache keys outputs by."""
    memo: dict[str, str] = {}

    def sign(node_id: str) -> str:
        if node_id not in memo:
            node = graph[node_id]
            inputs = {
                name: (sign(value[0]), value[1]) if isinstance(value, list) else value
                for name, value in sorted(node["inputs"].items())
            }
            memo[node_id] = hashlib.sha256(
                json.dumps([node["class_type"], inputs], default=str).encode()
            ).hexdigest()
        return memo[node_id]

    for node_id in graph:
        sign(node_id)
    return memo


def validate_prompt(
    graph: dict[str, Any], info: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """execution.validate_prompt's checks and answer shapes."""
    outputs = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in info:
            title = (
                (node.get("_meta") or {}).get("title", class_type)
                if isinstance(node, dict)
                else None
            )
            return {
                "type": "missing_node_type",
                "message": f"Node '{title}' not found. The custom node may not be installed.",
                "details": f"Node ID '#{node_id}'",
                "extra_info": {"node_id": node_id, "class_type": class_type, "node_title": title},
            }, {}
        if info[class_type]["output_node"]:
            outputs.append(node_id)
    if not outputs:
        return {
            "type": "prompt_no_outputs",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        }, {}
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        reasons = _validate_inputs(graph, node, info)
        if reasons:
            node_errors[node_id] = {
                "errors": reasons,
                "dependent_outputs": outputs,
                "class_type": node["class_type"],
            }
    if node_errors:
        details = "\n".join(
            f"{r['message']}: {r['details']}" for e in node_errors.values() for r in e["errors"]
        )
        return {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }, node_errors
    return None, {}


def _validate_inputs(graph: dict[str, Any], node: dict[str, Any], info: dict[str, Any]) -> list:
    definition = info[node["class_type"]]["input"]
    inputs = node.get("inputs") or {}
    reasons = []
    for section in ("required", "optional"):
        for name, spec in (definition.get(section) or {}).items():
            input_type, options = spec[0], spec[1] if len(spec) > 1 else {}
            if name not in inputs:
                if section == "required":
                    reasons.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2 or value[0] not in graph:
                    reasons.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of "
                            "[node_id, slot_index]",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                    continue
                produced = info[graph[value[0]]["class_type"]]["output"]
                received = produced[value[1]] if value[1] < len(produced) else None
                if received != input_type:
                    reasons.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{name}, received_type({received}) mismatch "
                            f"input_type({input_type})",
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            try:
                if input_type == "INT":
                    value = int(value)
                elif input_type == "FLOAT":
                    value = float(value)
                elif input_type == "STRING":
                    value = str(value)
            except (TypeError, ValueError) as ex:
                reasons.append(
                    {
                        "type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{name}, {value}, {ex}",
                        "extra_info": {"input_name": name},
                    }
                )
                continue
            if "min" in options and value < options["min"]:
                reasons.append(
                    {
                        "type": "value_smaller_than_min",
                        "message": f"Value {value} smaller than min of {options['min']}",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            if "max" in options and value > options["max"]:
                reasons.append(
                    {
                        "type": "value_bigger_than_max",
                        "message": f"Value {value} bigger than max of {options['max']}",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            choices = (
                input_type
                if isinstance(input_type, list)
                else (options.get("options") if input_type == "COMBO" else None)
            )
            if choices is not None and value not in choices:
                reasons.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{name}: {value!r} not in {choices}",
                        "extra_info": {"input_name": name, "received_value": value},
                    }
                )
    return reasons


class _Handler(BaseHTTPRequestHandler):
    comfy: ComfyUIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def do_GET(self) -> None:
        comfy = self.comfy
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/ws":
            self._websocket(query.get("clientId", [""])[0])
        elif path == "/system_stats":
            self._json(200, comfy.system_stats())
        elif path == "/object_info":
            self._json(200, object_info(comfy.behaviour))
        elif path.startswith("/models/"):
            folder = path.removeprefix("/models/")
            known = ("checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip")
            if folder not in known:
                self._empty(404)
            else:
                self._json(200, comfy.behaviour.files.get(folder, []))
        elif path == "/queue":
            self._json(200, comfy.queue_info())
        elif path.startswith("/history/"):
            prompt_id = path.removeprefix("/history/")
            entry = comfy.history.get(prompt_id)
            self._json(200, {prompt_id: entry} if entry else {})
        elif path == "/view":
            image = comfy._images.get(query.get("filename", [""])[0])
            if image is None or query.get("type", ["output"])[0] != "temp":
                self._empty(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)
        else:
            self._empty(404)

    def do_POST(self) -> None:
        if self.path == "/prompt":
            self._json(*self.comfy.submit(self._body()))
        elif self.path == "/free":
            self.comfy.free(self._body())
            self._empty(200)
        elif self.path == "/interrupt":
            self._body()
            self.comfy.interrupts += 1
            self._empty(200)
        else:
            self._empty(404)

    def _websocket(self, client_id: str) -> None:
        comfy = self.comfy
        key = self.headers.get("Sec-WebSocket-Key")
        if (
            not comfy.behaviour.websocket
            or self.headers.get("Upgrade", "").lower() != "websocket"
            or not key
        ):
            self._empty(400)
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        self.wfile.flush()
        client_id = client_id or uuid.uuid4().hex
        outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        comfy._sockets[client_id] = outbox
        outbox.put(
            {
                "type": "status",
                "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id},
            }
        )
        sock: socket.socket = self.connection
        try:
            while True:
                try:
                    message = outbox.get(timeout=0.02)
                except queue.Empty:
                    message = {}
                if message is None:
                    break
                if message:
                    self._frame(0x1, json.dumps(message).encode())
                # The client only ever sends a close frame (or hangs up).
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    data = sock.recv(4096)
                    if not data or data[0] & 0x0F == 0x8:
                        break
        except OSError:
            pass
        finally:
            comfy._sockets.pop(client_id, None)
            self.close_connection = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([len(payload)])
        elif len(payload) < 65536:
            header += bytes([126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([127]) + struct.pack("!Q", len(payload))
        self.wfile.write(header + payload)
        self.wfile.flush()
