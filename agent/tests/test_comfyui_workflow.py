"""The built-in ComfyUI graph for each model (the official templates' distilled and base
graphs), checked against ComfyUI's node definitions."""

from __future__ import annotations

import copy

import pytest
from comfyui_nodes import object_info, validate_prompt
from comfyui_server import KLEIN_NODE_TYPES, Behaviour

from klein_bench.backends.comfyui import workflow
from klein_bench.contract.models import KLEIN_4B, KLEIN_9B, KLEIN_BASE_4B, KLEIN_BASE_9B
from klein_bench.contract.protocol import CURRENT

KLEIN_4B_FILES = KLEIN_4B.comfyui

FILES = workflow.ModelFiles(
    "flux-2-klein-4b-fp8.safetensors", "qwen_3_4b.safetensors", "flux2-vae.safetensors", "fp8"
)


def node_info(behaviour: Behaviour) -> dict:
    return object_info(
        behaviour.files,
        clip_type_flux2=behaviour.clip_type_flux2,
        missing_nodes=behaviour.missing_nodes,
    )


def graph(prompt: str = "A cat holding a sign that says hello world", seed: int = 0) -> dict:
    return workflow.build_workflow(FILES, CURRENT, prompt=prompt, seed=seed)


def test_built_in_graph_passes_comfyuis_validation():
    assert validate_prompt(graph(), node_info(Behaviour())) == (None, {})


def test_graph_is_the_distilled_klein_template_with_the_protocols_numbers():
    def node(class_type, title, **inputs):
        return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}

    assert graph("A red fox", 7) == {
        "1": node(
            "UNETLoader",
            "Load Diffusion Model",
            unet_name="flux-2-klein-4b-fp8.safetensors",
            weight_dtype="default",
        ),
        "2": node(
            "CLIPLoader",
            "Load CLIP",
            clip_name="qwen_3_4b.safetensors",
            type="flux2",
            device="default",
        ),
        "3": node("VAELoader", "Load VAE", vae_name="flux2-vae.safetensors"),
        "4": node("CLIPTextEncode", "Prompt", text="A red fox", clip=["2", 0]),
        "5": node("ConditioningZeroOut", "Empty negative", conditioning=["4", 0]),
        "6": node(
            "CFGGuider",
            "CFG Guider",
            model=["1", 0],
            positive=["4", 0],
            negative=["5", 0],
            cfg=1.0,
        ),
        "7": node("RandomNoise", "Noise", noise_seed=7),
        "8": node("KSamplerSelect", "Sampler", sampler_name="euler"),
        "9": node("Flux2Scheduler", "Scheduler", steps=4, width=1024, height=1024),
        "10": node(
            "EmptyFlux2LatentImage", "Empty Flux 2 Latent", width=1024, height=1024, batch_size=1
        ),
        "11": node(
            "SamplerCustomAdvanced",
            "Sample",
            noise=["7", 0],
            guider=["6", 0],
            sampler=["8", 0],
            sigmas=["9", 0],
            latent_image=["10", 0],
        ),
        "12": node("VAEDecode", "VAE Decode", samples=["11", 0], vae=["3", 0]),
        "13": node("PreviewImage", "Preview", images=["12", 0]),
    }


def test_stand_in_rejects_broken_graphs_the_way_comfyui_does():
    broken = copy.deepcopy(graph())
    del broken["4"]["inputs"]["clip"]
    broken["8"]["inputs"]["sampler_name"] = "warp_drive"
    broken["6"]["inputs"]["model"] = ["2", 0]
    broken["9"]["inputs"]["steps"] = 0

    error, node_errors = validate_prompt(broken, node_info(Behaviour()))

    assert error["type"] == "prompt_outputs_failed_validation"
    assert {
        node_id: [e["type"] for e in entry["errors"]] for node_id, entry in node_errors.items()
    } == {
        "4": ["required_input_missing"],
        "6": ["return_type_mismatch"],
        "8": ["value_not_in_list"],
        "9": ["value_smaller_than_min"],
    }


def test_unknown_node_type_is_rejected_as_missing():
    error, node_errors = validate_prompt(
        graph(), node_info(Behaviour(missing_nodes=("Flux2Scheduler",)))
    )

    assert error == {
        "type": "missing_node_type",
        "message": "Node 'Scheduler' not found. The custom node may not be installed.",
        "details": "Node ID '#9'",
        "extra_info": {"node_id": "9", "class_type": "Flux2Scheduler", "node_title": "Scheduler"},
    }
    assert node_errors == {}


def test_old_builds_are_told_apart_by_missing_nodes_and_clip_types():
    old = node_info(Behaviour(missing_nodes=KLEIN_NODE_TYPES, clip_type_flux2=False))

    assert workflow.missing_node_types(graph(), old) == ["EmptyFlux2LatentImage", "Flux2Scheduler"]
    assert workflow.incompatibilities(graph(), old) == ["CLIPLoader does not offer type 'flux2'"]
    assert workflow.incompatibilities(graph(), node_info(Behaviour())) == []


def test_model_files_are_read_from_both_combo_forms():
    info = node_info(Behaviour())
    info["UNETLoader"]["input"]["required"]["unet_name"] = [
        "COMBO",
        {"options": ["flux-2-klein-4b-fp8.safetensors"]},
    ]

    assert workflow.file_listing(info, "diffusion_models") == ["flux-2-klein-4b-fp8.safetensors"]
    assert workflow.file_listing(info, "vae") == ["flux2-vae.safetensors", "pixel_space"]


