"""What a model is, to every part of klein-bench: the type of a registry entry.

A `ModelSpec` holds all that differs from one model to the next: its protocols (the
current one first), its architecture (which sizes the work and the weights, and from which
the diffusers runtime builds the synthetic and tiny pipelines), where its weights come
from (the Hugging Face repository and its diffusers subfolders; the ComfyUI files of the
official template), its presets, its licence and its words. The entries themselves are in
klein_bench.contract.models; nothing else in klein-bench names a particular model.

A tiny variant (`tiny_variant`) is the same entry at toy widths, built in code with random
weights: it runs the model's own protocols (guidance included) at 64x64 on a CPU in
seconds, through both runtimes, and its figures say nothing about the real model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.protocol import Protocol
from klein_bench.contract.work import Architecture, Work, work_per_image

TINY_SIZE = (64, 64)
# The diffusers folder of a FLUX.2 [klein] repository: model_index.json and these.
DIFFUSERS_SUBFOLDERS = ("transformer", "text_encoder", "vae", "tokenizer", "scheduler")


@dataclass(frozen=True)
class HuggingFaceWeights:
    """The diffusers weights: a repository (its own licence page may gate it) and the
    subfolders a complete copy has."""

    repo: str
    # BF16 weights on disk; the download wants this much free space and a little more.
    download_gib: float
    subfolders: tuple[str, ...] = DIFFUSERS_SUBFOLDERS
    # Whether the repository asks users to accept its licence first (`hf auth login`).
    gated: bool = False


@dataclass(frozen=True)
class ComfyUIFiles:
    """The files ComfyUI's official template for the model loads, by the names the
    template and ComfyUI's own downloads use."""

    # The official template (Comfy-Org/workflow_templates) whose graph the agent runs.
    template: str
    # The diffusion model by how it stores its weights ("fp8", "bf16"): `auto` runs the
    # first one ComfyUI lists, in this order.
    diffusion_models: dict[str, str]
    # Text encoder files the graph accepts, the template's first.
    text_encoders: tuple[str, ...]
    vae: str = "flux2-vae.safetensors"
    # Where the files can be downloaded, for the message that says what is missing.
    downloads: str = ""


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    name: str
    description: str
    licence: str
    architecture: Architecture
    # The protocols results of this model may carry, the current one first.
    protocols: tuple[Protocol, ...]
    hf: HuggingFaceWeights | None
    comfyui: ComfyUIFiles | None
    # The size the model is known by ("4.00"): the catalog's parameters_billion.
    parameters_billion: str | None
    sort_order: int
    commercial_use: bool = True
    licence_url: str = ""
    presets: tuple[str, ...] = tuple(PRESETS)
    # Where the architecture, defaults and files were read, for the docs and the pages.
    sources: tuple[str, ...] = ()
    # Built in code with random weights: runs anywhere, downloads nothing.
    built_in: bool = False
    # A tiny variant's real model, and a real model's tiny variant (slugs).
    tiny_of: str | None = None
    tiny: str | None = None
    # Only for tiny variants: their own size (real models run at their protocol's).
    size: tuple[int, int] | None = None

    @property
    def protocol(self) -> Protocol:
        """The current protocol: what `run` and `submit` run."""
        return self.protocols[0]

    def protocol_for(self, protocol_id: str) -> Protocol | None:
        """The model's protocol of this id; None when the id belongs to no protocol of it."""
        return next((p for p in self.protocols if p.id == protocol_id), None)

    @property
    def width(self) -> int:
        return self.size[0] if self.size else self.protocol.width

    @property
    def height(self) -> int:
        return self.size[1] if self.size else self.protocol.height

    @property
    def hf_repo(self) -> str | None:
        return self.hf.repo if self.hf else None

    @property
    def is_test_model(self) -> bool:
        return self.built_in

    def work(
        self, *, width: int, height: int, steps: int, protocol: Protocol | None = None
    ) -> Work:
        """The floating-point work of one image: the one call every figure of work comes
        from (the agent's work section, the server's stored work and share of peak, the
        physics check and the estimates). The protocol says the guidance passes."""
        protocol = protocol or self.protocol
        return work_per_image(
            self.architecture,
            width=width,
            height=height,
            steps=steps,
            text_tokens=protocol.max_sequence_length,
            guidance_passes=protocol.guidance_passes,
        )


def tiny_variant(
    model: ModelSpec, *, slug: str, name: str, architecture: Architecture, sort_order: int
) -> ModelSpec:
    """The model at toy widths, with its protocols: a test model built in code."""
    return dataclasses.replace(
        model,
        slug=slug,
        name=name,
        description=(
            f"A tiny randomly initialised {model.name} built in code by the agent, run with "
            f"{model.name}'s protocol at {TINY_SIZE[0]}x{TINY_SIZE[1]}. It runs the real "
            "diffusers (and ComfyUI) code path in seconds on a CPU; its figures say nothing "
            f"about {model.name} and are never mixed with it."
        ),
        architecture=architecture,
        hf=None,
        parameters_billion=None,
        sort_order=sort_order,
        sources=(),
        built_in=True,
        tiny_of=model.slug,
        tiny=None,
        size=TINY_SIZE,
    )
