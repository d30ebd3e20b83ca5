"""Flux2KleinPipelines built in code, with random weights and nothing downloaded.

Two sizes, same classes, same diffusers code path as the real model:

- the tiny pipeline (`klein-tiny-random`): a few hundred kilobytes, deterministic for a seed,
  runs the protocol at 64x64 on a CPU in seconds. It tests the agent and the platform;
  its figures say nothing about Klein 4B.
- the synthetic pipeline (`--synthetic`): the full-size Klein 4B architecture from the
  published configs. Speed and memory equal the real model's; the image is noise.

Both use a byte-level BPE tokenizer made in code. The real Qwen tokenizer would need a
download; prompts are padded to `max_sequence_length` either way, so the text encoder
does the same work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

# The published FLUX.2 [klein] 4B configs (model_index.json and the component configs).
KLEIN4B_TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 128,
    "num_layers": 5,
    "num_single_layers": 20,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": (32, 32, 32, 32),
    "rope_theta": 2000,
    "guidance_embeds": False,
}
KLEIN4B_TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
KLEIN4B_VAE_CONFIG: dict[str, Any] = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 32,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "patch_size": (2, 2),
}
KLEIN4B_TEXT_ENCODER_OUT_LAYERS = (9, 18, 27)

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "time_shift_type": "exponential",
}

# The tiny pipeline keeps the real structure (4 VAE blocks, so the same 8x scale factor;
# double and single transformer blocks; several text encoder layers stacked) at toy widths.
TINY_TEXT_ENCODER_OUT_LAYERS = (1, 2, 3)
_TINY_TE_HIDDEN = 32
TINY_VAE_CONFIG: dict[str, Any] = {
    "block_out_channels": (16, 16, 32, 32),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 8,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "patch_size": (2, 2),
}
TINY_TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    # The pipeline packs 2x2 latent patches: 4 x the VAE's latent channels.
    "in_channels": 4 * TINY_VAE_CONFIG["latent_channels"],
    "num_layers": 1,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": len(TINY_TEXT_ENCODER_OUT_LAYERS) * _TINY_TE_HIDDEN,
    "timestep_guidance_channels": 32,
    "mlp_ratio": 3.0,
    # Must sum to attention_head_dim.
    "axes_dims_rope": (4, 4, 4, 4),
    "rope_theta": 2000,
    "guidance_embeds": False,
}
TINY_TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "hidden_size": _TINY_TE_HIDDEN,
    "intermediate_size": 64,
    "num_hidden_layers": max(TINY_TEXT_ENCODER_OUT_LAYERS),
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 1024,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    # vocab_size is set from the tokenizer.
}

_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")
# Qwen3's chat template, reduced to what the pipeline uses: user messages, the generation
# prompt, and the empty thinking block that `enable_thinking=False` adds.
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE's alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def build_tokenizer():
    """A byte-level BPE tokenizer wrapped as the Qwen2 tokenizer the pipeline expects."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(_bytes_to_unicode().values())
    vocab = {char: index for index, char in enumerate(alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_SPECIAL_TOKENS[1:]),
        model_max_length=131072,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(_SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


@contextlib.contextmanager
def _construction(device: Any, dtype: Any, seed: int) -> Iterator[None]:
    """Build modules directly on `device` in `dtype` with seeded weights, leaving the
    caller's random state and default dtype as they were."""
    import torch

    previous_dtype = torch.get_default_dtype()
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            yield
        finally:
            torch.set_default_dtype(previous_dtype)


def build_components(
    transformer_config: dict[str, Any],
    text_encoder_config: dict[str, Any],
    vae_config: dict[str, Any],
    *,
    device: Any = "cpu",
    dtype: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The five pipeline components, with random weights made on `device`."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    dtype = dtype or torch.bfloat16
    tokenizer = build_tokenizer()
    te_config = dict(text_encoder_config)
    te_config.setdefault("vocab_size", len(tokenizer))
    if te_config["vocab_size"] < len(tokenizer):
        raise ValueError("the text encoder's vocabulary is smaller than the tokenizer's")
    with _construction(device, dtype, seed):
        transformer = Flux2Transformer2DModel(**transformer_config)
        vae = AutoencoderKLFlux2(**vae_config)
        text_encoder = Qwen3ForCausalLM(Qwen3Config(**te_config, torch_dtype=dtype))
    for module in (transformer, vae, text_encoder):
        module.eval()
    return {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
    }


def _pipeline(components: dict[str, Any]):
    from diffusers import Flux2KleinPipeline

    pipe = Flux2KleinPipeline(**components, is_distilled=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_pipeline(*, seed: int = 0, dtype: Any = None, device: Any = "cpu"):
    """The tiny random Flux2KleinPipeline: call it with
    `text_encoder_out_layers=TINY_TEXT_ENCODER_OUT_LAYERS`."""
    return _pipeline(
        build_components(
            TINY_TRANSFORMER_CONFIG,
            TINY_TEXT_ENCODER_CONFIG,
            TINY_VAE_CONFIG,
            device=device,
            dtype=dtype,
            seed=seed,
        )
    )


def build_synthetic_pipeline(*, device: Any, dtype: Any = None, seed: int = 0):
    """The full-size Klein 4B architecture with random weights, made on `device` (about
    16 GB in bf16): build it on the GPU to keep it resident, on the CPU to offload it."""
    return _pipeline(
        build_components(
            KLEIN4B_TRANSFORMER_CONFIG,
            KLEIN4B_TEXT_ENCODER_CONFIG,
            KLEIN4B_VAE_CONFIG,
            device=device,
            dtype=dtype,
            seed=seed,
        )
    )


def parameter_counts(
    transformer_config: dict[str, Any] = KLEIN4B_TRANSFORMER_CONFIG,
    text_encoder_config: dict[str, Any] = KLEIN4B_TEXT_ENCODER_CONFIG,
    vae_config: dict[str, Any] = KLEIN4B_VAE_CONFIG,
) -> dict[str, int]:
    """Parameters per component, counted on torch's meta device (nothing is allocated)."""
    import torch

    components = build_components(
        transformer_config, text_encoder_config, vae_config, device="meta", dtype=torch.bfloat16
    )
    return {
        name: sum(p.numel() for p in components[name].parameters())
        for name in ("transformer", "text_encoder", "vae")
    }
