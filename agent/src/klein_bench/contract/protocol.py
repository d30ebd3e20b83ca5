"""The standardized generation protocols, versioned.

A protocol fixes everything about the generation that changes the numbers and is not a
configuration field: prompts, seeds, resolution, steps, guidance, the negative prompt of
classifier-free guidance, sequence length and how many runs are timed. Its hash (SHA-256
of its canonical JSON) goes into every result, and the server accepts only protocols it
knows by id and hash, for the model they belong to.

Each model owns its protocols: its registry entry (klein_bench.contract.models) lists
them, the current one first. This module defines the type, the first protocol (Klein 4B
distilled) that the others are made from with `dataclasses.replace`, and the lookup.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from klein_bench.contract.wire import canonical_json


@dataclass(frozen=True)
class Protocol:
    id: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    max_sequence_length: int
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    warmup_runs: int
    default_timed_runs: int
    min_timed_runs: int
    # Classifier-free guidance: the negative prompt encoded beside each prompt, the
    # transformer run for both at every step. None for a distilled model (no CFG). A field
    # added after klein4b-t2i-v1: left out of the hash while None, so that protocol's hash
    # stays what results already carry.
    negative_prompt: str | None = None

    @property
    def cfg(self) -> bool:
        return self.negative_prompt is not None and self.guidance_scale > 1

    @property
    def guidance_passes(self) -> int:
        """Transformer passes per step (and prompts encoded per image): 2 with CFG."""
        return 2 if self.cfg else 1

    def definition(self) -> dict:
        """What the hash covers: every field, less those added later while unset."""
        fields = asdict(self)
        if fields["negative_prompt"] is None:
            del fields["negative_prompt"]
        return fields

    @property
    def hash(self) -> str:
        return "sha256:" + hashlib.sha256(canonical_json(self.definition())).hexdigest()

    def prompt_and_seed(self, run_index: int) -> tuple[str, int]:
        """The prompt and seed of timed run `run_index` (0-based); they cycle."""
        return (
            self.prompts[run_index % len(self.prompts)],
            self.seeds[run_index % len(self.seeds)],
        )


KLEIN4B_T2I_V1 = Protocol(
    id="klein4b-t2i-v1",
    width=1024,
    height=1024,
    steps=4,
    guidance_scale=1.0,
    max_sequence_length=512,
    prompts=(
        "A cat holding a sign that says hello world",
        "A red fox sitting in fresh snow at sunrise, photograph",
        "An isometric illustration of a tiny island with a lighthouse",
        "A bowl of ramen on a wooden table, studio lighting",
        "A watercolor painting of a sailboat on a calm lake",
        "A futuristic city street at night with neon signs in the rain",
        "A close-up portrait of an old man with a white beard, film grain",
        "A vintage bicycle leaning against a yellow wall",
    ),
    seeds=(0, 1, 2, 3, 4, 5, 6, 7),
    warmup_runs=1,
    default_timed_runs=5,
    min_timed_runs=5,
)

# Klein 4B's current protocol, for what is about that model alone (its docs example).
CURRENT = KLEIN4B_T2I_V1


def known_protocol(protocol_id: str, protocol_hash: str) -> Protocol | None:
    """The protocol with this id, of any model, if its hash matches the definition we
    know (which model it belongs to is the registry's: `ModelSpec.protocol_for`)."""
    from klein_bench.contract.models import protocols

    protocol = protocols().get(protocol_id)
    if protocol is None or protocol.hash != protocol_hash:
        return None
    return protocol
