"""The built-in ComfyUI workflow for FLUX.2 [klein] text-to-image, every model's.

The graph is the API-format form of ComfyUI's own templates (Comfy-Org/workflow_templates:
image_flux2_klein_text_to_image for the 4B, "Text to Image (Flux.2 Klein 9B)" for the 9B),
which share one graph: UNETLoader -> CFGGuider <- CLIPTextEncode (prompt) and the negative
<- CLIPLoader(type flux2), RandomNoise + KSamplerSelect(euler) + Flux2Scheduler +
EmptyFlux2LatentImage -> SamplerCustomAdvanced -> VAEDecode <- VAELoader -> PreviewImage.
A distilled model's negative is ConditioningZeroOut of the prompt and its CFG 1 (the
templates' distilled graph); a base model's negative is CLIPTextEncode of the protocol's
negative prompt and its CFG the protocol's guidance (the templates' base graph, which runs
two passes per step). The files come from the model's registry entry; every number that
matters comes from the protocol. docs/comfyui.md lists the sources.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from klein_bench.contract.protocol import Protocol
from klein_bench.contract.registry import ComfyUIFiles

# Which diffusion model file runs: the registry lists the model's files by how they store
# their weights; `auto` prefers FP8 (the 12 GB recipes' file) and falls back to BF16 (the
# file ComfyUI's 4B template names).
WEIGHT_CHOICES = ("auto", "fp8", "bf16")

FOLDER_DIFFUSION_MODELS = "diffusion_models"
FOLDER_TEXT_ENCODERS = "text_encoders"
FOLDER_VAE = "vae"

# Where each model file shows up in /object_info: (node, input).
FILE_INPUTS = {
    FOLDER_DIFFUSION_MODELS: ("UNETLoader", "unet_name"),
    FOLDER_TEXT_ENCODERS: ("CLIPLoader", "clip_name"),
    FOLDER_VAE: ("VAELoader", "vae_name"),
}

# Stable node ids, so results and errors name the same node every time.
UNET, CLIP, VAE_LOADER, POSITIVE, NEGATIVE, GUIDER = "1", "2", "3", "4", "5", "6"
NOISE, SAMPLER_SELECT, SCHEDULER, LATENT, SAMPLER, DECODE, OUTPUT = (
    "7",
    "8",
    "9",
    "10",
    "11",
    "12",
    "13",
)

# The benchmark stage a failing node belongs to. ComfyUI moves weights to the GPU
# lazily, inside the node that first needs them: the transformer inside the sampler,
# the text encoder inside CLIPTextEncode, the VAE inside VAEDecode.
STAGE_BY_NODE_TYPE = {
    "UNETLoader": "load",
    "CLIPLoader": "load",
    "VAELoader": "load",
    "CLIPTextEncode": "text_encoding",
    "ConditioningZeroOut": "text_encoding",
    "CFGGuider": "denoising",
    "RandomNoise": "denoising",
    "KSamplerSelect": "denoising",
    "Flux2Scheduler": "denoising",
    "EmptyFlux2LatentImage": "denoising",
    "SamplerCustomAdvanced": "denoising",
    "VAEDecode": "vae_decode",
    "PreviewImage": "other",
}

LOADER_TYPES = ("UNETLoader", "CLIPLoader", "VAELoader")


def is_per_image(graph: dict[str, dict[str, Any]], node_id: str) -> bool:
    """Whether the node's work is part of every image. A base model's negative prompt is
    the same text every run: ComfyUI encodes it once and serves it from its cache after,
    as it does for any user of the template."""
    node = graph.get(node_id) or {}
    if node_id == NEGATIVE and node.get("class_type") == "CLIPTextEncode":
        return False
    return node.get("class_type") in PER_IMAGE_NODE_TYPES


# Nodes whose work is part of every image. If ComfyUI serves one of them from its
# cache, the run did not do the work it is timed for.
PER_IMAGE_NODE_TYPES = (
    "CLIPTextEncode",
    "ConditioningZeroOut",
    "RandomNoise",
    "SamplerCustomAdvanced",
    "VAEDecode",
    "PreviewImage",
)


@dataclass(frozen=True)
class ModelFiles:
    """The names ComfyUI lists for the three files (they may include a subfolder), and
    how the diffusion model file stores its weights ("fp8" or "bf16")."""

    diffusion_model: str
    text_encoder: str
    vae: str
    weights: str

    @property
    def diffusion_model_basename(self) -> str:
        return basename(self.diffusion_model)


def basename(name: str) -> str:
    # ComfyUI on Windows lists files in subfolders with backslashes.
    return posixpath.basename(name.replace("\\", "/"))


def _find(listed: list[str], wanted: str) -> str | None:
    for name in listed:
        if basename(name) == wanted:
            return name
    return None


def resolve_files(
    listings: dict[str, list[str]], files: ComfyUIFiles, choice: str = "auto"
) -> tuple[ModelFiles | None, list[str]]:
    """Pick the model's three files from ComfyUI's listings; the folder/file pairs missing.

    `choice` is "fp8", "bf16" or "auto" (the first of the model's diffusion model files
    ComfyUI lists, FP8 first). The text encoder is the first of the model's that is listed.
    """
    listed_models = listings.get(FOLDER_DIFFUSION_MODELS, [])
    wanted = [c for c in files.diffusion_models if choice in ("auto", c)]
    weights = diffusion_model = None
    for candidate in wanted:
        diffusion_model = _find(listed_models, files.diffusion_models[candidate])
        if diffusion_model is not None:
            weights = candidate
            break
    listed_encoders = listings.get(FOLDER_TEXT_ENCODERS, [])
    text_encoder = next(
        (found for name in files.text_encoders if (found := _find(listed_encoders, name))), None
    )
    vae = _find(listings.get(FOLDER_VAE, []), files.vae)
    missing = []
    if diffusion_model is None:
        first = files.diffusion_models[wanted[0]] if wanted else choice
        missing.append(f"{FOLDER_DIFFUSION_MODELS}/{first}")
    if text_encoder is None:
        missing.append(f"{FOLDER_TEXT_ENCODERS}/{files.text_encoders[0]}")
    if vae is None:
        missing.append(f"{FOLDER_VAE}/{files.vae}")
    if missing:
        return None, missing
    assert diffusion_model and text_encoder and vae and weights
    return ModelFiles(diffusion_model, text_encoder, vae, weights), []


def build_workflow(
    files: ModelFiles,
    protocol: Protocol,
    *,
    prompt: str,
    seed: int,
    width: int | None = None,
    height: int | None = None,
) -> dict[str, dict[str, Any]]:
    """The API-format graph for one image (at the protocol's size unless given)."""
    width = width or protocol.width
    height = height or protocol.height

    def node(class_type: str, title: str, **inputs: Any) -> dict[str, Any]:
        return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}

    return {
        UNET: node(
            "UNETLoader",
            "Load Diffusion Model",
            unet_name=files.diffusion_model,
            weight_dtype="default",
        ),
        CLIP: node(
            "CLIPLoader",
            "Load CLIP",
            clip_name=files.text_encoder,
            type="flux2",
            device="default",
        ),
        VAE_LOADER: node("VAELoader", "Load VAE", vae_name=files.vae),
        POSITIVE: node("CLIPTextEncode", "Prompt", text=prompt, clip=[CLIP, 0]),
        NEGATIVE: (
            node("CLIPTextEncode", "Negative prompt", text=protocol.negative_prompt, clip=[CLIP, 0])
            if protocol.cfg
            else node("ConditioningZeroOut", "Empty negative", conditioning=[POSITIVE, 0])
        ),
        GUIDER: node(
            "CFGGuider",
            "CFG Guider",
            model=[UNET, 0],
            positive=[POSITIVE, 0],
            negative=[NEGATIVE, 0],
            cfg=protocol.guidance_scale,
        ),
        NOISE: node("RandomNoise", "Noise", noise_seed=seed),
        SAMPLER_SELECT: node("KSamplerSelect", "Sampler", sampler_name="euler"),
        SCHEDULER: node(
            "Flux2Scheduler",
            "Scheduler",
            steps=protocol.steps,
            width=width,
            height=height,
        ),
        LATENT: node(
            "EmptyFlux2LatentImage",
            "Empty Flux 2 Latent",
            width=width,
            height=height,
            batch_size=1,
        ),
        SAMPLER: node(
            "SamplerCustomAdvanced",
            "Sample",
            noise=[NOISE, 0],
            guider=[GUIDER, 0],
            sampler=[SAMPLER_SELECT, 0],
            sigmas=[SCHEDULER, 0],
            latent_image=[LATENT, 0],
        ),
        DECODE: node("VAEDecode", "VAE Decode", samples=[SAMPLER, 0], vae=[VAE_LOADER, 0]),
        # PreviewImage writes to ComfyUI's temp folder, so the benchmark leaves nothing
        # in the user's output folder; /view?type=temp serves the image back.
        OUTPUT: node("PreviewImage", "Preview", images=[DECODE, 0]),
    }


