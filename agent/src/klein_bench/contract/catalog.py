"""The presets the agent runs models in (the models are klein_bench.contract.models).

A preset names what really runs: its precision (the kernel path, see figures.PRECISIONS)
and its offload are the configuration fields the server groups results by; runtime,
resolution and steps are fields of their own. The server labels configurations with
these names and offers the agent's commands for these presets only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    precision: str
    offload: str
    # Short, for tables: "BF16, fully resident".
    label: str
    # What runs, for --help and the contribute pages.
    description: str
    # Bytes per parameter each component is stored in on the GPU.
    storage_bytes: dict[str, float] = field(
        default_factory=lambda: {"transformer": 2, "text_encoder": 2, "vae": 2}
    )
    # Needs FP8 tensor cores (compute capability 8.9 or newer) and CUDA.
    needs_fp8_tensor_cores: bool = False


PRESETS = {
    p.name: p
    for p in (
        Preset(
            "bf16-resident",
            "bf16",
            "none",
            "BF16, fully resident",
            "BF16 weights and compute, the whole pipeline on the GPU.",
        ),
        Preset(
            "bf16-model-offload",
            "bf16",
            "model",
            "BF16, model CPU offload",
            "BF16 with enable_model_cpu_offload(): one component on the GPU at a time, the "
            "others in system RAM.",
        ),
        Preset(
            "fp8-storage",
            "fp8-storage",
            "none",
            "FP8 weights, BF16 compute",
            "FP8 weight storage for the transformer and the text encoder (diffusers "
            "layerwise casting), upcast to BF16 for every matmul: less memory, not faster.",
            {"transformer": 1, "text_encoder": 1, "vae": 2},
        ),
        Preset(
            "fp8-compute",
            "fp8-compute",
            "none",
            "FP8 matmuls (torchao)",
            "FP8 matmuls in the transformer (torchao float8 dynamic activation and weight, "
            "through diffusers' TorchAoConfig); text encoder and VAE in BF16. Needs an RTX 40 "
            "or newer card (FP8 tensor cores) and klein-bench[fp8].",
            {"transformer": 1, "text_encoder": 2, "vae": 2},
            needs_fp8_tensor_cores=True,
        ),
    )
}
# The smallest compute capability with FP8 tensor cores (Ada Lovelace, Hopper, Blackwell).
FP8_COMPUTE_CAPABILITY = (8, 9)
DEFAULT_PRESET = "bf16-resident"


def preset_for(precision: str, offload: str) -> Preset | None:
    """The preset with this precision and offload, if there is one."""
    return next(
        (p for p in PRESETS.values() if (p.precision, p.offload) == (precision, offload)), None
    )
