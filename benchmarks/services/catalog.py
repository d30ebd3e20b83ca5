"""Loading the catalog and mapping reported GPU names to catalog entries."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction

from benchmarks import catalog_data
from benchmarks.models import Configuration, Gpu, ImageModel, PublishedClaim


def model_by_slug(slug: str) -> ImageModel | None:
    return ImageModel.objects.filter(slug=slug).first()


def configuration_for(
    runtime: str, precision: str, offload: str, width: int, height: int, steps: int
) -> Configuration:
    """The configuration row of these fields, made when it is new (a non-standard one)."""
    configuration, _ = Configuration.objects.get_or_create(
        runtime=runtime,
        precision=precision,
        offload=offload,
        width=width,
        height=height,
        steps=steps,
    )
    return configuration


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def record(self, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def _upsert(model_class, lookup: dict, values: dict, report: LoadReport):
    obj = model_class.objects.filter(**lookup).first()
    if obj is None:
        obj = model_class.objects.create(**lookup, **values)
        report.record(created=True, changed=False)
        return obj
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save()
    report.record(created=False, changed=bool(changed))
    return obj


@transaction.atomic
def load_catalog() -> LoadReport:
    """Create or update every catalog entry; running it again changes nothing."""
    report = LoadReport()
    models = {}
    for entry in catalog_data.models():
        values = dict(entry)
        slug = values.pop("slug")
        if values["parameters_billion"] is not None:
            from decimal import Decimal

            values["parameters_billion"] = Decimal(values["parameters_billion"])
        models[slug] = _upsert(ImageModel, {"slug": slug}, values, report)

    gpus = {}
    for entry in catalog_data.GPUS:
        values = dict(entry)
        slug = values.pop("slug")
        values["is_flagged"] = False
        gpus[slug] = _upsert(Gpu, {"slug": slug}, values, report)

    configurations = {}
    for width, height, steps in catalog_data.standard_sizes():
        for entry in catalog_data.CONFIGURATIONS:
            lookup = {**entry, "width": width, "height": height, "steps": steps}
            config = _upsert(Configuration, lookup, {}, report)
            key = (entry["runtime"], entry["precision"], entry["offload"], width, height, steps)
            configurations[key] = config

    for entry in catalog_data.CLAIMS:
        values = dict(entry)
        lookup = {
            "model": models[values.pop("model")],
            "gpu_label": values.pop("gpu_label"),
            "path": values.pop("path"),
            "source": values.pop("source"),
        }
        gpu_slug = values.pop("gpu")
        values["gpu"] = gpus[gpu_slug] if gpu_slug else None
        config_key = values.pop("configuration")
        model = lookup["model"]
        size = (model.default_width, model.default_height, model.default_steps)
        values["configuration"] = configurations[(*config_key, *size)] if config_key else None
        _upsert(PublishedClaim, lookup, values, report)
    return report


_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce)\b[\s-]*", re.IGNORECASE)
_LAPTOP_WORDS = re.compile(r"\b(laptop gpu|laptop|mobile|max-q)\b", re.IGNORECASE)
# Characters a slug can drop without two different names meeting on one card: spaces and
# the punctuation NVML's names use ("Tesla V100-SXM2-32GB", "RTX 6000 (Ada)").
_PLAIN_NAME = re.compile(r"[A-Za-z0-9 ._\-/()+]*")
SLUG_MAX = 64
# A reported size within this fraction of a card's is that card (NVML reports a little
# less than the marketed size).
SAME_MEMORY = 0.1
# Boards of one GPU differ in memory by at most this factor: a clamshell layout or chips
# of twice the density double it (the 8 and 16 GB RTX 5060 Ti, 48 GB RTX 4090 boards).
MEMORY_VARIANT_FACTOR = 2


class ImpossibleMemory(ValueError):
    """A reported memory size that no board of the catalog's card of that name has."""

    def __init__(self, card: Gpu, reported_mb: float):
        self.card = card
        self.reported_mb = reported_mb
        super().__init__(
            f"{reported_mb:.0f} MiB is not the memory of any {card.name}: the catalog's has "
            f"{card.vram_mb} MiB, and boards of one GPU differ by at most "
            f"{MEMORY_VARIANT_FACTOR}x (and {SAME_MEMORY:.0%} for how NVML counts)"
        )