def _input_specs(info: dict[str, Any]) -> dict[str, Any]:
    inputs = info.get("input") or {}
    specs: dict[str, Any] = {}
    for section in ("required", "optional"):
        specs.update(inputs.get(section) or {})
    return specs


def combo_options(spec: Any) -> list[Any] | None:
    """The choices of a combo input in either form /object_info uses, else None.

    Classic nodes list the choices as the type (`[[...], {...}]`); nodes written
    against ComfyUI's newer node API send `["COMBO", {"options": [...]}]`.
    """
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO":
        options = spec[1].get("options") if len(spec) > 1 and isinstance(spec[1], dict) else None
        return options if isinstance(options, list) else []
    return None


def file_listing(object_info: dict[str, Any], folder: str) -> list[str]:
    """The files ComfyUI offers for a model folder, read from its loader node's input."""
    node_type, input_name = FILE_INPUTS[folder]
    spec = _input_specs(object_info.get(node_type) or {}).get(input_name)
    options = combo_options(spec)
    return [name for name in options or [] if isinstance(name, str)]


def missing_node_types(
    workflow: dict[str, dict[str, Any]], object_info: dict[str, Any]
) -> list[str]:
    return sorted({n["class_type"] for n in workflow.values()} - set(object_info))


def incompatibilities(
    workflow: dict[str, dict[str, Any]], object_info: dict[str, Any]
) -> list[str]:
    """What this ComfyUI build lacks to run the graph, besides the model files.

    Names unknown inputs, required inputs the graph does not set, and fixed choices
    (e.g. CLIPLoader's type "flux2") the build does not offer.
    """
    file_inputs = set(FILE_INPUTS.values())
    problems = []
    for node in workflow.values():
        class_type = node["class_type"]
        info = object_info.get(class_type)
        if not isinstance(info, dict):
            continue
        specs = _input_specs(info)
        required = (info.get("input") or {}).get("required") or {}
        for name in required:
            if name not in node["inputs"]:
                problems.append(f"{class_type} needs an input {name!r} this agent does not set")
        for name, value in node["inputs"].items():
            if name not in specs:
                problems.append(f"{class_type} has no input {name!r}")
                continue
            if (class_type, name) in file_inputs or isinstance(value, list):
                continue
            options = combo_options(specs[name])
            if options is not None and value not in options:
                problems.append(f"{class_type} does not offer {name} {value!r}")
    return problems
