"""Check-page data made the way production makes it: signed results POSTed to /contribute
(and signed withdrawals to DELETE /contribute/<id>), then the aggregation service.

The RTX 5070 story follows the 5070 recipe: FP8 fits a 12 GB card that drives a display,
BF16 needs offload (and sometimes runs out of system RAM during VAE decode), BF16 fully
resident does not fit.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from typing import Any

from klein_bench.contract import wire

from benchmarks.services.aggregation import reconcile
from tests.factories import make_result, oom_payload, result_payload, runs, signed_body

RTX_5070 = {
    "device": "cuda",
    "name": "NVIDIA GeForce RTX 5070",
    "memory_total_mb": 12227,
    "compute_capability": "12.0",
    "uuid_hash": "5070aa00bb11cc22",
    "drives_display": True,
    "power_limit_w": 250,
    "pcie_generation": 5,
    "pcie_width": 16,
}
RTX_4090 = {"name": "NVIDIA GeForce RTX 4090", "memory_total_mb": 24564}
FP8_COMFYUI = {
    "runtime": "comfyui",
    "precision": "fp8-storage",
    "offload": "none",
    "preset": "fp8-storage",
    "fp8_method": "bfl-fp8-file",
}
BF16_OFFLOAD = {"precision": "bf16", "offload": "model", "preset": "bf16-model-offload"}


_BLOCKS = (
    "p|div|li|ul|ol|dl|dt|dd|tr|td|th|table|caption|thead|tbody|h[1-6]|section|nav|main|"
    "figure|figcaption|pre|br|summary|details|form|label|select|option|button"
)


_ASCII = str.maketrans({"\u2013": "-", "\u203a": ">"})


def visible_text(response, selector_start: str = "<main", selector_end: str = "</main>") -> str:
    """What a person reads in the page's main part: tags dropped, plots as [plot: alt],
    whitespace collapsed, en dashes and breadcrumb arrows as '-' and '>'."""
    page = response.content.decode()
    start = page.find(selector_start)
    end = page.find(selector_end, start)
    page = page[start : end if end != -1 else None]
    # Each plot is drawn wide and narrow; a person sees one of them.
    page = re.sub(r'<svg\b[^>]*class="plot plot-narrow".*?</svg>', " ", page, flags=re.S)
    page = re.sub(r"<svg\b.*?<title[^>]*>(.*?)</title>.*?</svg>", r" [plot: \1] ", page, flags=re.S)
    page = re.sub(rf"</?(?:{_BLOCKS})\b[^>]*>", " ", page)
    page = re.sub(r"<[^>]+>", "", page)
    # Typographic dashes and arrows read as their ASCII look-alikes in assertions.
    text = html.unescape(page).translate(_ASCII)
    return " ".join(text.split())


def thumbnail() -> str:
    """A small real PNG, like the agent's evidence thumbnail."""
    from PIL import Image

    image = Image.new("RGB", (64, 64))
    image.putdata([(x * 4, y * 4, 128) for y in range(64) for x in range(64)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _memory(process_mb: float, baseline_mb: float = 620.0) -> dict[str, float]:
    return {
        "baseline_device_mb": baseline_mb,
        "peak_allocated_mb": process_mb - 700,
        "peak_reserved_mb": process_mb - 250,
        "peak_process_mb": process_mb,
        "peak_device_mb": process_mb + baseline_mb,
        "peak_rss_mb": 5400.0,
        "system_ram_mb": 32768.0,
    }


def _phases(process_mb: float) -> dict[str, dict[str, Any]]:
    """Per-phase peaks as the agent reports them: load, warm-up, the timed images."""

    def peaks(share: float, stage: str) -> dict[str, Any]:
        mb = round(process_mb * share, 1)
        return {
            "peak_vram_mb": mb,
            "peak_allocated_mb": mb - 700,
            "peak_reserved_mb": mb - 250,
            "peak_process_mb": mb,
            "peak_device_mb": mb + 620,
            "peak_rss_mb": 5400.0,
            "stage": stage,
        }

    return {
        "load": peaks(0.9, "load"),
        "warmup": peaks(1.0, "vae_decode"),
        "timed": peaks(1.0, "denoising"),
    }


def around(center: float, spread: float = 0.04) -> list[float]:
    """Five timed runs close to `center`."""
    return [round(center * (1 + spread * f), 4) for f in (-1, -0.5, 0, 0.5, 1)]


@dataclass
class Posted:
    """What a scenario posted: result ids by name, and the keys that signed them."""

    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, wire.SigningKey] = field(default_factory=dict)


def post(client, payload: dict[str, Any], key: wire.SigningKey) -> int:
    response = client.post(
        "/contribute", data=signed_body(payload, key), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()["result_id"]


def withdraw(client, result_id: int, key: wire.SigningKey, reason: str = "") -> None:
    body = signed_body(
        {"result_id": result_id, "reason": reason}, key, purpose=wire.PURPOSE_WITHDRAW
    )
    response = client.delete(f"/contribute/{result_id}", data=body, content_type="application/json")
    assert response.status_code == 200, response.content


def card_of(contributor: int) -> dict[str, Any]:
    """Contributor N's RTX 5070: each machine salts its card's hash with its own secret."""
    if contributor == 0:
        return RTX_5070
    return RTX_5070 | {"uuid_hash": f"5070aa00bb11cc{contributor:02x}"}


def fill_rtx_5070(client) -> Posted:
    """Twelve signed results from six contributors on an RTX 5070, then aggregation."""
    posted = Posted()
    keys = [wire.SigningKey.generate() for _ in range(6)]
    posted.keys = {f"contributor-{i}": k for i, k in enumerate(keys)}
    fp8 = [2.31, 2.38, 2.42, 2.45, 2.52, 2.60]
    drivers = ["570.133.07", "570.133.07", "575.64", "580.95.05", "580.95.05", "580.95.05"]
    for i, (seconds, driver) in enumerate(zip(fp8, drivers, strict=True)):
        posted.ids[f"fp8-{i}"] = post(
            client,
            result_payload(
                configuration=FP8_COMFYUI,
                gpu=card_of(i % 5),
                # 2 %: an RTX 5070 needs at least 2.26 s per image at its BF16 peak, and
                # the server refuses faster runs.
                timings={"runs": runs(*around(seconds, spread=0.02))},
                memory=_memory(8650 + 40 * i) | {"phases": _phases(8650 + 40 * i)},
                energy={"joules_per_image": 455.0 + 5 * i, "average_power_w": 190.0},
                environment={"driver": driver, "runtime_version": "0.3.66", "diffusers": None},
                evidence={"phash": "c3c3e1e1f0f87c3e", "thumbnail_png": thumbnail()},
            ),
            keys[i % 5],
        )
    for i, seconds in enumerate([6.4, 6.9]):
        posted.ids[f"offload-{i}"] = post(
            client,
            result_payload(
                configuration=BF16_OFFLOAD,
                gpu=card_of(i),
                timings={"runs": runs(*around(seconds))},
                memory=_memory(9900 + 150 * i),
                energy={"joules_per_image": 1150.0, "average_power_w": 180.0},
            ),
            keys[i],
        )
    posted.ids["offload-oom"] = post(
        client,
        oom_payload(
            "vae_decode",
            configuration=BF16_OFFLOAD,
            gpu=card_of(5),
            memory=_memory(9800) | {"peak_rss_mb": 15800.0, "system_ram_mb": 16384.0},
        ),
        keys[5],
    )
    for i in range(3):
        posted.ids[f"resident-oom-{i}"] = post(
            client,
            oom_payload("load", gpu=card_of(i + 2), memory=_memory(11400)),
            keys[i + 2],
        )
    # One estimate from random weights, which must stay apart from the measurements.
    posted.ids["synthetic"] = post(
        client,
        result_payload(
            synthetic=True,
            configuration={
                "precision": "fp8-storage",
                "preset": "fp8-storage",
                "fp8_method": "layerwise",
            },
            gpu=RTX_5070,
            timings={"runs": runs(*around(2.9))},
            memory=_memory(9100),
        ),
        keys[0],
    )
    reconcile()
    return posted


def fill_rtx_4090(client, n: int = 3) -> Posted:
    posted = Posted()
    for i in range(n):
        key = wire.SigningKey.generate()
        posted.keys[f"contributor-{i}"] = key
        posted.ids[f"resident-{i}"] = post(
            client, result_payload(timings={"runs": runs(*around(1.9 + 0.05 * i))}), key
        )
    reconcile()
    return posted


def fill_tiny_on_cpu(client) -> Posted:
    """What a contributor trying the agent without a GPU submits."""
    key = wire.SigningKey.generate()
    payload = result_payload(
        model="klein-tiny-random",
        configuration={"width": 64, "height": 64},
        gpu={
            "device": "cpu",
            "name": "",
            "memory_total_mb": None,
            "compute_capability": None,
            "uuid_hash": None,
            "drives_display": None,
            "power_limit_w": None,
            "pcie_generation": None,
            "pcie_width": None,
        },
        timings={"runs": runs(*around(0.5))},
        memory={
            "baseline_device_mb": None,
            "peak_allocated_mb": None,
            "peak_reserved_mb": None,
            "peak_process_mb": None,
            "peak_device_mb": None,
            "peak_rss_mb": 900.0,
            "system_ram_mb": 8192.0,
        },
        energy=None,
    )
    posted = Posted(ids={"tiny": post(client, payload, key)}, keys={"contributor": key})
    reconcile()
    return posted


def fill_base_on_rtx_4090(client, n: int = 2) -> None:
    """Klein Base 4B on an RTX 4090 at the distilled model's 4 steps, as bulk data has it
    (/contribute keeps results at another size apart from the summaries): other step
    counts than the base model's standard 50."""
    for i in range(n):
        make_result(model="flux-2-klein-base-4b", seconds=1.9 + 0.05 * i)
    reconcile()


def fill_spilled_on_rtx_5070() -> None:
    """FP8 storage in diffusers on the RTX 5070 finishing only by spilling, as bulk data
    can hold it (/contribute refuses a peak above the card's memory): one peak within the
    card, the largest above it, the row the check page flags "above the card's memory"."""
    for seconds, peak in ((9.5, 11_900.0), (10.5, 12_900.0), (9.9, 12_000.0)):
        make_result(
            gpu="rtx-5070",
            configuration={"precision": "fp8-storage"},
            seconds=seconds,
            peak_process_mb=peak,
        )
    reconcile()
