"""Items 8 and 9: the host link and RAM that offload figures depend on, and the power
limit, clocks, temperature and throttling of the timed runs, labelled capped or
throttled."""

from __future__ import annotations

import pynvml
import pytest
from fake_backend import FakeBackend
from fake_nvml import FakeCard, FakeNvml

from klein_bench import gpu, measure, report, scenario
from klein_bench.contract.protocol import CURRENT
from klein_bench.progress import SilentProgress


def _run(monkeypatch, card):
    monkeypatch.setattr(gpu, "_nvml_module", FakeNvml([card]))
    return scenario.run(
        FakeBackend(card=card), CURRENT, 5, SilentProgress(), in_process_sampler=True
    )


def test_a_power_cap_below_the_default_is_labelled_capped():
    telemetry = measure.telemetry_section(
        measure.Telemetry(max_sm_clock_mhz=1800.0),
        power_limit_w=270.0,
        default_power_limit_w=450.0,
        max_sm_clock_mhz=2520.0,
    )

    assert telemetry["power_limit_share"] == pytest.approx(0.6)
    assert telemetry["capped"] is True
    assert telemetry["sm_clock_share"] == pytest.approx(1800 / 2520)


def test_thermal_slowdown_while_timing_is_labelled_throttled(monkeypatch):
    card = FakeCard(reasons=pynvml.nvmlClocksEventReasonSwThermalSlowdown)

    telemetry = _run(monkeypatch, card)["telemetry"]

    assert telemetry["throttle_reasons"] == ["sw_thermal_slowdown"]
    assert telemetry["throttled"] is True
    assert telemetry["capped"] is False


def test_the_normal_power_limit_is_not_throttling(monkeypatch):
    card = FakeCard(reasons=pynvml.nvmlClocksEventReasonSwPowerCap)

    telemetry = _run(monkeypatch, card)["telemetry"]

    assert telemetry["throttle_reasons"] == ["sw_power_cap"]
    assert telemetry["throttled"] is False


def test_the_pcie_link_seen_while_working_and_the_host_ram_are_recorded(monkeypatch):
    card = FakeCard(pcie=(3, 8))

    payload = _run(monkeypatch, card)

    assert (payload["gpu"]["pcie_generation"], payload["gpu"]["pcie_width"]) == (3, 8)


def test_offload_results_say_they_measure_the_host_link(tiny_payload):
    payload = dict(tiny_payload)
    payload["configuration"] = {**payload["configuration"], "offload": "model"}
    payload["gpu"] = {"device": "cuda", "name": "RTX 4070", "pcie_generation": 4, "pcie_width": 8}

    table = report.result_table(payload)
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()

    assert "weights cross PCIe Gen4 x8 every image" in text
