"""The tiny test model for the ComfyUI runtime: random-weight files ComfyUI loads as FLUX.2.

`klein-bench run --model klein-tiny-random --runtime comfyui` writes three files into
the model folders of a ComfyUI on this machine (under `klein-bench/` in each, so no file
of the user's is touched) and runs the real Klein graph on them, on a GPU or a CPU:

- `diffusion_models/klein-bench/klein-tiny-random-flux2.safetensors`: the FLUX.2 layout
  with BFL's key names: hidden 256 (2 heads of 128), 2 double + 2 single blocks,
  128 latent channels, global modulation, no guidance embedding (as Klein), no biases,
  and txt_in 768 wide. About 6.6M parameters, 13 MB.
- `text_encoders/klein-bench/klein-tiny-random-clip-l.safetensors`: a full-shape CLIP-L
  text model (124M parameters, 247 MB). ComfyUI builds its text encoders from
  fixed configurations: a Qwen3-4B-shaped file, whatever it holds, becomes the full
  36-layer Qwen3-4B (~7.7 GB of RAM, ~1 minute per prompt on a CPU core). CLIPLoader with
  type `flux2` builds CLIP-L for a CLIP-L file, which costs ~0.4 s per prompt on a CPU
  core; the FLUX.2 model pads its 77x768 output to 512 tokens as it does Qwen3's.
- `vae/klein-bench/klein-tiny-random-flux2-vae.safetensors`: the FLUX.2 VAE layout
  (z 32, batch-norm statistics over 128 patchified channels) with a thin decoder (ComfyUI
  0.9.2+ reads the decoder's width from the file; the encoder has the fixed width
  ComfyUI builds, unused by text to image). 75 MB.

All three are fp16 (numpy, which writes them, has no bfloat16; ComfyUI casts to the
dtype it computes in, and its log says which). The values are seeded random numbers:
the same bytes on every machine. A file already
written by this version is reused. The image is noise; the figures say nothing about
any real model; they test the agent, ComfyUI's API and the platform end to end. Every tiny
variant (klein-base-tiny-random, klein-9b-tiny-random, ...) runs its model's graph on them.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from klein_bench.backends.comfyui import workflow
from klein_bench.backends.comfyui.client import ComfyUIClient, ComfyUIError
from klein_bench.errors import KleinBenchError

SUBFOLDER = "klein-bench"
DIFFUSION_MODEL = "klein-tiny-random-flux2.safetensors"
TEXT_ENCODER = "klein-tiny-random-clip-l.safetensors"
VAE = "klein-tiny-random-flux2-vae.safetensors"
# Bumped whenever the files' contents change, so older copies are rewritten.
FORMAT = "klein-bench-tiny-comfyui-1"
SEED = 1234
# How long ComfyUI may take to list files that were just written.
LISTING_WAIT_S = 15.0

# (shape, init): init is "linear" (scaled by fan-in), "small", "embed", "ones", "zeros"
# or "var" (batch-norm variance, around 1).
Layout = dict[str, tuple[tuple[int, ...], str]]


def _linear(layout: Layout, name: str, out_f: int, in_f: int, *, bias: bool) -> None:
    layout[f"{name}.weight"] = ((out_f, in_f), "linear")
    if bias:
        layout[f"{name}.bias"] = ((out_f,), "zeros")


def _conv(layout: Layout, name: str, out_c: int, in_c: int, kernel: int) -> None:
    layout[f"{name}.weight"] = ((out_c, in_c, kernel, kernel), "linear")
    layout[f"{name}.bias"] = ((out_c,), "zeros")


def _norm(layout: Layout, name: str, channels: int, *, bias: bool = True) -> None:
    layout[f"{name}.weight"] = ((channels,), "ones")
    if bias:
        layout[f"{name}.bias"] = ((channels,), "zeros")


def flux2_layout(hidden: int = 256, double: int = 2, single: int = 2, context: int = 768) -> Layout:
    """ComfyUI's FLUX.2 diffusion model keys (comfy/ldm/flux, image_model "flux2")."""
    head_dim, channels, mlp = 128, 128, hidden * 3
    layout: Layout = {}
    _linear(layout, "img_in", hidden, channels, bias=False)
    _linear(layout, "time_in.in_layer", hidden, 256, bias=False)
    _linear(layout, "time_in.out_layer", hidden, hidden, bias=False)
    _linear(layout, "txt_in", hidden, context, bias=False)
    for index in range(double):
        for side in ("img", "txt"):
            prefix = f"double_blocks.{index}.{side}_"
            _linear(layout, f"{prefix}attn.qkv", 3 * hidden, hidden, bias=False)
            layout[f"{prefix}attn.norm.query_norm.scale"] = ((head_dim,), "ones")
            layout[f"{prefix}attn.norm.key_norm.scale"] = ((head_dim,), "ones")
            _linear(layout, f"{prefix}attn.proj", hidden, hidden, bias=False)
            # SiLU-gated MLP: the first layer is twice as wide.
            _linear(layout, f"{prefix}mlp.0", 2 * mlp, hidden, bias=False)
            _linear(layout, f"{prefix}mlp.2", hidden, mlp, bias=False)
    for index in range(single):
        prefix = f"single_blocks.{index}."
        _linear(layout, f"{prefix}linear1", 3 * hidden + 2 * mlp, hidden, bias=False)
        _linear(layout, f"{prefix}linear2", hidden, hidden + mlp, bias=False)
        layout[f"{prefix}norm.query_norm.scale"] = ((head_dim,), "ones")
        layout[f"{prefix}norm.key_norm.scale"] = ((head_dim,), "ones")
    _linear(layout, "final_layer.linear", channels, hidden, bias=False)
    layout["final_layer.adaLN_modulation.1.weight"] = ((2 * hidden, hidden), "small")
    layout["double_stream_modulation_img.lin.weight"] = ((6 * hidden, hidden), "small")
    layout["double_stream_modulation_txt.lin.weight"] = ((6 * hidden, hidden), "small")
    layout["single_stream_modulation.lin.weight"] = ((3 * hidden, hidden), "small")
    return layout


