"""The nodes of the stand-in ComfyUI (tests/comfyui_server.py): their `/object_info`
definitions, `POST /prompt`'s validation, and how ComfyUI walks a graph (execution
order, cache keys) and what it outputs (a PNG).

They follow ComfyUI's own definitions (nodes.py, comfy_extras/nodes_flux.py,
comfy_extras/nodes_custom_sampler.py; docs/comfyui.md has the sources), in both combo
forms ComfyUI sends, and execution.validate_prompt's checks and answer shapes.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any

MAX_RESOLUTION = 16384

# CLIPLoader's `type` choices in current ComfyUI (nodes.py); builds from before FLUX.2
# support stop at "hunyuan_image".
CLIP_TYPES = [
    "stable_diffusion",
    "stable_cascade",
    "sd3",
    "stable_audio",
    "mochi",
    "ltxv",
    "pixart",
    "cosmos",
    "lumina2",
    "wan",
    "hidream",
    "chroma",
    "ace",
    "omnigen2",
    "qwen_image",
    "hunyuan_image",
    "flux2",
    "ovis",
    "longcat_image",
    "cogvideox",
    "lens",
    "pixeldit",
    "ideogram4",
]
OLD_CLIP_TYPES = CLIP_TYPES[: CLIP_TYPES.index("flux2")]
SAMPLER_NAMES = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "res_multistep",
    "gradient_estimation",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
]
KLEIN_NODE_TYPES = ("EmptyFlux2LatentImage", "Flux2Scheduler")


def _info(
    name: str,
    required: dict[str, Any],
    outputs: list[str],
    *,
    category: str,
    module: str = "nodes",
    optional: dict[str, Any] | None = None,
    hidden: dict[str, Any] | None = None,
    output_names: list[str] | None = None,
    output_node: bool = False,
    display_name: str | None = None,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    if optional:
        inputs["optional"] = optional
    if hidden:
        inputs["hidden"] = hidden
    return {
        "input": inputs,
        "input_order": {section: list(values) for section, values in inputs.items()},
        "output": outputs,
        "output_is_list": [False] * len(outputs),
        "output_name": output_names or outputs,
        "name": name,
        "display_name": display_name or name,
        "description": "",
        "python_module": module,
        "category": category,
        "output_node": output_node,
    }


def object_info(
    files: dict[str, list[str]],
    *,
    clip_type_flux2: bool = True,
    missing_nodes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """ComfyUI's definitions of the nodes the Klein workflow uses (plus one it does not)."""
    clip_types = CLIP_TYPES if clip_type_flux2 else OLD_CLIP_TYPES
    int_opts = {"default": 1024, "min": 16, "max": MAX_RESOLUTION}
    nodes = {
        # nodes.py: classic node definitions, combos as `[[choices], {...}]`.
        "UNETLoader": _info(
            "UNETLoader",
            {
                "unet_name": [list(files.get("diffusion_models", []))],
                "weight_dtype": [
                    ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],
                    {"advanced": True},
                ],
            },
            ["MODEL"],
            category="advanced/loaders",
            display_name="Load Diffusion Model",
        ),
        "CLIPLoader": _info(
            "CLIPLoader",
            {"clip_name": [list(files.get("text_encoders", []))], "type": [clip_types]},
            ["CLIP"],
            optional={"device": [["default", "cpu"], {"advanced": True}]},
            category="advanced/loaders",
            display_name="Load CLIP",
        ),
        "VAELoader": _info(
            "VAELoader",
            {"vae_name": [[*files.get("vae", []), "pixel_space"]]},
            ["VAE"],
            category="loaders",
            display_name="Load VAE",
        ),
        "CLIPTextEncode": _info(
            "CLIPTextEncode",
            {
                "text": ["STRING", {"multiline": True, "dynamicPrompts": True}],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            },
            ["CONDITIONING"],
            category="conditioning",
            display_name="CLIP Text Encode (Prompt)",
        ),
        "ConditioningZeroOut": _info(
            "ConditioningZeroOut",
            {"conditioning": ["CONDITIONING"]},
            ["CONDITIONING"],
            category="advanced/conditioning",
        ),
        "VAEDecode": _info(
            "VAEDecode",
            {"samples": ["LATENT"], "vae": ["VAE"]},
            ["IMAGE"],
            category="latent",
            display_name="VAE Decode",
        ),
        "PreviewImage": _info(
            "PreviewImage",
            {"images": ["IMAGE"]},
            [],
            hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            category="image",
            output_node=True,
            display_name="Preview Image",
        ),
        "KSampler": _info(
            "KSampler",
            {
                "model": ["MODEL"],
                "seed": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
                "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}],
                "sampler_name": [SAMPLER_NAMES],
                "scheduler": [["simple", "normal", "karras", "exponential", "beta"]],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
            },
            ["LATENT"],
            category="sampling",
        ),
        # comfy_extras/nodes_custom_sampler.py: newer node API, combos as
        # `["COMBO", {"options": [...]}]`.
        "CFGGuider": _info(
            "CFGGuider",
            {
                "model": ["MODEL", {}],
                "positive": ["CONDITIONING", {}],
                "negative": ["CONDITIONING", {}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1}],
            },
            ["GUIDER"],
            category="sampling/custom_sampling/guiders",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "RandomNoise": _info(
            "RandomNoise",
            {
                "noise_seed": [
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "control_after_generate": True,
                    },
                ]
            },
            ["NOISE"],
            category="sampling/custom_sampling/noise",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "KSamplerSelect": _info(
            "KSamplerSelect",
            {"sampler_name": ["COMBO", {"options": SAMPLER_NAMES}]},
            ["SAMPLER"],
            category="sampling/custom_sampling/samplers",
            module="comfy_extras.nodes_custom_sampler",
        ),
        "SamplerCustomAdvanced": _info(
            "SamplerCustomAdvanced",
            {
                "noise": ["NOISE", {}],
                "guider": ["GUIDER", {}],
                "sampler": ["SAMPLER", {}],
                "sigmas": ["SIGMAS", {}],
                "latent_image": ["LATENT", {}],
            },
            ["LATENT", "LATENT"],
            output_names=["output", "denoised_output"],
            category="sampling/custom_sampling",
            module="comfy_extras.nodes_custom_sampler",
        ),
        # comfy_extras/nodes_flux.py: the FLUX.2 nodes.
        "EmptyFlux2LatentImage": _info(
            "EmptyFlux2LatentImage",
            {
                "width": ["INT", {**int_opts, "step": 16}],
                "height": ["INT", {**int_opts, "step": 16}],
                "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            },
            ["LATENT"],
            category="latent",
            module="comfy_extras.nodes_flux",
            display_name="Empty Flux 2 Latent",
        ),
        "Flux2Scheduler": _info(
            "Flux2Scheduler",
            {
                "steps": ["INT", {"default": 20, "min": 1, "max": 4096}],
                "width": ["INT", {**int_opts, "step": 1}],
                "height": ["INT", {**int_opts, "step": 1}],
            },
            ["SIGMAS"],
            category="sampling/custom_sampling/schedulers",
            module="comfy_extras.nodes_flux",
        ),
    }
    for name in missing_nodes:
        nodes.pop(name, None)
    return nodes


