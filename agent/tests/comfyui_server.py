"""A stand-in ComfyUI server for the tests: ComfyUI's HTTP API and `/ws`, no GPU.

It answers as ComfyUI 0.27.0 did when the agent was run against it (docs/comfyui.md), so
the ComfyUI runtime meets the same answers in CI as against a real server:

- `GET /object_info` describes the nodes the Klein workflow uses (comfyui_nodes.py), with
  the files of `Behaviour.files` plus any file found in `Behaviour.model_dirs`;
  `GET /internal/folder_paths` names those folders.
- `POST /prompt` validates the graph as execution.validate_prompt does and answers
  `{"error", "node_errors"}` with HTTP 400, or `{"prompt_id", "number", "node_errors"}`.
- A worker thread executes queued prompts one at a time in ComfyUI's order (each node's
  inputs last to first, depth first: VAELoader runs first, UNETLoader after
  ConditioningZeroOut), skips nodes whose inputs are unchanged since the previous prompt
  (ComfyUI's classic cache; cached nodes get no `executing` message), and sends what
  ComfyUI sends: `status`, `execution_start`, `execution_cached`, `executing`,
  `progress` (every step, or throttled as 0.9.2+ does), `executed`, `execution_success`,
  `status`, then `executing` with no node. ComfyUI writes the history entry between
  `execution_success` and the last `executing` from another thread than the one that
  sends them, so `Behaviour.end_delay_s` holds the end messages back after the entry is
  written: the order a client sometimes sees.
- `GET /internal/logs/raw` serves log lines as ComfyUI writes them (`got prompt`, the
  model loads with their dtypes and loading mode, `Prompt executed in X seconds`).
- `Behaviour` makes it fail in each way the agent must handle: nodes or files missing, an
  old version or CLIPLoader, a busy queue, a CPU or AMD device, a damaged model file, out
  of memory or another exception at a node, an interrupted prompt, skewed timestamps,
  and the server going away in the middle of a run.

Use it as a context manager: `with ComfyUIServer(Behaviour(...)) as server: server.url`.
"""

from __future__ import annotations

import copy
import queue
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from comfyui_http import Handler as _Handler
from comfyui_nodes import (
    execution_order,
    object_info,
    output_id,
    png,
    seed_of,
    signatures,
    validate_prompt,
)

FP8_FILE = "flux-2-klein-4b-fp8.safetensors"
BF16_FILE = "flux-2-klein-4b.safetensors"
TEXT_ENCODER_FILE = "qwen_3_4b.safetensors"
VAE_FILE = "flux2-vae.safetensors"
KLEIN_NODE_TYPES = ("EmptyFlux2LatentImage", "Flux2Scheduler")
LOADER_INPUTS = {"UNETLoader": "unet_name", "CLIPLoader": "clip_name", "VAELoader": "vae_name"}
FOLDER_OF_LOADER = {"UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders"}
FOLDER_OF_LOADER["VAELoader"] = "vae"
# ComfyUI's log keeps this many lines (app/logger.py).
LOG_LINES = 300


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
    # Folders whose files ComfyUI lists too (folder name -> path), served by
    # /internal/folder_paths; None: that route answers 404.
    model_dirs: dict[str, Path] | None = None
    missing_nodes: tuple[str, ...] = ()
    clip_type_flux2: bool = True
    version: str = "0.27.0"
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
    # 0.9.2+ throttles progress messages: only every Nth step (and the last) is sent.
    progress_every: int = 1
    # Failures: (node type, execution number counting from 0 with the warm-up).
    oom_at: tuple[str, int] | None = None
    error_at: tuple[str, int] | None = None
    error_message: str = "CUDA error: an illegal memory access was encountered\n"
    interrupt_at: tuple[str, int] | None = None
    disconnect_at: tuple[str, int] | None = None
    # Listed files the loader finds damaged (as an empty or cut-off download is).
    damaged_files: tuple[str, ...] = ()
    # Added to execution_success's timestamp, to make ComfyUI's clock disagree.
    success_skew_ms: int = 0
    # Seconds the end messages (execution_success onwards) reach /ws after /history.
    end_delay_s: float = 0.0
    # "classic" keeps only the previous prompt's outputs; "lru" keeps them all.
    cache: str = "classic"
    websocket: bool = True
    # Builds from before status messages carried a timestamp.
    timestamps: bool = True
    # What the log says the diffusion model's weights and matmuls are, and how ComfyUI
    # loaded the models ("full", "partial" or "dynamic"); None: no log served.
    weight_dtype: str | None = None  # default: from the file (fp8 or bf16)
    manual_cast: str | None = None
    loading: str = "full"
    quantized_native_fp8: bool | None = None  # a comfy_quant file: native FP8 ops or not
    logs: bool = True
    # GET /history answers this HTTP status instead (a ComfyUI failing in its own server).
    history_status: int = 200


class _Disconnect(Exception):
    pass


class _NodeFailed(Exception):
    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind, self.text = kind, text