def _resnet(layout: Layout, name: str, in_c: int, out_c: int) -> None:
    _norm(layout, f"{name}.norm1", in_c)
    _conv(layout, f"{name}.conv1", out_c, in_c, 3)
    _norm(layout, f"{name}.norm2", out_c)
    _conv(layout, f"{name}.conv2", out_c, out_c, 3)
    if in_c != out_c:
        _conv(layout, f"{name}.nin_shortcut", out_c, in_c, 1)


def _attention(layout: Layout, name: str, channels: int) -> None:
    _norm(layout, f"{name}.norm", channels)
    for part in ("q", "k", "v", "proj_out"):
        _conv(layout, f"{name}.{part}", channels, channels, 1)


def flux2_vae_layout(encoder_ch: int = 128, decoder_ch: int = 32, z: int = 32) -> Layout:
    """ComfyUI's FLUX.2 VAE keys (LDM AutoencoderKL with batch-norm latent statistics)."""
    mult, blocks = (1, 2, 4, 4), 2
    layout: Layout = {}
    _conv(layout, "encoder.conv_in", encoder_ch, 3, 3)
    channels = encoder_ch
    for level, factor in enumerate(mult):
        for block in range(blocks):
            _resnet(layout, f"encoder.down.{level}.block.{block}", channels, encoder_ch * factor)
            channels = encoder_ch * factor
        if level != len(mult) - 1:
            _conv(layout, f"encoder.down.{level}.downsample.conv", channels, channels, 3)
    _resnet(layout, "encoder.mid.block_1", channels, channels)
    _attention(layout, "encoder.mid.attn_1", channels)
    _resnet(layout, "encoder.mid.block_2", channels, channels)
    _norm(layout, "encoder.norm_out", channels)
    _conv(layout, "encoder.conv_out", 2 * z, channels, 3)
    channels = decoder_ch * mult[-1]
    _conv(layout, "decoder.conv_in", channels, z, 3)
    _resnet(layout, "decoder.mid.block_1", channels, channels)
    _attention(layout, "decoder.mid.attn_1", channels)
    _resnet(layout, "decoder.mid.block_2", channels, channels)
    for level in reversed(range(len(mult))):
        for block in range(blocks + 1):
            _resnet(layout, f"decoder.up.{level}.block.{block}", channels, decoder_ch * mult[level])
            channels = decoder_ch * mult[level]
        if level != 0:
            _conv(layout, f"decoder.up.{level}.upsample.conv", channels, channels, 3)
    _norm(layout, "decoder.norm_out", channels)
    _conv(layout, "decoder.conv_out", 3, channels, 3)
    _conv(layout, "quant_conv", 2 * z, 2 * z, 1)
    _conv(layout, "post_quant_conv", z, z, 1)
    layout["bn.running_mean"] = ((4 * z,), "small")
    layout["bn.running_var"] = ((4 * z,), "var")
    return layout


def clip_l_layout(vocab: int = 49408, positions: int = 77, width: int = 768) -> Layout:
    """A CLIP-L text model in Hugging Face's key names, as ComfyUI detects it."""
    layout: Layout = {
        "text_model.embeddings.token_embedding.weight": ((vocab, width), "embed"),
        "text_model.embeddings.position_embedding.weight": ((positions, width), "embed"),
    }
    for index in range(12):
        prefix = f"text_model.encoder.layers.{index}."
        _norm(layout, f"{prefix}layer_norm1", width)
        for part in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _linear(layout, f"{prefix}self_attn.{part}", width, width, bias=True)
        _norm(layout, f"{prefix}layer_norm2", width)
        _linear(layout, f"{prefix}mlp.fc1", 4 * width, width, bias=True)
        _linear(layout, f"{prefix}mlp.fc2", width, 4 * width, bias=True)
    _norm(layout, "text_model.final_layer_norm", width)
    _linear(layout, "text_projection", width, width, bias=False)
    return layout