def test_files_in_subfolders_keep_the_name_comfyui_lists():
    files, missing = workflow.resolve_files(
        {
            "diffusion_models": ["sdxl.safetensors", "klein\\flux-2-klein-4b-fp8.safetensors"],
            "text_encoders": ["flux2/qwen_3_4b.safetensors"],
            "vae": ["flux2-vae.safetensors", "pixel_space"],
        },
        KLEIN_4B_FILES,
    )

    assert missing == []
    assert files == workflow.ModelFiles(
        "klein\\flux-2-klein-4b-fp8.safetensors",
        "flux2/qwen_3_4b.safetensors",
        "flux2-vae.safetensors",
        "fp8",
    )
    assert files.diffusion_model_basename == "flux-2-klein-4b-fp8.safetensors"


def test_fp8_file_wins_and_bf16_file_is_used_without_it():
    both = {
        "diffusion_models": ["flux-2-klein-4b.safetensors", "flux-2-klein-4b-fp8.safetensors"],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": ["flux2-vae.safetensors"],
    }
    only_bf16 = {**both, "diffusion_models": ["flux-2-klein-4b.safetensors"]}

    picked = {
        (name, choice): workflow.resolve_files(listing, KLEIN_4B_FILES, choice)[0]
        for name, listing in (("both", both), ("bf16", only_bf16))
        for choice in ("auto", "bf16", "fp8")
    }

    assert {
        key: files and (files.diffusion_model, files.weights) for key, files in picked.items()
    } == {
        ("both", "auto"): ("flux-2-klein-4b-fp8.safetensors", "fp8"),
        ("both", "bf16"): ("flux-2-klein-4b.safetensors", "bf16"),
        ("both", "fp8"): ("flux-2-klein-4b-fp8.safetensors", "fp8"),
        ("bf16", "auto"): ("flux-2-klein-4b.safetensors", "bf16"),
        ("bf16", "bf16"): ("flux-2-klein-4b.safetensors", "bf16"),
        ("bf16", "fp8"): None,
    }


def test_missing_files_are_named_with_their_folder():
    files, missing = workflow.resolve_files(
        {
            "diffusion_models": ["flux-2-klein-base-4b.safetensors"],
            "text_encoders": [],
            "vae": ["flux2-vae.safetensors"],
        },
        KLEIN_4B_FILES,
    )

    assert files is None
    assert missing == [
        "diffusion_models/flux-2-klein-4b-fp8.safetensors",
        "text_encoders/qwen_3_4b.safetensors",
    ]


def test_a_base_models_graph_is_the_templates_base_graph_with_its_protocols_guidance():
    files = workflow.ModelFiles(
        "flux-2-klein-base-4b.safetensors", "qwen_3_4b.safetensors", "flux2-vae.safetensors", "bf16"
    )
    base = workflow.build_workflow(files, KLEIN_BASE_4B.protocol, prompt="A red fox", seed=7)

    assert base[workflow.NEGATIVE] == {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "", "clip": [workflow.CLIP, 0]},
        "_meta": {"title": "Negative prompt"},
    }
    assert base[workflow.GUIDER]["inputs"]["cfg"] == 4.0
    assert base[workflow.SCHEDULER]["inputs"]["steps"] == 50
    with_base = Behaviour()
    with_base.files["diffusion_models"].append("flux-2-klein-base-4b.safetensors")
    assert validate_prompt(base, node_info(with_base)) == (None, {})
    # The constant negative prompt is served from ComfyUI's cache after the first image.
    assert not workflow.is_per_image(base, workflow.NEGATIVE)
    assert workflow.is_per_image(base, workflow.POSITIVE)
    assert workflow.is_per_image(graph(), workflow.NEGATIVE)


@pytest.mark.parametrize(
    ("entry", "listing", "expected"),
    [
        (
            KLEIN_9B,
            ["flux-2-klein-9b-fp8.safetensors", "qwen_3_8b_fp8mixed.safetensors"],
            ("flux-2-klein-9b-fp8.safetensors", "qwen_3_8b_fp8mixed.safetensors", "fp8"),
        ),
        (
            KLEIN_9B,
            ["flux-2-klein-9b.safetensors", "qwen_3_8b.safetensors"],
            ("flux-2-klein-9b.safetensors", "qwen_3_8b.safetensors", "bf16"),
        ),
        (
            KLEIN_BASE_9B,
            ["flux-2-klein-base-9b-fp8.safetensors", "qwen_3_8b.safetensors"],
            ("flux-2-klein-base-9b-fp8.safetensors", "qwen_3_8b.safetensors", "fp8"),
        ),
        (
            KLEIN_BASE_4B,
            [
                "flux-2-klein-4b-fp8.safetensors",
                "flux-2-klein-base-4b.safetensors",
                "qwen_3_4b.safetensors",
            ],
            ("flux-2-klein-base-4b.safetensors", "qwen_3_4b.safetensors", "bf16"),
        ),
    ],
    ids=["9b-fp8", "9b-bf16", "base-9b", "base-4b-not-the-distilled-file"],
)
def test_each_model_runs_its_own_files(entry, listing, expected):
    listings = {
        "diffusion_models": [n for n in listing if "klein" in n],
        "text_encoders": [n for n in listing if "qwen" in n],
        "vae": ["flux2-vae.safetensors"],
    }

    files, missing = workflow.resolve_files(listings, entry.comfyui)

    assert missing == []
    assert (files.diffusion_model, files.text_encoder, files.weights) == expected


def test_the_9bs_missing_files_are_named_by_the_templates_names():
    listings = {
        "diffusion_models": ["flux-2-klein-4b-fp8.safetensors"],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": [],
    }

    files, missing = workflow.resolve_files(listings, KLEIN_9B.comfyui)

    assert files is None
    assert missing == [
        "diffusion_models/flux-2-klein-9b-fp8.safetensors",
        "text_encoders/qwen_3_8b_fp8mixed.safetensors",
        "vae/flux2-vae.safetensors",
    ]