def _header_problem(path: Path) -> str | None:
    """What safetensors says about a file whose header cannot be read."""
    data = path.read_bytes()[:8]
    if len(data) < 8:
        return "Error while deserializing header: header too small"
    (length,) = struct.unpack("<Q", data)
    if length > path.stat().st_size:
        return "Error while deserializing header: invalid JSON in header"
    return None


class ComfyUIServer:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.history: dict[str, dict[str, Any]] = {}
        self.prompts: list[dict[str, Any]] = []
        self.free_calls: list[dict[str, Any]] = []
        self.interrupt_calls: list[dict[str, Any]] = []
        self.queue_calls: list[dict[str, Any]] = []
        self.executions = 0
        self.log: list[dict[str, str]] = []
        self._images: dict[str, bytes] = {}
        self._queue: queue.Queue[tuple[str, dict[str, Any], str | None] | None] = queue.Queue()
        self._sockets: dict[str, queue.Queue[dict[str, Any] | None]] = {}
        self._cache: set[str] = set()
        self._loaded: set[str] = set()
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
        self._log("Starting server\n")

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

    def listed_files(self) -> dict[str, list[str]]:
        files = {folder: list(names) for folder, names in self.behaviour.files.items()}
        for folder, root in (self.behaviour.model_dirs or {}).items():
            for path in sorted(Path(root).rglob("*.safetensors")):
                files.setdefault(folder, []).append(path.relative_to(root).as_posix())
        return files

    def object_info(self) -> dict[str, Any]:
        b = self.behaviour
        return object_info(
            self.listed_files(), clip_type_flux2=b.clip_type_flux2, missing_nodes=b.missing_nodes
        )

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
                "required_frontend_version": "1.45.20",
                "installed_templates_version": "0.11.1",
                "required_templates_version": "0.11.1",
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
        error, node_errors = validate_prompt(graph, self.object_info())
        if error is not None:
            self._log(f"invalid prompt: {error['message']}\n")
            return 400, {"error": error, "node_errors": node_errors}
        prompt_id = str(uuid.uuid4())
        with self._lock:
            number = self._number
            self._number += 1
        self.prompts.append(copy.deepcopy(graph))
        self._log("got prompt\n")
        self._send(body.get("client_id"), "status", self._status(1))
        self._queue.put((prompt_id, copy.deepcopy(graph), body.get("client_id")))
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    def queue_info(self) -> dict[str, Any]:
        running = (
            [[0, "c0ffee00-0000-4000-8000-000000000000", {}, {}, []]] if self.behaviour.busy else []
        )
        return {"queue_running": running, "queue_pending": []}

    def free(self, body: dict[str, Any]) -> None:
        self.free_calls.append(body)
        if body.get("unload_models"):
            self._loaded = set()
        if body.get("free_memory"):
            self._cache = set()

    def folder_paths(self) -> dict[str, list[str]] | None:
        if self.behaviour.model_dirs is None:
            return None
        return {folder: [str(path)] for folder, path in self.behaviour.model_dirs.items()}

    # -- the log ---------------------------------------------------------------------

    def _log(self, line: str) -> None:
        # ComfyUI colours the level; the agent must read through that.
        self.log.append({"t": datetime.now().isoformat(), "m": f"\x1b[32m[INFO]\x1b[0m {line}"})
        del self.log[:-LOG_LINES]

    def _log_load(self, class_type: str, file: str) -> None:
        b = self.behaviour
        if class_type == "VAELoader":
            self._log("VAE load device: cuda:0, offload device: cpu, dtype: torch.bfloat16\n")
            return
        if class_type == "CLIPLoader":
            self._log(
                "CLIP/text encoder model load device: cuda:0, offload device: cpu, current: "
                "cpu, dtype: torch.float16\n"
            )
            return
        if b.quantized_native_fp8 is not None:
            self._log("Found quantization metadata version 1\n")
            self._log("Using mixed precision operations\n")
            native = ["int8_tensorwise"] + (["float8_e4m3fn"] if b.quantized_native_fp8 else [])
            emulated = "" if b.quantized_native_fp8 else ", emulated ops: float8_e4m3fn, nvfp4"
            self._log(f"Native ops: {', '.join(native)} {emulated}\n")
        fp8 = "fp8" in file
        weight = b.weight_dtype or ("torch.float8_e4m3fn" if fp8 else "torch.bfloat16")
        cast = b.manual_cast or ("torch.bfloat16" if "float8" in weight else "None")
        self._log(f"model weight dtype {weight}, manual cast: {cast}\n")
        self._log("model_type FLUX\n")

    def _log_model_use(self, model: str) -> None:
        """ComfyUI moves a model to the GPU when a node first needs it."""
        if model in self._loaded:
            return
        self._loaded.add(model)
        self._log(f"Requested to load {model}\n")
        if self.behaviour.loading == "dynamic":
            self._log(
                f"Model {model} prepared for dynamic VRAM loading. 7700MB Staged. 0 patches\n"
            )
        elif self.behaviour.loading == "partial" and model == "Flux2":
            self._log(
                "loaded partially; 5890.00 MB usable, 5800.00 MB loaded, 1900.00 MB offloaded, "
                "96.00 MB buffer reserved, lowvram patches: 0\n"
            )
        else:
            self._log("loaded completely;  7700.00 MB loaded, full load: True\n")

    # -- execution -----------------------------------------------------------------

    @staticmethod
    def _status(remaining: int) -> dict[str, Any]:
        return {"status": {"exec_info": {"queue_remaining": remaining}}}

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
        held: list[tuple[str, dict[str, Any]]] = []
        started = time.perf_counter()

        def add(event: str, data: dict[str, Any], timestamp: int | None = None) -> None:
            if self.behaviour.timestamps:
                data = {**data, "timestamp": timestamp or int(time.time() * 1000)}
            messages.append([event, data])
            if event == "execution_success" and self.behaviour.end_delay_s:
                held.append((event, data))
            else:
                self._send(client_id, event, data)

        add("execution_start", {"prompt_id": prompt_id})
        keys = signatures(graph)
        cached = sorted(n for n in graph if keys[n] in self._cache)
        add("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        status = "success"
        for node_id in execution_order(graph):
            if node_id in cached:
                continue
            class_type = graph[node_id]["class_type"]
            self._send(
                client_id,
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
            )
            try:
                self._run_node(prompt_id, graph, node_id, number, client_id)
            except _NodeFailed as failed:
                if failed.kind == "interrupt":
                    add(
                        "execution_interrupted",
                        {
                            "prompt_id": prompt_id,
                            "node_id": node_id,
                            "node_type": class_type,
                            "executed": executed,
                        },
                    )
                else:
                    self._log(f"!!! Exception during processing !!! {failed.text.strip()}\n")
                    add(
                        "execution_error",
                        {
                            "prompt_id": prompt_id,
                            "node_id": node_id,
                            "node_type": class_type,
                            "executed": executed,
                            "exception_message": failed.text,
                            "exception_type": failed.kind,
                            "traceback": ['  File "execution.py", line 1, in execute\n'],
                            "current_inputs": {},
                            "current_outputs": executed,
                        },
                    )
                status = "error"
                break
            executed.append(node_id)
            if class_type == "PreviewImage":
                name = f"ComfyUI_temp_{uuid.uuid4().hex[:5]}_{number:05}_.png"
                self._images[name] = png(64, 64, seed_of(graph))
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
            self._cache |= set(keys.values())
        else:
            self._cache = {keys[n] for n in executed + cached}
        # As ComfyUI's prompt worker does: the entry is written after execution_success
        # was queued for the socket, then the queue status and "executing" with no node.
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, graph, {"client_id": client_id}, [output_id(graph)]],
            "outputs": outputs,
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {},
        }
        self._log(f"Prompt executed in {time.perf_counter() - started:.2f} seconds\n")
        if held:
            time.sleep(self.behaviour.end_delay_s)
            for event, data in held:
                self._send(client_id, event, data)
        self._send(client_id, "status", self._status(0))
        self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    def _run_node(
        self,
        prompt_id: str,
        graph: dict[str, Any],
        node_id: str,
        number: int,
        client_id: str | None,
    ) -> None:
        b = self.behaviour
        node = graph[node_id]
        class_type = node["class_type"]
        failure = self._failure(class_type, number)
        seconds = b.node_seconds.get(class_type, 0.001)
        if class_type in LOADER_INPUTS:
            file = str(node["inputs"][LOADER_INPUTS[class_type]])
            problem = self._file_problem(class_type, file)
            if problem:
                raise _NodeFailed("safetensors_rust.SafetensorError", problem)
            self._log_load(class_type, file)
        elif class_type == "CLIPTextEncode":
            self._log_model_use("SD1ClipModel")
        elif class_type == "SamplerCustomAdvanced":
            self._log_model_use("Flux2")
        elif class_type == "VAEDecode":
            self._log_model_use("AutoencoderKL")
        if class_type == "SamplerCustomAdvanced":
            steps = int(graph[node["inputs"]["sigmas"][0]]["inputs"].get("steps", 1))
            for step in range(1, steps + 1):
                time.sleep(seconds / steps)
                if step % b.progress_every == 0 or step == steps:
                    self._send(
                        client_id,
                        "progress",
                        {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                    )
        else:
            time.sleep(seconds)
        if failure == "disconnect":
            raise _Disconnect
        if failure == "oom":
            raise _NodeFailed(
                "torch.OutOfMemoryError",
                "Allocation on device \nThis error means you ran out of memory on your GPU.\n\n"
                "TIPS: If the workflow worked before you might have accidentally set the "
                "batch_size to a large number.",
            )
        if failure == "error":
            raise _NodeFailed("RuntimeError", b.error_message)
        if failure == "interrupt":
            raise _NodeFailed("interrupt", "")

    def _file_problem(self, class_type: str, file: str) -> str | None:
        if file in self.behaviour.damaged_files:
            return "Error while deserializing header: header too small"
        root = (self.behaviour.model_dirs or {}).get(FOLDER_OF_LOADER[class_type])
        if root is not None and (Path(root) / file).is_file():
            return _header_problem(Path(root) / file)
        return None

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
