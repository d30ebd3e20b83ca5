"""Looking up the registry's models, their protocols and presets by the names users type."""

from __future__ import annotations

from klein_bench.contract.catalog import PRESETS, Preset
from klein_bench.contract.models import MODELS
from klein_bench.contract.protocol import Protocol
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError

RUNTIMES = ("diffusers", "comfyui")


def model_spec(slug: str) -> ModelSpec:
    try:
        return MODELS[slug]
    except KeyError:
        raise KleinBenchError(
            f"Unknown model {slug!r}: choose one of {', '.join(MODELS)}."
        ) from None


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KleinBenchError(
            f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}."
        ) from None


def preset_of(spec: ModelSpec, name: str) -> Preset:
    """The preset, if the model has it (its entry lists the presets that exist for it)."""
    chosen = preset(name)
    if chosen.name not in spec.presets:
        raise KleinBenchError(
            f"{spec.name} has no preset {name!r}: choose one of {', '.join(spec.presets)}."
        )
    return chosen


def protocol_of(spec: ModelSpec, protocol: Protocol | None) -> Protocol:
    """The protocol to run: the model's current one, or one of its own (by id) when given."""
    if protocol is None:
        return spec.protocol
    if spec.protocol_for(protocol.id) is None:
        raise KleinBenchError(
            f"Protocol {protocol.id} is not one of {spec.name}'s "
            f"({', '.join(p.id for p in spec.protocols)})."
        )
    return protocol
