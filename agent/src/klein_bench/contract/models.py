"""The models klein-bench measures: one registry entry each (klein_bench.contract.registry).

The server's catalog, the agent's `--model` choices, the ComfyUI graph and its files, the
tiny test models, `doctor`, the work formula, the fit rule, the estimates and the pages all
read these entries. Adding a model is adding its entry here (and its tiny variant, one
call), its published claims to the server's catalog data, and its docs.

Sources, read for facts and configurations only (docs/models.md lists them with what each
gave):

- FLUX.2 [klein] 4B: the published model_index.json and component configs of
  black-forest-labs/FLUX.2-klein-4B (shared/REFERENCE.md); parameters counted on torch's
  meta device from them.
- FLUX.2 [klein] 9B: the transformer's config as two open implementations carry it,
  cross-checked: InvokeAI's FLUX.2 parameter presets (invokeai/backend/flux2, `Klein9B`)
  and flux-2-swift-mlx (Sources/Flux2Core/Configuration/Flux2Config.swift, `klein9B`):
  8 double and 24 single blocks, 32 heads of 128 (hidden 4096), MLP ratio 3,
  joint_attention_dim 12288 (3 x Qwen3-8B's 4096), in_channels 128, RoPE axes
  (32, 32, 32, 32) at theta 2000, no guidance embedding. iris.c reads the same from the
  model's transformer/config.json at run time. The text encoder is Qwen3-8B (Qwen/Qwen3-8B
  config.json: hidden 4096, intermediate 12288, 36 layers, 32 heads, 8 KV heads, head_dim
  128, vocabulary 151936, untied embeddings), its layers 9, 18 and 27 stacked as for the 4B
  (flux-2-swift-mlx's KleinConfig.swift: 3 x 4096 = 12288). The VAE is the 4B's.
- Base models: the same networks undistilled; diffusers' Flux2KleinPipeline defaults and
  BFL's model card run 50 steps at guidance 4.0 with "" as the negative prompt. ComfyUI's
  template runs its base graph at 20 steps and CFG 5; the protocol follows BFL's defaults.
- ComfyUI files: the official templates (Comfy-Org/workflow_templates):
  image_flux2_klein_text_to_image (4B: flux-2-klein-4b.safetensors,
  flux-2-klein-base-4b.safetensors, qwen_3_4b.safetensors, flux2-vae.safetensors) and the
  9B's "Text to Image (Flux.2 Klein 9B)" graph (flux-2-klein-9b-fp8.safetensors,
  flux-2-klein-base-9b-fp8.safetensors, qwen_3_8b_fp8mixed.safetensors). BFL publishes FP8
  files of every Klein model (black-forest-labs/FLUX.2-klein-*-fp8), so every preset exists
  for each.
"""

from __future__ import annotations

import dataclasses

from klein_bench.contract.protocol import KLEIN4B_T2I_V1, Protocol
from klein_bench.contract.registry import (
    ComfyUIFiles,
    HuggingFaceWeights,
    ModelSpec,
    tiny_variant,
)
from klein_bench.contract.work import Architecture, Flux2Transformer, Qwen3TextEncoder, Vae, Work

APACHE = "Apache-2.0"
NON_COMMERCIAL = "FLUX Non-Commercial License"
NON_COMMERCIAL_URL = "https://huggingface.co/black-forest-labs/FLUX.2-klein-9B/blob/main/LICENSE.md"
FLUX2_VAE = Vae(parameters=84_046_115, decode_flop_per_pixel=10_474_653_483_008 / (1024 * 1024))
COMFY_KLEIN_4B = "https://huggingface.co/Comfy-Org/flux2-klein"
COMFY_KLEIN_9B = "https://huggingface.co/Comfy-Org/vae-text-encorder-for-flux-klein-9b"

# -- architectures -----------------------------------------------------------------------

