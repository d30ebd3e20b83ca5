"""The payload's `kernels` section, one shape for every runtime: the kernel path that
really ran (weight storage, matmul dtypes, FP8 kernels, attention).

Settings say what was asked for; these figures are observed or read. The diffusers
runtime observes them (backends/diffusers/kernels.py, `source` "observed"); ComfyUI's log
and launch flags say what it ran (backends/comfyui/logs.py); what a runtime cannot tell
is null.
"""

from __future__ import annotations

from typing import Any

COMPONENTS = ("transformer", "text_encoder", "vae")
# Where a kernel path was read (the section's `source`: contract.figures.KERNEL_SOURCES).
SOURCE_OBSERVED = "observed"
SOURCE_COMFYUI_LOG = "comfyui-log"
SOURCE_ASSUMED = "file-and-launch-flags"


def section(
    *,
    source: str,
    weight_dtypes: dict[str, str],
    compute_dtypes: dict[str, str],
    fp8_matmul: bool | None,
    attention: str | None,
    model_file: str | None = None,
    matmul_dtypes: list[str] | None = None,
    matmuls: int | None = None,
    fp8_matmuls: int | None = None,
    loading: dict[str, str] | None = None,
    offloaded_mb: float | None = None,
) -> dict[str, Any]:
    """The payload's kernels section (schemas/result-v1.json): every key, null where the
    runtime cannot tell (counts exist only where kernels were observed, loading only
    where the runtime reports it)."""

    def ordered(values: dict[str, str]) -> dict[str, str]:
        return {name: values[name] for name in COMPONENTS if name in values}

    return {
        "source": source,
        "model_file": model_file,
        "weight_dtypes": ordered(weight_dtypes),
        "compute_dtypes": ordered(compute_dtypes),
        "matmul_dtypes": matmul_dtypes,
        "matmuls": matmuls,
        "fp8_matmuls": fp8_matmuls,
        "fp8_matmul": fp8_matmul,
        "attention": attention,
        "loading": ordered(loading) if loading is not None else None,
        "offloaded_mb": offloaded_mb,
    }
