"""What ComfyUI really ran, read from its own log lines.

ComfyUI decides the weight and compute dtypes and how much of each model it puts on the
GPU itself, whatever the file is called, and says so in its log, which it serves at
`GET /internal/logs/raw` (the last 300 lines). The agent reads the lines logged during
the benchmark and keeps, per component (`transformer`, `text_encoder`, `vae`):

- `model weight dtype <w>, manual cast: <c>` (the diffusion model): weights stored as
  <w>, matmuls in <c> (or <w> when None);
- `Found quantization metadata` / `Native ops: ..., emulated ops: ...`: a quantized file
  whose FP8 layers run FP8 matmuls only when float8_e4m3fn is among the native ops;
- `CLIP/text encoder model load device: ..., dtype: <d>`, `VAE load device: ..., dtype: <d>`;
- `Requested to load <Model>` followed by `loaded completely ...`, `loaded partially ...
  <m> MB offloaded` or `... prepared for dynamic VRAM loading` (ComfyUI 0.13+ on NVIDIA).

A plain FP8 file runs FP8 matmuls only when ComfyUI was started with `--fast` (or `--fast
fp8_matrix_mult`) on a GPU with FP8 tensor cores (compute capability 8.9 or newer, or
`--supports-fp8-compute`); ComfyUI logs nothing for that choice, so it is taken from the
launch flags and the GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from klein_bench import kernels

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DTYPE = r"(?:torch\.)?([A-Za-z0-9_]+)"
_WEIGHT_DTYPE = re.compile(rf"model weight dtype {_DTYPE}, manual cast: {_DTYPE}")
_TEXT_ENCODER = re.compile(rf"CLIP/text encoder model load device: .*dtype: {_DTYPE}")
_VAE = re.compile(rf"VAE load device: .*dtype: {_DTYPE}")
_NATIVE_OPS = re.compile(r"Native ops: ([^,]*(?:,[^,]*)*?)\s*(?:, emulated ops: (.*))?$")
_REQUESTED = re.compile(r"Requested to load (\w+)")
_PARTIAL = re.compile(r"loaded partially;.*?([\d.]+) MB offloaded")
_COMPLETE = re.compile(r"loaded completely;")
_DYNAMIC = re.compile(r"Model (\w+) prepared for dynamic VRAM loading")
_EXECUTED = re.compile(r"Prompt executed in (?:([\d.]+) seconds|(\d+):(\d+):([\d.]+))")


def component_of(model_class: str) -> str:
    """Which component a model class ComfyUI loads belongs to (e.g. Flux2 -> transformer,
    Flux2TEModel_ or SD1ClipModel -> text_encoder, AutoencoderKL -> vae)."""
    lowered = model_class.lower()
    if "autoencoder" in lowered or "vae" in lowered:
        return "vae"
    if "temodel" in lowered or "clip" in lowered:
        return "text_encoder"
    return "transformer"


def new_entries(before: list[dict[str, str]] | None, after: list[dict[str, str]]) -> list[str]:
    """The lines logged after the `before` snapshot (its last line is found in `after`;
    when it has scrolled out of ComfyUI's 300 lines, every line in `after` is new)."""
    lines = [str(entry.get("m", "")) for entry in after]
    if not before:
        return lines
    last = before[-1]
    for index in range(len(after) - 1, -1, -1):
        if after[index].get("t") == last.get("t") and after[index].get("m") == last.get("m"):
            return lines[index + 1 :]
    return lines


@dataclass
class KernelPath:
    """What ran, per component, as far as ComfyUI's log and launch flags prove it."""

    source: str = kernels.SOURCE_COMFYUI_LOG
    model_file: str | None = None
    weight_dtypes: dict[str, str] = field(default_factory=dict)
    compute_dtypes: dict[str, str] = field(default_factory=dict)
    # Whether FP8 matmul kernels ran for the transformer; None when it cannot be told.
    fp8_matmul: bool | None = False
    loading: dict[str, str] = field(default_factory=dict)
    offloaded_mb: float | None = None
    quantized_file: bool = False

    @property
    def precision(self) -> str:
        """The result's precision: what the transformer's weights and matmuls were."""
        weights = self.weight_dtypes.get("transformer", "")
        if weights.startswith("float8") or self.quantized_file:
            return "fp8-compute" if self.fp8_matmul else "fp8-storage"
        return "bf16"

    @property
    def partially_loaded(self) -> bool:
        return "partial" in self.loading.values()

    def section(self, *, attention: str | None) -> dict[str, Any]:
        """The result's `kernels` section: no kernel counts (ComfyUI does not report
        them); `attention` is what ComfyUI's launch flags asked for."""
        return kernels.section(
            source=self.source,
            model_file=self.model_file,
            weight_dtypes=self.weight_dtypes,
            compute_dtypes=self.compute_dtypes,
            fp8_matmul=self.fp8_matmul,
            attention=attention,
            loading=self.loading,
            offloaded_mb=self.offloaded_mb,
        )


def _dtype(name: str) -> str:
    return name.removeprefix("torch.")


def read_log(lines: list[str]) -> KernelPath | None:
    """The kernel path from the log lines of the benchmark's prompts; None when they
    hold no diffusion model load (the log was cut, or the model was already loaded)."""
    path = KernelPath()
    native_fp8: bool | None = None
    loading_model: str | None = None
    saw_weights = False
    for raw in lines:
        line = _ANSI.sub("", raw).strip()
        if match := _WEIGHT_DTYPE.search(line):
            weights, cast = _dtype(match.group(1)), _dtype(match.group(2)).lower()
            path.weight_dtypes["transformer"] = weights
            path.compute_dtypes["transformer"] = weights if cast == "none" else cast
            saw_weights = True
        elif "Found quantization metadata" in line or "Using mixed precision operations" in line:
            path.quantized_file = True
        elif match := _NATIVE_OPS.search(line):
            native = {op.strip() for op in match.group(1).split(",") if op.strip()}
            native_fp8 = "float8_e4m3fn" in native
        elif match := _TEXT_ENCODER.search(line):
            path.weight_dtypes["text_encoder"] = _dtype(match.group(1))
        elif match := _VAE.search(line):
            path.weight_dtypes["vae"] = _dtype(match.group(1))
        elif match := _REQUESTED.search(line):
            loading_model = match.group(1)
        elif match := _DYNAMIC.search(line):
            path.loading[component_of(match.group(1))] = "dynamic"
        elif match := _PARTIAL.search(line):
            component = component_of(loading_model or "")
            path.loading[component] = "partial"
            offloaded = float(match.group(1))
            path.offloaded_mb = max(path.offloaded_mb or 0.0, offloaded)
        elif _COMPLETE.search(line):
            component = component_of(loading_model or "")
            if path.loading.get(component) != "partial":
                path.loading[component] = "full"
    if not saw_weights:
        return None
    if path.quantized_file:
        # The layers are FP8 in the file whatever dtype the model is built in.
        path.weight_dtypes["transformer"] = "float8_e4m3fn"
        path.fp8_matmul = bool(native_fp8)
        if native_fp8:
            path.compute_dtypes["transformer"] = "float8_e4m3fn"
    return path


def executed_seconds(lines: list[str]) -> list[float]:
    """ComfyUI's own time for each prompt, from its "Prompt executed in" lines (seconds
    to 0.01 s, or H:MM:SS.ss past ten minutes)."""
    seconds = []
    for raw in lines:
        if match := _EXECUTED.search(_ANSI.sub("", raw)):
            if match.group(1):
                seconds.append(float(match.group(1)))
            else:
                hours, minutes, rest = match.group(2, 3, 4)
                seconds.append(int(hours) * 3600 + int(minutes) * 60 + float(rest))
    return seconds


def assumed(weights: str) -> KernelPath:
    """The kernel path taken from the file alone, when ComfyUI's log cannot be read."""
    dtype = {"fp8": "float8_e4m3fn", "fp16": "float16"}.get(weights, "bfloat16")
    return KernelPath(
        source=kernels.SOURCE_ASSUMED,
        weight_dtypes={"transformer": dtype},
        compute_dtypes={"transformer": "bfloat16"},
    )


def apply_fast_fp8(path: KernelPath, *, requested: bool, capable: bool | None) -> None:
    """A plain FP8 file's matmuls run in FP8 when `--fast fp8_matrix_mult` was given and
    the GPU can (ComfyUI's `supports_fp8_compute`); `capable` None: unknown GPU."""
    if path.quantized_file or not path.weight_dtypes.get("transformer", "").startswith("float8"):
        return
    if not requested:
        path.fp8_matmul = False
    elif capable is None:
        path.fp8_matmul = None
    elif capable:
        path.fp8_matmul = True
        path.compute_dtypes["transformer"] = path.weight_dtypes["transformer"]
    else:
        path.fp8_matmul = False
