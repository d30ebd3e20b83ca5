"""Item 3: one headline peak VRAM with the same meaning on every platform, and the source
that produced it."""

from __future__ import annotations

import pytest
from fake_backend import FakeBackend
from fake_nvml import FakeCard, FakeNvml

from klein_bench import gpu, measure, scenario
from klein_bench.contract.figures import MEMORY_FIGURES, VRAM_SOURCES
from klein_bench.contract.protocol import CURRENT
from klein_bench.progress import SilentProgress


def test_the_headline_prefers_nvml_per_process_then_torch_with_its_context():
    assert measure.headline(process_mb=9000, reserved_mb=8500, context_mb=400) == (
        9000,
        "nvml-process",
    )
    assert measure.headline(process_mb=None, reserved_mb=8500, context_mb=400) == (
        8900,
        "torch-reserved+context",
    )
    assert measure.headline(process_mb=None, reserved_mb=8500, context_mb=None) == (
        8500,
        "torch-reserved",
    )
    assert measure.headline(
        process_mb=None, reserved_mb=None, context_mb=None, device_mb=9600, baseline_mb=600
    ) == (9000, "nvml-device-delta")
    assert set(VRAM_SOURCES) == {
        "nvml-process",
        "torch-reserved+context",
        "torch-reserved",
        "nvml-device-delta",
    }
    assert "peak_vram_mb" in MEMORY_FIGURES


def _payload(monkeypatch, per_process: bool):
    card = FakeCard()
    monkeypatch.setattr(gpu, "_nvml_module", FakeNvml([card]))
    backend = FakeBackend(card=card, per_process=per_process)
    return scenario.run(backend, CURRENT, 5, SilentProgress(), in_process_sampler=True)


def test_bare_metal_linux_and_windows_give_the_same_headline(monkeypatch):
    linux = _payload(monkeypatch, per_process=True)["memory"]
    # WDDM (Windows) and containers: NVML has no per-process figure.
    windows = _payload(monkeypatch, per_process=False)["memory"]

    assert linux["vram_source"] == "nvml-process"
    assert windows["vram_source"] == "torch-reserved+context"
    assert windows["peak_process_mb"] is None
    assert windows["peak_vram_mb"] == pytest.approx(linux["peak_vram_mb"])


def test_the_docs_define_the_headline_and_its_relation_to_the_published_figures():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "measurements.md").read_text()

    assert "peak_vram_mb" in text and "vram_source" in text
    for source in VRAM_SOURCES:
        assert f"`{source}`" in text
    for published in ("~20 GB", "~13 GB", "~8.4 GB"):
        assert published in text
    assert "GiB" in text
