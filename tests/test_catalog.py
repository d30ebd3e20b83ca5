import pytest
from django.core.management import call_command

from benchmarks.models import Configuration, Gpu, ImageModel, PublishedClaim
from benchmarks.services.catalog import gpu_for_reported_name, load_catalog

pytestmark = pytest.mark.django_db


def test_loading_the_catalog_twice_changes_nothing_the_second_time(capsys):
    call_command("loadcatalog")
    counts = [m.objects.count() for m in (ImageModel, Gpu, Configuration, PublishedClaim)]
    call_command("loadcatalog")
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"Catalog loaded: 0 created, 0 updated, {sum(counts)} unchanged."
    assert [m.objects.count() for m in (ImageModel, Gpu, Configuration, PublishedClaim)] == counts


def test_the_catalog_holds_every_card_the_platform_promises(catalog):
    assert set(Gpu.objects.values_list("slug", flat=True)) >= {
        "rtx-3090", "rtx-4070", "rtx-4070-ti", "rtx-4080", "rtx-4090", "rtx-5060-ti-16gb",
        "rtx-5070", "rtx-5070-ti", "rtx-5080", "rtx-5090", "h100", "h200", "cpu",
    }  # fmt: skip
    rtx5070 = Gpu.objects.get(slug="rtx-5070")
    assert (rtx5070.vram_mb, rtx5070.sm, rtx5070.architecture) == (12288, "sm_120", "Blackwell")


def test_the_test_model_is_hidden_from_public_listings(catalog):
    assert list(ImageModel.objects.public().values_list("slug", flat=True)) == [
        "flux-2-klein-4b",
        "flux-2-klein-base-4b",
        "flux-2-klein-9b",
        "flux-2-klein-base-9b",
    ]


def test_standard_configurations_carry_their_preset(catalog):
    presets = {(c.runtime, c.preset) for c in Configuration.objects.all()}
    assert presets == {
        ("diffusers", "bf16-resident"),
        ("diffusers", "bf16-model-offload"),
        ("diffusers", "fp8-storage"),
        ("diffusers", "fp8-compute"),
        ("comfyui", "fp8-storage"),
    }


def test_a_changed_catalog_entry_is_updated_in_place(catalog):
    Gpu.objects.filter(slug="rtx-4090").update(vram_mb=1)
    report = load_catalog()
    assert (report.created, report.updated) == (0, 1)
    assert Gpu.objects.get(slug="rtx-4090").vram_mb == 24576


@pytest.mark.parametrize(
    ("name", "vram_mb", "slug"),
    [
        ("NVIDIA GeForce RTX 4090", 24564, "rtx-4090"),
        ("nvidia geforce rtx 5070", 12227, "rtx-5070"),
        ("NVIDIA H100 80GB HBM3", 81559, "h100"),
        ("NVIDIA GeForce RTX 5060 Ti", 16311, "rtx-5060-ti-16gb"),
        ("", None, "cpu"),
    ],
)
def test_nvml_names_map_to_their_catalog_card(catalog, name, vram_mb, slug):
    assert gpu_for_reported_name(name, vram_mb).slug == slug


def test_a_laptop_part_gets_its_own_flagged_entry(catalog):
    gpu = gpu_for_reported_name("NVIDIA GeForce RTX 4090 Laptop GPU", 16376)
    assert (gpu.slug, gpu.is_laptop, gpu.is_flagged, gpu.vram_mb) == (
        "rtx-4090-laptop", True, True, 16384,
    )  # fmt: skip
    assert gpu_for_reported_name("NVIDIA GeForce RTX 4090 Laptop GPU", 16376) == gpu


def test_an_unknown_card_becomes_a_new_flagged_entry(catalog):
    gpu = gpu_for_reported_name("NVIDIA RTX A6000", 49140)
    assert (gpu.slug, gpu.is_flagged, gpu.family) == ("rtx-a6000", True, "Other")


def test_a_known_name_with_the_wrong_memory_size_is_not_the_catalog_card(catalog):
    gpu = gpu_for_reported_name("NVIDIA GeForce RTX 5060 Ti", 8151)
    assert gpu.slug == "rtx-5060-ti-8gb"
    assert gpu.is_flagged
