"""`klein-bench doctor`'s look at ComfyUI: the server, its version, its device, its
launch flags and the three files, as findings (the same checks preflight stops at, all
listed at once)."""

from __future__ import annotations

from klein_bench.backends.comfyui.client import ComfyUIClient, ComfyUIError
from klein_bench.backends.comfyui.preflight import (
    Server,
    busy_problem,
    connect,
    device_name,
    device_problem,
    files_problem,
    node_problem,
    version_problem,
)
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError
from klein_bench.findings import Finding

TOPIC = "ComfyUI"
# A doctor that finds no ComfyUI at the default address should not wait for one.
PROBE_TIMEOUT_S = 2.0


def _problem(sentence: str, level: str = "problem") -> Finding:
    """Our sentences read "what is wrong: how to fix it"; doctor shows the two apart."""
    text, _, fix = sentence.partition(": ")
    return Finding(level, TOPIC, f"{text}.", fix[:1].upper() + fix[1:] if fix else None)


def findings(url: str, *, explicit: bool, model: ModelSpec) -> list[Finding] | None:
    """What is right and wrong with the ComfyUI at `url`; None when `explicit` is False
    and nothing answers there (the user may not use ComfyUI at all)."""
    try:
        client = ComfyUIClient(url, timeout=PROBE_TIMEOUT_S)
    except ValueError as exc:
        return [Finding("problem", TOPIC, f"{exc}.", "Pass --comfyui-url http://HOST:PORT.")]
    with client:
        try:
            server = connect(client)
        except KleinBenchError as exc:
            return [_problem(exc.message)] if explicit else None
        return _server_findings(client, server, model)


def _server_findings(client: ComfyUIClient, server: Server, model: ModelSpec) -> list[Finding]:
    found: list[Finding] = []
    torch_version = server.system.get("pytorch_version") or "unknown"
    found.append(
        Finding(
            "ok",
            TOPIC,
            f"ComfyUI {server.version or '(version unknown)'} answers at {server.url} "
            f"(PyTorch {torch_version}).",
        )
    )
    for problem in (version_problem(server), device_problem(server, allow_cpu=False)):
        if problem:
            found.append(_problem(problem))
    if not device_problem(server, allow_cpu=False):
        name = device_name(str(server.device.get("name") or ""))
        total = server.device.get("vram_total")
        size = f", {total / 2**30:.1f} GiB" if isinstance(total, (int, float)) and total else ""
        found.append(Finding("ok", TOPIC, f"ComfyUI runs on {name}{size}."))
    try:
        busy = busy_problem(client.queue())
    except ComfyUIError:
        busy = None
    if busy:
        found.append(_problem(busy, "warning"))
    nodes = node_problem(server, model)
    if nodes:
        found.append(_problem(nodes))
    found.extend(_flag_findings(server, model))
    if model.comfyui is None or model.built_in:
        # A tiny test model writes its own files when it runs.
        return found + _log_findings(client)
    files, missing = files_problem(server, model)
    if missing:
        found.append(_problem(missing))
    elif files is not None:
        found.append(
            Finding(
                "ok",
                TOPIC,
                f"ComfyUI lists {files.diffusion_model}, {files.text_encoder} and {files.vae}"
                f" (runs the {files.weights.upper()} file unless told --comfyui-model).",
            )
        )
    return found + _log_findings(client)


def _log_findings(client: ComfyUIClient) -> list[Finding]:
    try:
        readable_log = client.log_entries() is not None
    except ComfyUIError:
        readable_log = False
    if readable_log:
        return []
    return [
        Finding(
            "info",
            TOPIC,
            "ComfyUI does not serve its log (GET /internal/logs/raw), so results take "
            "the weight and compute dtypes from the file name and launch flags instead "
            "of what ComfyUI reports.",
        )
    ]


def _flag_findings(server: Server, model: ModelSpec) -> list[Finding]:
    found = []
    shown = ", ".join(server.flags) if server.flags else "none that change speed or memory"
    found.append(Finding("info", TOPIC, f"Launch flags: {shown}."))
    if server.launch_offload:
        found.append(
            Finding(
                "info",
                TOPIC,
                "--lowvram/--novram keep only parts of each model on the GPU; results are "
                "recorded with offload `model`.",
                "For the fully resident figure, start ComfyUI without them.",
            )
        )
    fp8 = (model.comfyui.diffusion_models.get("fp8") if model.comfyui else None) or "an FP8 file"
    if server.fp8_matmul_requested:
        found.append(
            Finding(
                "info",
                TOPIC,
                f"--fast: {fp8} runs FP8 matmuls on GPUs with FP8 tensor cores (compute "
                "capability 8.9 or newer); results say fp8-compute there.",
            )
        )
    else:
        found.append(
            Finding(
                "info",
                TOPIC,
                f"Without --fast fp8_matrix_mult, ComfyUI upcasts a plain FP8 file's weights "
                f"({fp8}) to BF16 for every matmul (fp8-storage); results record what "
                "ComfyUI's log says ran.",
            )
        )
    return found