KLEIN_4B_ARCHITECTURE = Architecture(
    transformer=Flux2Transformer(
        hidden=3072,
        double_blocks=5,
        single_blocks=20,
        mlp_ratio=3.0,
        in_channels=128,
        joint_attention_dim=7680,
        timestep_channels=256,
        parameters=3_875_544_576,
    ),
    text_encoder=Qwen3TextEncoder(
        hidden=2560,
        intermediate=9728,
        layers=36,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab=151936,
        parameters=4_022_468_096,
    ),
    vae=FLUX2_VAE,
)
KLEIN_9B_ARCHITECTURE = Architecture(
    transformer=Flux2Transformer(
        hidden=4096,
        double_blocks=8,
        single_blocks=24,
        mlp_ratio=3.0,
        in_channels=128,
        joint_attention_dim=12288,
        timestep_channels=256,
        parameters=9_078_581_248,
    ),
    text_encoder=Qwen3TextEncoder(
        hidden=4096,
        intermediate=12288,
        layers=36,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab=151936,
        parameters=8_190_735_360,
        tie_word_embeddings=False,
    ),
    vae=FLUX2_VAE,
)
# The tiny variants keep the real structure (4 VAE blocks, so the same 8x scale factor;
# double and single transformer blocks; several text encoder layers stacked) at toy widths.
# The tiny VAE, its latents packed 2x2 into the transformer's 32 input channels.
_TINY_VAE = Vae(
    parameters=264_795,
    decode_flop_per_pixel=175_808_512 / (64 * 64),
    block_out_channels=(16, 16, 32, 32),
    latent_channels=8,
    layers_per_block=1,
    norm_num_groups=8,
)
KLEIN_TINY_ARCHITECTURE = Architecture(
    transformer=Flux2Transformer(
        hidden=32,
        double_blocks=1,
        single_blocks=2,
        mlp_ratio=3.0,
        in_channels=32,
        joint_attention_dim=96,
        timestep_channels=32,
        parameters=77_952,
        head_dim=16,
        axes_dims_rope=(4, 4, 4, 4),
    ),
    text_encoder=Qwen3TextEncoder(
        hidden=32,
        intermediate=64,
        layers=3,
        heads=2,
        kv_heads=1,
        head_dim=16,
        # The tokenizer made in code: 256 bytes and 5 special tokens.
        vocab=261,
        parameters=36_320,
        out_layers=(1, 2, 3),
        max_position_embeddings=1024,
        rope_theta=10000.0,
    ),
    vae=_TINY_VAE,
)
# The 9B's shape in small: more blocks, wider, an untied text encoder.
KLEIN_9B_TINY_ARCHITECTURE = Architecture(
    transformer=Flux2Transformer(
        hidden=48,
        double_blocks=2,
        single_blocks=2,
        mlp_ratio=3.0,
        in_channels=32,
        joint_attention_dim=144,
        timestep_channels=32,
        parameters=232_896,
        head_dim=16,
        axes_dims_rope=(4, 4, 4, 4),
    ),
    text_encoder=Qwen3TextEncoder(
        hidden=48,
        intermediate=96,
        layers=3,
        heads=3,
        kv_heads=1,
        head_dim=16,
        vocab=261,
        parameters=85_392,
        tie_word_embeddings=False,
        out_layers=(1, 2, 3),
        max_position_embeddings=1024,
        rope_theta=10000.0,
    ),
    vae=_TINY_VAE,
)

# -- protocols ---------------------------------------------------------------------------


def _guided(protocol_id: str) -> Protocol:
    """A base model's protocol: BFL's defaults, 50 steps at guidance 4.0, the negative
    prompt the pipeline uses ("")."""
    return dataclasses.replace(
        KLEIN4B_T2I_V1, id=protocol_id, steps=50, guidance_scale=4.0, negative_prompt=""
    )


KLEIN_BASE_4B_T2I_V1 = _guided("klein-base-4b-t2i-v1")
KLEIN_9B_T2I_V1 = dataclasses.replace(KLEIN4B_T2I_V1, id="klein9b-t2i-v1")
KLEIN_BASE_9B_T2I_V1 = _guided("klein-base-9b-t2i-v1")

# -- the entries -------------------------------------------------------------------------

