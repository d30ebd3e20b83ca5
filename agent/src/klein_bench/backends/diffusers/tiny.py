"""Flux2KleinPipelines built in code from a registry entry's architecture, with random
weights and nothing downloaded.

Two kinds, same classes, same diffusers code path as the real model:

- a tiny variant (`klein-tiny-random` and the others the registry lists): a few hundred
  kilobytes, deterministic for a seed, runs its model's protocol at 64x64 on a CPU in
  seconds. It tests the agent and the platform; its figures say nothing about the model.
- the synthetic pipeline (`--synthetic`): a real model's full-size architecture. Speed and
  memory equal the real model's; the image is noise.

The configs come from the entry's architecture (klein_bench.contract.work): the one place
a model's shape is written. A model run with classifier-free guidance is built undistilled
(`is_distilled=False`), so the pipeline encodes the negative prompt and runs the
transformer twice per step as the real base model does.

Both use a byte-level BPE tokenizer made in code. The real Qwen tokenizer would need a
download; prompts are padded to `max_sequence_length` either way, so the text encoder
does the same work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from klein_bench.contract.work import Architecture

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


def transformer_config(architecture: Architecture) -> dict[str, Any]:
    t = architecture.transformer
    return {
        "patch_size": 1,
        "in_channels": t.in_channels,
        "num_layers": t.double_blocks,
        "num_single_layers": t.single_blocks,
        "attention_head_dim": t.head_dim,
        "num_attention_heads": t.heads,
        "joint_attention_dim": t.joint_attention_dim,
        "timestep_guidance_channels": t.timestep_channels,
        "mlp_ratio": t.mlp_ratio,
        "axes_dims_rope": t.axes_dims_rope,
        "rope_theta": t.rope_theta,
        "guidance_embeds": False,
    }


def text_encoder_config(architecture: Architecture) -> dict[str, Any]:
    te = architecture.text_encoder
    return {
        "hidden_size": te.hidden,
        "intermediate_size": te.intermediate,
        "num_hidden_layers": te.layers,
        "num_attention_heads": te.heads,
        "num_key_value_heads": te.kv_heads,
        "head_dim": te.head_dim,
        "vocab_size": te.vocab,
        "max_position_embeddings": te.max_position_embeddings,
        "rope_theta": te.rope_theta,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": te.tie_word_embeddings,
    }


def vae_config(architecture: Architecture) -> dict[str, Any]:
    vae = architecture.vae
    blocks = len(vae.block_out_channels)
    return {
        "block_out_channels": vae.block_out_channels,
        "down_block_types": ("DownEncoderBlock2D",) * blocks,
        "up_block_types": ("UpDecoderBlock2D",) * blocks,
        "latent_channels": vae.latent_channels,
        "layers_per_block": vae.layers_per_block,
        "norm_num_groups": vae.norm_num_groups,
        "patch_size": (2, 2),
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
    architecture: Architecture, *, device: Any = "cpu", dtype: Any = None, seed: int = 0
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
    te_config = text_encoder_config(architecture)
    if te_config["vocab_size"] < len(tokenizer):
        raise ValueError("the text encoder's vocabulary is smaller than the tokenizer's")
    with _construction(device, dtype, seed):
        transformer = Flux2Transformer2DModel(**transformer_config(architecture))
        vae = AutoencoderKLFlux2(**vae_config(architecture))
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


def build_pipeline(
    architecture: Architecture,
    *,
    cfg: bool = False,
    device: Any = "cpu",
    dtype: Any = None,
    seed: int = 0,
):
    """A Flux2KleinPipeline of this architecture with random weights, made on `device`:
    a tiny variant on the CPU, or a full-size model (about 16 GB in BF16 for Klein 4B) on
    the GPU to keep it resident, on the CPU to offload it. `cfg`: undistilled, run with
    classifier-free guidance. Call it with `text_encoder_out_layers` of the architecture."""
    from diffusers import Flux2KleinPipeline

    components = build_components(architecture, device=device, dtype=dtype, seed=seed)
    pipe = Flux2KleinPipeline(**components, is_distilled=not cfg)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def parameter_counts(architecture: Architecture) -> dict[str, int]:
    """Parameters per component, counted on torch's meta device (nothing is allocated)."""
    import torch

    components = build_components(architecture, device="meta", dtype=torch.bfloat16)
    return {
        name: sum(p.numel() for p in components[name].parameters())
        for name in ("transformer", "text_encoder", "vae")
    }