def parameter_count(layout: Layout) -> int:
    return sum(math.prod(shape) for shape, _ in layout.values())


def _tensors(layout: Layout, name: str, scale: float = 1.0) -> dict[str, Any]:
    """Seeded fp16 values for every key (numpy has no bfloat16)."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(SEED + zlib.crc32(name.encode())))
    tensors: dict[str, Any] = {}
    for key, (shape, init) in layout.items():
        if init == "ones":
            values = np.ones(shape, np.float32)
        elif init == "zeros":
            values = np.zeros(shape, np.float32)
        elif init == "var":
            values = 0.5 + rng.random(shape, np.float32)
        elif init in ("embed", "small"):
            values = rng.standard_normal(shape, np.float32) * np.float32(0.02)
        else:
            fan_in = math.prod(shape[1:])
            values = rng.standard_normal(shape, np.float32) * np.float32(scale / math.sqrt(fan_in))
        tensors[key] = values.astype(np.float16)
    return tensors


# folder -> (file name, layout, init scale)
def _files() -> dict[str, tuple[str, Callable[[], Layout], float]]:
    return {
        workflow.FOLDER_DIFFUSION_MODELS: (DIFFUSION_MODEL, flux2_layout, 1.0),
        workflow.FOLDER_TEXT_ENCODERS: (TEXT_ENCODER, clip_l_layout, 0.5),
        workflow.FOLDER_VAE: (VAE, flux2_vae_layout, 1.0),
    }


def _is_current(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as opened:
            return (opened.metadata() or {}).get("klein_bench_tiny") == FORMAT
    except Exception:  # a damaged or foreign file is rewritten
        return False


def write_file(path: Path, layout: Layout, scale: float) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    metadata = {
        "klein_bench_tiny": FORMAT,
        "description": "random weights for testing klein-bench; not a trained model",
    }
    save_file(_tensors(layout, path.name, scale), str(partial), metadata=metadata)
    # ComfyUI may list the folder at any moment: it must never see half a file.
    os.replace(partial, path)


def model_folders(client: ComfyUIClient) -> dict[str, Path]:
    """The first folder ComfyUI searches for each of the three files."""
    try:
        folders = client.folder_paths()
    except ComfyUIError:
        folders = None
    chosen: dict[str, Path] = {}
    for folder in workflow.FILE_INPUTS:
        # Builds before the text_encoders folder called it clip.
        paths = (folders or {}).get(folder) or (
            (folders or {}).get("clip") if folder == workflow.FOLDER_TEXT_ENCODERS else None
        )
        if not paths:
            raise KleinBenchError(
                "This ComfyUI does not say where its model folders are (GET "
                "/internal/folder_paths), so the tiny test model cannot be put there: update "
                "ComfyUI, or use the diffusers runtime for the tiny model."
            )
        chosen[folder] = Path(paths[0])
    return chosen


def install(client: ComfyUIClient, note: Callable[[str], None]) -> workflow.ModelFiles:
    """Write the tiny files into ComfyUI's model folders (unless current copies are there)
    and wait until ComfyUI lists them; their names as ComfyUI lists them."""
    written = []
    for folder, target in model_folders(client).items():
        name, layout, scale = _files()[folder]
        path = target / SUBFOLDER / name
        if _is_current(path):
            continue
        try:
            write_file(path, layout(), scale)
        except OSError as exc:
            raise KleinBenchError(
                f"Cannot write the tiny test model to {path} ({exc.strerror or exc}): make "
                "ComfyUI's model folders writable for this user, then run klein-bench again."
            ) from exc
        written.append(str(path))
    if written:
        note(f"Wrote the tiny test model's files for ComfyUI: {', '.join(written)}.")
    return _listed(client)


def _listed(client: ComfyUIClient) -> workflow.ModelFiles:
    from klein_bench.backends.comfyui.preflight import listings

    wanted = {
        workflow.FOLDER_DIFFUSION_MODELS: DIFFUSION_MODEL,
        workflow.FOLDER_TEXT_ENCODERS: TEXT_ENCODER,
        workflow.FOLDER_VAE: VAE,
    }
    deadline = time.monotonic() + LISTING_WAIT_S
    while True:
        found = {}
        for folder, names in listings(client.object_info()).items():
            for name in names:
                parts = name.replace("\\", "/").split("/")
                if parts[-2:] == [SUBFOLDER, wanted[folder]]:
                    found[folder] = name
        if len(found) == len(wanted):
            return workflow.ModelFiles(
                found[workflow.FOLDER_DIFFUSION_MODELS],
                found[workflow.FOLDER_TEXT_ENCODERS],
                found[workflow.FOLDER_VAE],
                "fp16",
            )
        if time.monotonic() > deadline:
            raise KleinBenchError(
                "ComfyUI does not list the tiny test model's files it was given (in a "
                f"{SUBFOLDER}/ subfolder of its model folders): restart ComfyUI, then run "
                "klein-bench again."
            )
        time.sleep(0.5)
