"""How comparable a result is with the others: its comparability class, and the reasons.

Three classes, from the most comparable down:

- protocol-exact: the standard protocol at its own size and steps, in a standard preset,
  unmodified (no power cap, PyTorch's own attention, no launch flags that change the
  numbers, the whole card). Medians, verdicts and the "reproduced" mark use these only.
- same-stack: a signed agent run with other settings: a power limit, another attention
  kernel, another size, an offload with no preset, launch flags that change speed or
  memory. Shown apart, labelled with what differs.
- self-reported: typed into the report form, not measured by the agent.

The agent and the server both call `deviations(payload)`, so `klein-bench run` can say
before uploading how its result will count.
"""

from __future__ import annotations

from typing import Any

from klein_bench.contract.catalog import preset_for
from klein_bench.contract.figures import CAPPED_BELOW_SHARE
from klein_bench.contract.models import MODELS
from klein_bench.contract.protocol import known_protocol

PROTOCOL_EXACT = "protocol-exact"
SAME_STACK = "same-stack"
SELF_REPORTED = "self-reported"
CLASSES = {
    PROTOCOL_EXACT: "protocol-exact",
    SAME_STACK: "same stack, other settings",
    SELF_REPORTED: "self-reported",
}

# PyTorch's scaled_dot_product_attention, whichever kernel it picks for the card: what the
# protocol runs. Reported as "sdpa" or "sdpa-flash", "sdpa-efficient", ...
STANDARD_ATTENTION_PREFIX = "sdpa"
# ComfyUI launch flags that change speed or memory. Others (--preview-method,
# --cuda-device, ...) do not, and the ones that pick the attention kernel are judged by the
# kernel they pick. --fast is how ComfyUI runs FP8 matmuls, which the fp8-compute preset asks.
NUMBER_FLAGS = frozenset(
    {
        "--lowvram",
        "--novram",
        "--highvram",
        "--gpu-only",
        "--cpu-vae",
        "--fp8_e4m3fn-unet",
        "--fp8_e5m2-unet",
        "--fp8_e8m0fnu-unet",
        "--fp16-vae",
        "--fp32-vae",
        "--bf16-vae",
        "--fp8_e4m3fn-text-enc",
        "--fp8_e5m2-text-enc",
        "--fp16-text-enc",
        "--fp32-text-enc",
        "--bf16-text-enc",
        "--force-upcast-attention",
        "--dont-upcast-attention",
        "--deterministic",
        "--reserve-vram",
        "--vram-headroom",
        "--disable-cuda-malloc",
        "--disable-pinned-memory",
        "--disable-async-offload",
        "--async-offload",
    }
)
FP8_COMPUTE_FLAGS = frozenset({"--fast", "--supports-fp8-compute"})


def _size_deviation(payload: dict[str, Any]) -> str | None:
    protocol = known_protocol(payload["protocol"]["id"], payload["protocol"]["hash"])
    if protocol is None:
        return f"protocol {payload['protocol']['id']} is not a standard protocol"
    model = MODELS.get(payload["model"])
    width, height = (model.width, model.height) if model else (protocol.width, protocol.height)
    c = payload["configuration"]
    if (c["width"], c["height"], c["steps"]) != (width, height, protocol.steps):
        return (
            f"{c['width']}x{c['height']} at {c['steps']} steps, not the protocol's "
            f"{width}x{height} at {protocol.steps} steps"
        )
    return None


def _attention(payload: dict[str, Any]) -> str | None:
    kernels = payload.get("kernels") or {}
    return kernels.get("attention") or (payload.get("environment") or {}).get("attention")


def _flag_name(flag: str) -> str:
    return flag.split("=", 1)[0]


def deviations(payload: dict[str, Any]) -> list[str]:
    """What makes a signed result other than protocol-exact, in words; empty when it is.

    The payload has passed the result schema."""
    found = []
    size = _size_deviation(payload)
    if size:
        found.append(size)
    c = payload["configuration"]
    if preset_for(c["precision"], c["offload"]) is None:
        found.append(f"{c['precision']} with {c['offload']} offload is not a standard preset")
    share = (payload.get("telemetry") or {}).get("power_limit_share")
    capped = (payload.get("telemetry") or {}).get("capped")
    if capped or (share is not None and share < CAPPED_BELOW_SHARE):
        found.append(
            f"power limit at {share:.0%} of the card's default"
            if share is not None
            else "power limit below the card's default"
        )
    attention = _attention(payload)
    if attention and not attention.startswith(STANDARD_ATTENTION_PREFIX):
        found.append(f"attention kernel {attention}, not PyTorch's SDPA")
    flags = sorted(
        {
            _flag_name(flag)
            for flag in (payload.get("environment") or {}).get("runtime_flags") or []
            if _flag_name(flag) in NUMBER_FLAGS
            or (_flag_name(flag) in FP8_COMPUTE_FLAGS and c["precision"] != "fp8-compute")
        }
    )
    if flags:
        found.append(f"launched with {', '.join(flags)}")
    if (payload.get("gpu") or {}).get("mig"):
        found.append("a MIG slice of the card, not the whole card")
    return found


def classify(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """The comparability class of a signed result, and why it is not protocol-exact."""
    found = deviations(payload)
    return (SAME_STACK if found else PROTOCOL_EXACT), found
