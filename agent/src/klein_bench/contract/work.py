"""A model's floating-point work per image and its weights, from its architecture.

The work is counted the way torch's FlopCounterMode counts it (two FLOPs per multiply-
add, matmuls and attention only), and agent/tests/test_work.py checks the formulas
against FlopCounterMode on the real diffusers modules. On a given card nothing can run
faster than `transformer_flop / dense tensor peak`: that is the physical bound the server
refuses results under, and the basis of the speed estimates.

The architectures hold everything that sizes the work and the weights, and everything the
diffusers runtime needs to build the modules from them (the synthetic and tiny pipelines):
each model's architecture is part of its registry entry (klein_bench.contract.models).

Klein 4B at the protocol's 1024x1024, 4 steps and 512 text tokens: 139.3 TFLOP in the
transformer (34.8 per step: 28.3 of matmuls over 4608 tokens, 6.5 of attention), 4.3 in
the text encoder (Qwen3-4B, all 36 layers and the LM head, which the pipeline runs) and
10.5 in the VAE decoder. A model run with classifier-free guidance (the base models) runs
the transformer twice per step and encodes the negative prompt too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flux2Transformer:
    hidden: int  # num_attention_heads x attention_head_dim
    double_blocks: int
    single_blocks: int
    mlp_ratio: float
    in_channels: int
    joint_attention_dim: int
    timestep_channels: int
    parameters: int
    head_dim: int = 128
    # Must sum to head_dim.
    axes_dims_rope: tuple[int, ...] = (32, 32, 32, 32)
    rope_theta: int = 2000

    @property
    def heads(self) -> int:
        return self.hidden // self.head_dim

    def step_flop(self, image_tokens: int, text_tokens: int) -> float:
        """One denoising step. Double and single blocks cost the same per token: 4 D^2 of
        attention projections and 3 D F of SwiGLU MLP; attention is 2 L^2 D per block."""
        d = self.hidden
        f = int(d * self.mlp_ratio)
        tokens = image_tokens + text_tokens
        blocks = self.double_blocks + self.single_blocks
        macs = (
            tokens * blocks * (4 * d * d + 3 * d * f)
            + blocks * 2 * tokens * tokens * d
            # x_embedder, proj_out and context_embedder
            + 2 * image_tokens * self.in_channels * d
            + text_tokens * self.joint_attention_dim * d
            # Once per step, not per token: modulations, norm_out and the timestep MLP.
            + 18 * d * d
            + self.timestep_channels * d
        )
        return 2.0 * macs


@dataclass(frozen=True)
class Qwen3TextEncoder:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    parameters: int
    tie_word_embeddings: bool = True
    # The hidden states the pipeline stacks into the prompt embedding: the transformer's
    # joint_attention_dim is len(out_layers) x hidden.
    out_layers: tuple[int, ...] = (9, 18, 27)
    max_position_embeddings: int = 40960
    rope_theta: float = 1000000.0

    def flop(self, tokens: int) -> float:
        """One prompt: every layer and the LM head run (the pipeline calls the causal LM
        for its hidden states)."""
        attention_width = self.heads * self.head_dim
        per_token_layer = (
            2 * self.hidden * attention_width  # q and o
            + 2 * self.hidden * self.kv_heads * self.head_dim  # k and v
            + 3 * self.hidden * self.intermediate  # SwiGLU MLP
        )
        macs = (
            tokens * (self.layers * per_token_layer + self.hidden * self.vocab)
            + self.layers * 2 * tokens * tokens * attention_width
        )
        return 2.0 * macs


@dataclass(frozen=True)
class Vae:
    parameters: int
    # The decoder is convolutional: its work grows with the output's pixels. Counted with
    # FlopCounterMode at the model's default size.
    decode_flop_per_pixel: float
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    latent_channels: int = 32
    layers_per_block: int = 2
    norm_num_groups: int = 32


@dataclass(frozen=True)
class Architecture:
    transformer: Flux2Transformer
    text_encoder: Qwen3TextEncoder
    vae: Vae
    # The VAE downsamples 8x and the transformer packs 2x2 latent patches.
    pixels_per_token_side: int = 16

    @property
    def parameters(self) -> dict[str, int]:
        return {
            "transformer": self.transformer.parameters,
            "text_encoder": self.text_encoder.parameters,
            "vae": self.vae.parameters,
        }


@dataclass(frozen=True)
class Work:
    """Floating-point operations for one image."""

    transformer_flop: float
    text_encoder_flop: float
    vae_decode_flop: float

    @property
    def total_flop(self) -> float:
        return self.transformer_flop + self.text_encoder_flop + self.vae_decode_flop

    def bound_seconds(self, peak_tflops: float) -> float:
        """The least time the transformer's work can take at a dense tensor peak (TFLOPS):
        no result on that card can be faster."""
        return self.transformer_flop / (peak_tflops * 1e12)


def work_per_image(
    architecture: Architecture,
    *,
    width: int,
    height: int,
    steps: int,
    text_tokens: int,
    guidance_passes: int,
) -> Work:
    """`guidance_passes` is 2 for a model run with classifier-free guidance (the base
    models): the transformer then runs for the prompt and for the negative at each step,
    and the negative prompt is encoded too. Callers take it from the protocol through the
    registry (`ModelSpec.work`), never on their own."""
    side = architecture.pixels_per_token_side
    image_tokens = (width // side) * (height // side)
    step = architecture.transformer.step_flop(image_tokens, text_tokens)
    return Work(
        transformer_flop=steps * guidance_passes * step,
        text_encoder_flop=guidance_passes * architecture.text_encoder.flop(text_tokens),
        vae_decode_flop=architecture.vae.decode_flop_per_pixel * width * height,
    )