KLEIN_4B = ModelSpec(
    slug="flux-2-klein-4b",
    name="FLUX.2 [klein] 4B",
    description=(
        "Black Forest Labs' step-distilled 4B text-to-image model: a 3.9B-parameter Flux2 "
        "transformer, the Qwen3-4B text encoder and the Flux.2 VAE. 4 steps, guidance 1.0, "
        "1024x1024. About 15 GiB of BF16 weights."
    ),
    licence=APACHE,
    architecture=KLEIN_4B_ARCHITECTURE,
    protocols=(KLEIN4B_T2I_V1,),
    hf=HuggingFaceWeights("black-forest-labs/FLUX.2-klein-4B", download_gib=15),
    comfyui=ComfyUIFiles(
        template="image_flux2_klein_text_to_image: Text to Image (Flux.2 Klein 4B)",
        diffusion_models={
            "fp8": "flux-2-klein-4b-fp8.safetensors",
            "bf16": "flux-2-klein-4b.safetensors",
        },
        text_encoders=("qwen_3_4b.safetensors",),
        downloads=COMFY_KLEIN_4B,
    ),
    parameters_billion="4.00",
    sort_order=10,
    tiny="klein-tiny-random",
)
KLEIN_BASE_4B = dataclasses.replace(
    KLEIN_4B,
    slug="flux-2-klein-base-4b",
    name="FLUX.2 [klein] Base 4B",
    description=(
        "The undistilled base of FLUX.2 [klein] 4B, for fine-tuning and LoRA training: the "
        "same network, run for 50 steps with classifier-free guidance 4.0, two transformer "
        "passes per step (prompt and negative prompt)."
    ),
    protocols=(KLEIN_BASE_4B_T2I_V1,),
    hf=HuggingFaceWeights("black-forest-labs/FLUX.2-klein-base-4B", download_gib=15),
    comfyui=ComfyUIFiles(
        template="image_flux2_klein_text_to_image: Text to Image (Flux.2 Klein 4B)",
        diffusion_models={
            "fp8": "flux-2-klein-base-4b-fp8.safetensors",
            "bf16": "flux-2-klein-base-4b.safetensors",
        },
        text_encoders=("qwen_3_4b.safetensors",),
        downloads=COMFY_KLEIN_4B,
    ),
    sort_order=20,
    tiny="klein-base-tiny-random",
)
KLEIN_9B = ModelSpec(
    slug="flux-2-klein-9b",
    name="FLUX.2 [klein] 9B",
    description=(
        "Black Forest Labs' step-distilled 9B text-to-image model: a 9.1B-parameter Flux2 "
        "transformer, the Qwen3-8B text encoder and the Flux.2 VAE. 4 steps, guidance 1.0, "
        "1024x1024. About 33 GiB of BF16 weights. Non-commercial licence."
    ),
    licence=NON_COMMERCIAL,
    licence_url=NON_COMMERCIAL_URL,
    commercial_use=False,
    architecture=KLEIN_9B_ARCHITECTURE,
    protocols=(KLEIN_9B_T2I_V1,),
    hf=HuggingFaceWeights("black-forest-labs/FLUX.2-klein-9B", download_gib=33, gated=True),
    comfyui=ComfyUIFiles(
        template="Text to Image (Flux.2 Klein 9B)",
        diffusion_models={
            "fp8": "flux-2-klein-9b-fp8.safetensors",
            "bf16": "flux-2-klein-9b.safetensors",
        },
        text_encoders=("qwen_3_8b_fp8mixed.safetensors", "qwen_3_8b.safetensors"),
        downloads=COMFY_KLEIN_9B,
    ),
    parameters_billion="9.00",
    sort_order=30,
    tiny="klein-9b-tiny-random",
)
KLEIN_BASE_9B = dataclasses.replace(
    KLEIN_9B,
    slug="flux-2-klein-base-9b",
    name="FLUX.2 [klein] Base 9B",
    description=(
        "The undistilled base of FLUX.2 [klein] 9B, for fine-tuning and LoRA training: the "
        "same network, run for 50 steps with classifier-free guidance 4.0, two transformer "
        "passes per step. Non-commercial licence."
    ),
    protocols=(KLEIN_BASE_9B_T2I_V1,),
    hf=HuggingFaceWeights("black-forest-labs/FLUX.2-klein-base-9B", download_gib=33, gated=True),
    comfyui=ComfyUIFiles(
        template="Text to Image (Flux.2 Klein 9B)",
        diffusion_models={
            "fp8": "flux-2-klein-base-9b-fp8.safetensors",
            "bf16": "flux-2-klein-base-9b.safetensors",
        },
        text_encoders=("qwen_3_8b_fp8mixed.safetensors", "qwen_3_8b.safetensors"),
        downloads=COMFY_KLEIN_9B,
    ),
    sort_order=40,
    tiny="klein-base-9b-tiny-random",
)

KLEIN_TINY = tiny_variant(
    KLEIN_4B,
    slug="klein-tiny-random",
    name="Klein tiny random (test model)",
    architecture=KLEIN_TINY_ARCHITECTURE,
    sort_order=90,
)
KLEIN_BASE_TINY = tiny_variant(
    KLEIN_BASE_4B,
    slug="klein-base-tiny-random",
    name="Klein base tiny random (test model)",
    architecture=KLEIN_TINY_ARCHITECTURE,
    sort_order=91,
)
KLEIN_9B_TINY = tiny_variant(
    KLEIN_9B,
    slug="klein-9b-tiny-random",
    name="Klein 9B tiny random (test model)",
    architecture=KLEIN_9B_TINY_ARCHITECTURE,
    sort_order=92,
)
KLEIN_BASE_9B_TINY = tiny_variant(
    KLEIN_BASE_9B,
    slug="klein-base-9b-tiny-random",
    name="Klein base 9B tiny random (test model)",
    architecture=KLEIN_9B_TINY_ARCHITECTURE,
    sort_order=93,
)

MODELS: dict[str, ModelSpec] = {
    m.slug: m
    for m in (
        KLEIN_4B,
        KLEIN_BASE_4B,
        KLEIN_9B,
        KLEIN_BASE_9B,
        KLEIN_TINY,
        KLEIN_BASE_TINY,
        KLEIN_9B_TINY,
        KLEIN_BASE_9B_TINY,
    )
}
# What `run` and `submit` measure unless told otherwise.
DEFAULT_MODEL = KLEIN_4B.slug


def model(slug: str) -> ModelSpec | None:
    return MODELS.get(slug)


def protocols() -> dict[str, Protocol]:
    """Every model's protocols by id (an id names one protocol, whichever models share it:
    a tiny variant runs its model's)."""
    found: dict[str, Protocol] = {}
    for entry in MODELS.values():
        for protocol in entry.protocols:
            assert found.setdefault(protocol.id, protocol) == protocol, protocol.id
    return found


def work_of(slug: str, *, width: int, height: int, steps: int, protocol_id: str) -> Work | None:
    """The work per image of a result of this model under this protocol (None when the
    registry does not know the model, or the protocol is not one of the model's)."""
    entry = MODELS.get(slug)
    protocol = entry.protocol_for(protocol_id) if entry else None
    if entry is None or protocol is None:
        return None
    return entry.work(width=width, height=height, steps=steps, protocol=protocol)