def without_vendor(name: str) -> str:
    """A card's name without the vendor's words, the way people say it: 'RTX 4090' from
    'NVIDIA GeForce RTX 4090'; slugs too: 'rtx-4090' from 'nvidia-geforce-rtx-4090'."""
    return _VENDOR_WORDS.sub("", name).strip(" -")


def slug_for_gpu_name(name: str) -> str:
    """A slug for a GPU name the catalog does not know: 'rtx-4090-laptop', 'rtx-a6000'.

    Letters and digits are kept (™ and other compatibility characters spelled out in
    ASCII); a name with characters the slug cannot show (other symbols, non-Latin
    letters) gets a short hash of the name, so that different names stay different cards.
    """
    laptop = bool(_LAPTOP_WORDS.search(name))
    spelled = unicodedata.normalize("NFKD", name)
    ascii_name = spelled.encode("ascii", "ignore").decode()
    base = _LAPTOP_WORDS.sub(" ", without_vendor(ascii_name))
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    if laptop:
        slug += "-laptop"
    if ascii_name != spelled or not _PLAIN_NAME.fullmatch(ascii_name) or not slug:
        digest = hashlib.sha256(_normalise(name).encode()).hexdigest()[:8]
        slug = f"{slug[: SLUG_MAX - 9] or 'gpu'}-{digest}"
    return slug[:SLUG_MAX]


def _normalise(name: str) -> str:
    return " ".join(name.lower().split())


def _same_memory(gpu: Gpu, vram_mb: float | None) -> bool:
    return not vram_mb or not gpu.vram_mb or abs(gpu.vram_mb - vram_mb) <= gpu.vram_mb * SAME_MEMORY


def _possible_memory(gpu: Gpu, vram_mb: float) -> bool:
    low = gpu.vram_mb / MEMORY_VARIANT_FACTOR * (1 - SAME_MEMORY)
    return low <= vram_mb <= gpu.vram_mb * MEMORY_VARIANT_FACTOR * (1 + SAME_MEMORY)


def gpu_for_reported_name(name: str, vram_mb: float | None = None) -> Gpu:
    """The catalog GPU that NVML's name (and memory size) describe.

    A name the catalog does not know becomes a new entry, flagged for review; laptop
    parts never map to the desktop card of the same number. A catalog card's name with
    another memory size becomes a flagged variant ('rtx-5060-ti-8gb') when a board of
    that GPU can have it, and raises ImpossibleMemory when none can.
    """
    wanted = _normalise(name)
    if not wanted:
        return Gpu.objects.get(slug="cpu")
    slug = slug_for_gpu_name(name)
    laptop = bool(_LAPTOP_WORDS.search(name))
    named = []
    if not laptop:
        named = [
            gpu for gpu in Gpu.objects.all() if wanted in {_normalise(n) for n in gpu.nvml_names}
        ]
    if not named:
        # Another spelling of a card's name ("GeForce RTX 4090") meets it by slug.
        named = list(Gpu.objects.filter(slug=slug))
    for gpu in named:
        if _same_memory(gpu, vram_mb):
            return gpu
    if named and vram_mb:
        # Only the catalog's own cards are yardsticks: a flagged card's size came from a
        # contributor.
        catalog = [gpu for gpu in named if not gpu.is_flagged and gpu.vram_mb]
        if catalog and not any(_possible_memory(gpu, vram_mb) for gpu in catalog):
            raise ImpossibleMemory(catalog[0], vram_mb)
        # Same name, other memory size (the RTX 5060 Ti comes with 8 or 16 GB).
        slug = f"{slug[: SLUG_MAX - 10]}-{round(vram_mb / 1024)}gb"
    gpu, _ = Gpu.objects.get_or_create(
        slug=slug,
        defaults={
            "name": name.strip()[:128],
            "nvml_names": [name.strip()],
            "vram_mb": round(vram_mb / 1024) * 1024 if vram_mb else None,
            "family": "Laptop" if laptop else "Other",
            "is_laptop": laptop,
            "is_flagged": True,
            "sort_order": 950,
        },
    )
    return gpu