def validate_prompt(
    graph: dict[str, Any], info: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """execution.validate_prompt's checks and answer shapes."""
    outputs = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in info:
            title = (
                (node.get("_meta") or {}).get("title", class_type)
                if isinstance(node, dict)
                else None
            )
            return {
                "type": "missing_node_type",
                "message": f"Node '{title}' not found. The custom node may not be installed.",
                "details": f"Node ID '#{node_id}'",
                "extra_info": {"node_id": node_id, "class_type": class_type, "node_title": title},
            }, {}
        if info[class_type]["output_node"]:
            outputs.append(node_id)
    if not outputs:
        return {
            "type": "prompt_no_outputs",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        }, {}
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        reasons = _validate_inputs(graph, node, info)
        if reasons:
            node_errors[node_id] = {
                "errors": reasons,
                "dependent_outputs": outputs,
                "class_type": node["class_type"],
            }
    if node_errors:
        details = "\n".join(
            f"{r['message']}: {r['details']}" for e in node_errors.values() for r in e["errors"]
        )
        return {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }, node_errors
    return None, {}


def _validate_inputs(graph: dict[str, Any], node: dict[str, Any], info: dict[str, Any]) -> list:
    definition = info[node["class_type"]]["input"]
    inputs = node.get("inputs") or {}
    reasons = []
    for section in ("required", "optional"):
        for name, spec in (definition.get(section) or {}).items():
            input_type, options = spec[0], spec[1] if len(spec) > 1 else {}
            if name not in inputs:
                if section == "required":
                    reasons.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2 or value[0] not in graph:
                    reasons.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of "
                            "[node_id, slot_index]",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                    continue
                produced = info[graph[value[0]]["class_type"]]["output"]
                received = produced[value[1]] if value[1] < len(produced) else None
                if received != input_type:
                    reasons.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{name}, received_type({received}) mismatch "
                            f"input_type({input_type})",
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            try:
                if input_type == "INT":
                    value = int(value)
                elif input_type == "FLOAT":
                    value = float(value)
                elif input_type == "STRING":
                    value = str(value)
            except (TypeError, ValueError) as ex:
                reasons.append(
                    {
                        "type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{name}, {value}, {ex}",
                        "extra_info": {"input_name": name},
                    }
                )
                continue
            if "min" in options and value < options["min"]:
                reasons.append(
                    {
                        "type": "value_smaller_than_min",
                        "message": f"Value {value} smaller than min of {options['min']}",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            if "max" in options and value > options["max"]:
                reasons.append(
                    {
                        "type": "value_bigger_than_max",
                        "message": f"Value {value} bigger than max of {options['max']}",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            choices = (
                input_type
                if isinstance(input_type, list)
                else (options.get("options") if input_type == "COMBO" else None)
            )
            if choices is not None and value not in choices:
                reasons.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{name}: {value!r} not in {choices}",
                        "extra_info": {"input_name": name, "received_value": value},
                    }
                )
    return reasons


# --- graphs ------------------------------------------------------------------------


def png(width: int, height: int, seed: int) -> bytes:
    """A small RGB PNG whose pattern depends on the seed."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(
                [(x * 4 + seed * 37) % 256, (y * 4 + seed * 91) % 256, ((x ^ y) * 8 + seed) % 256]
            )
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body))

    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def output_id(graph: dict[str, Any]) -> str:
    return next((n for n, node in graph.items() if node["class_type"] == "PreviewImage"), "")


def seed_of(graph: dict[str, Any]) -> int:
    for node in graph.values():
        if node["class_type"] == "RandomNoise":
            return int(node["inputs"]["noise_seed"])
    return 0


def execution_order(graph: dict[str, Any]) -> list[str]:
    """The order ComfyUI 0.27.0 ran the Klein graph in: from the output node, each node's
    linked inputs last to first, depth first (VAELoader first, UNETLoader late)."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in reversed(list(graph[node_id]["inputs"].values())):
            if isinstance(value, list):
                visit(value[0])
        order.append(node_id)

    for node_id in graph:
        if graph[node_id]["class_type"] == "PreviewImage":
            visit(node_id)
    for node_id in graph:
        visit(node_id)
    return order


def signatures(graph: dict[str, Any]) -> dict[str, str]:
    """An input signature per node, as ComfyUI's cache keys outputs by."""
    memo: dict[str, str] = {}

    def sign(node_id: str) -> str:
        if node_id not in memo:
            node = graph[node_id]
            inputs = {
                name: (sign(value[0]), value[1]) if isinstance(value, list) else value
                for name, value in sorted(node["inputs"].items())
            }
            memo[node_id] = hashlib.sha256(
                json.dumps([node["class_type"], inputs], default=str).encode()
            ).hexdigest()
        return memo[node_id]

    for node_id in graph:
        sign(node_id)
    return memo
